"""What the console shows about itself: readiness, metrics, alerts, tracing, queue depth, the
overview and its charts, and the console banner."""
