"""Integration delivery: partners' endpoints and their signing secrets, events taken in
(ingestion) and fanned out from the outbox, circuit breakers, and the per-integration
statistics; `delivery/` is the path one delivery takes
(docs/runbooks/integration-retry-and-replay.md)."""
