"""One integration delivery, as the worker runs it: the drain that claims and records, the
pipeline that keeps calls in flight on one event loop, and the HTTP adapter."""
