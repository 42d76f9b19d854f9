"""The delivery worker's claim: one statement that leases due items, each with its
integration and circuit state."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from psycopg import sql

from opsconsole.db.named_queries import load_queries
from opsconsole.db.prepared import RowReader, fetch_prepared
from opsconsole.workers.claims import claim_due_rows
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


def _states(*states: str) -> str:
    """The code's own state names as SQL literals, quoted by the driver."""
    return ", ".join(sql.Literal(str(state)).as_string() for state in states)


@functools.cache
def _claim_statement(*, scoped: bool) -> str:
    queries = load_queries(
        Path(__file__).with_name("claims.sql"),
        item_columns=_ITEM_ROWS.select_list("item"),
        integration_columns=_INTEGRATION_ROWS.select_list("integration"),
        deliverable=_states(*RecoveryItem.DELIVERABLE),
        holds_order=_states(*RecoveryItem.HOLDS_ORDER),
        blocking=_states(ProviderCircuit.State.OPEN, ProviderCircuit.State.DRAINING),
        closed=_states(ProviderCircuit.State.CLOSED),
    )
    return queries["claim_due_deliveries_of_integration" if scoped else "claim_due_deliveries"]
