"""PostgreSQL helpers every app uses: prepared statements, compare-and-set writes, deadlock
retries, model field lookups, text search and the transactional outbox."""
