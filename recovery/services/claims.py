"""The delivery worker's claim: one statement that leases due items, each with its
integration and circuit state."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from opsconsole.db.prepared import RowReader, fetch_prepared
from opsconsole.workers.claims import claim_due_rows, lease_statement
from recovery.integrations.circuits import (
    blocked_integrations,
    integrations_with_circuit_state,
)
from recovery.models import (
    Integration,
    ProviderCircuit,
    RecoveryItem,
)


def due_items_filter() -> Q:
    earlier_in_order = RecoveryItem.objects.filter(
        integration_id=OuterRef("integration_id"),
        ordering_key=OuterRef("ordering_key"),
        id__lt=OuterRef("id"),
        status__in=RecoveryItem.HOLDS_ORDER,
    )
    unordered_or_next = Q(ordering_key="") | ~Q(Exists(earlier_in_order))
    return (
        Q(
            status__in=RecoveryItem.DELIVERABLE,
            next_retry_at__lte=timezone.now(),
            integration__enabled=True,
            integration__paused=False,
        )
        & unordered_or_next
    )


@dataclass(frozen=True)
class ClaimedDelivery:
    item: RecoveryItem  # with .integration loaded
    circuit_clean: bool  # closed with no failures: a success needs no circuit write


def recovery_items_claim_due(
    *, owner: str, limit: int, lease_seconds: int, integration_id: int | None = None
) -> list[ClaimedDelivery]:
    """Lease up to `limit` due items, oldest due first, with their integrations.

    Without `integration_id`: items of integrations whose circuit is closed. With it: that
    integration's items, whatever its circuit (the probe or drain quota of a tripped one).
    On PostgreSQL the claim is one statement whose text never changes (the delivery worker's
    hot path at small batches), and one more loads the integrations.
    """
    if limit <= 0:
        return []
    if connection.vendor != "postgresql":
        scope = Q(integration_id=integration_id) if integration_id else ~blocked_integrations()
        ids = claim_due_rows(
            RecoveryItem,
            filters=due_items_filter() & scope,
            owner=owner,
            limit=limit,
            lease_seconds=lease_seconds,
        )
        loaded = RecoveryItem.objects.select_related("integration").in_bulk(ids)
        unclean = integrations_with_circuit_state({item.integration_id for item in loaded.values()})
        return [
            ClaimedDelivery(loaded[pk], loaded[pk].integration_id not in unclean)
            for pk in ids
            if pk in loaded
        ]
    now = timezone.now()
    params = {
        "deliverable": list(RecoveryItem.DELIVERABLE),
        "holds_order": list(RecoveryItem.HOLDS_ORDER),
        "blocking": [ProviderCircuit.State.OPEN.value, ProviderCircuit.State.DRAINING.value],
        "closed": ProviderCircuit.State.CLOSED.value,
        "now": now,
        "limit": limit,
        "owner": owner,
        "expires": now + timedelta(seconds=lease_seconds),
        "integration_id": integration_id or 0,
    }
    rows = fetch_prepared(_claim_statement(scoped=integration_id is not None), params)
    claims = []
    integrations: dict[int, Integration] = {}
    for row in rows:
        item = _ITEM_ROWS.read(row)
        # A batch is mostly one integration's items: they share one instance of it.
        if item.integration_id not in integrations:
            integrations[item.integration_id] = _INTEGRATION_ROWS.read(row, _ITEM_ROWS.width)
        item.integration = integrations[item.integration_id]
        claims.append(ClaimedDelivery(item, circuit_clean=row[-1]))
    claims.sort(key=lambda claim: (claim.item.next_retry_at, claim.item.pk))
    return claims


_ITEM_ROWS = RowReader(RecoveryItem)


_INTEGRATION_ROWS = RowReader(Integration)


@functools.cache
def _claim_statement(*, scoped: bool) -> str:
    scope = (
        "item.integration_id = %(integration_id)s"
        if scoped
        else "NOT EXISTS (SELECT 1 FROM recovery_providercircuit blocked"
        " WHERE blocked.integration_id = item.integration_id"
        " AND blocked.state = ANY(%(blocking)s))"
    )
    returned = f"{_ITEM_ROWS.select_list('item')}, {_INTEGRATION_ROWS.select_list('integration')}"
    return lease_statement(
        table="recovery_recoveryitem",
        alias="item",
        due_select=f"""
            SELECT item.id, item.integration_id FROM recovery_recoveryitem item
            JOIN recovery_integration integration ON integration.id = item.integration_id
            WHERE item.status = ANY(%(deliverable)s) AND item.next_retry_at <= %(now)s
              AND (item.lease_expires_at IS NULL OR item.lease_expires_at < %(now)s)
              AND integration.enabled AND NOT integration.paused
              AND {scope}
              AND (item.ordering_key = '' OR NOT EXISTS (
                  SELECT 1 FROM recovery_recoveryitem earlier
                  WHERE earlier.integration_id = item.integration_id
                    AND earlier.ordering_key = item.ordering_key
                    AND earlier.id < item.id
                    AND earlier.status = ANY(%(holds_order)s)))
            ORDER BY item.next_retry_at, item.id
            LIMIT %(limit)s""",
        due_columns="claimed_id, integration_id",
        owner="%(owner)s",
        expires="%(expires)s",
        # Each item with its integration, and whether the circuit is clean (closed, no
        # failures): a success then needs no circuit write.
        joins="JOIN recovery_integration integration ON integration.id = due.integration_id "
        "LEFT JOIN recovery_providercircuit circuit ON circuit.integration_id = due.integration_id",
        returning=f"""{returned},
            (circuit.id IS NULL
             OR (circuit.state = %(closed)s AND circuit.consecutive_failures = 0))""",
    )
