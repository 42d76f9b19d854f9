-- The delivery worker's claims (recovery/services/claims.py). One statement leases due
-- items and returns each with its integration and whether its circuit is clean (closed,
-- no failures: a success then needs no circuit write). MATERIALIZED: the locking subquery
-- runs once, so its LIMIT bounds what is locked. The lock is OF the items only: an
-- integration locked by one worker must not hide all its items from the others. An item
-- with an ordering key waits while an earlier item of that key is still undelivered.
-- The states are written into the text, not bound: the statement is prepared, and the plan
-- PostgreSQL keeps for it can use the partial index of due items only if it knows them
-- (with them bound, it planned the statement again on every claim).

-- name: claim_due_deliveries
-- Items of integrations whose circuit is closed, oldest due first.
WITH due (claimed_id, integration_id) AS MATERIALIZED (
    SELECT item.id, item.integration_id
    FROM recovery_recoveryitem item
    JOIN recovery_integration integration ON integration.id = item.integration_id
    WHERE item.status IN ({deliverable})
      AND item.next_retry_at <= %(now)s
      AND (item.lease_expires_at IS NULL OR item.lease_expires_at < %(now)s)
      AND integration.enabled AND NOT integration.paused
      AND NOT EXISTS (
          SELECT 1 FROM recovery_providercircuit blocked
          WHERE blocked.integration_id = item.integration_id
            AND blocked.state IN ({blocking}))
      AND (item.ordering_key = '' OR NOT EXISTS (
          SELECT 1 FROM recovery_recoveryitem earlier
          WHERE earlier.integration_id = item.integration_id
            AND earlier.ordering_key = item.ordering_key
            AND earlier.id < item.id
            AND earlier.status IN ({holds_order})))
    ORDER BY item.next_retry_at, item.id
    LIMIT %(limit)s
    FOR UPDATE OF item SKIP LOCKED
)
UPDATE recovery_recoveryitem item
SET lease_owner = %(owner)s, lease_expires_at = %(expires)s
FROM due
JOIN recovery_integration integration ON integration.id = due.integration_id
LEFT JOIN recovery_providercircuit circuit ON circuit.integration_id = due.integration_id
WHERE item.id = due.claimed_id
RETURNING {item_columns}, {integration_columns},
    (circuit.id IS NULL OR (circuit.state = {closed} AND circuit.consecutive_failures = 0));

-- name: claim_due_deliveries_of_integration
-- One integration's items whatever its circuit: a tripped circuit's probe or drain quota.
WITH due (claimed_id, integration_id) AS MATERIALIZED (
    SELECT item.id, item.integration_id
    FROM recovery_recoveryitem item
    JOIN recovery_integration integration ON integration.id = item.integration_id
    WHERE item.status IN ({deliverable})
      AND item.next_retry_at <= %(now)s
      AND (item.lease_expires_at IS NULL OR item.lease_expires_at < %(now)s)
      AND integration.enabled AND NOT integration.paused
      AND item.integration_id = %(integration_id)s
      AND (item.ordering_key = '' OR NOT EXISTS (
          SELECT 1 FROM recovery_recoveryitem earlier
          WHERE earlier.integration_id = item.integration_id
            AND earlier.ordering_key = item.ordering_key
            AND earlier.id < item.id
            AND earlier.status IN ({holds_order})))
    ORDER BY item.next_retry_at, item.id
    LIMIT %(limit)s
    FOR UPDATE OF item SKIP LOCKED
)
UPDATE recovery_recoveryitem item
SET lease_owner = %(owner)s, lease_expires_at = %(expires)s
FROM due
JOIN recovery_integration integration ON integration.id = due.integration_id
LEFT JOIN recovery_providercircuit circuit ON circuit.integration_id = due.integration_id
WHERE item.id = due.claimed_id
RETURNING {item_columns}, {integration_columns},
    (circuit.id IS NULL OR (circuit.state = {closed} AND circuit.consecutive_failures = 0));
