"""The ingestion's writes for the SQLite development database, where the one PostgreSQL
statement of recovery.integrations.ingestion is not available, and the lookup of ids
already recorded that both paths use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from opsconsole.http.context import current_request_id, current_traceparent
from recovery.models import IngestedEvent, Integration, RecoveryItem
from recovery.services.delivery import ordering_key_of


@dataclass
class AcceptedEvent:
    """One event of a request that passed validation, on its way to being recorded."""

    index: int
    event_type: str
    payload: Any
    event_id: str
    producer_id: bool  # the producer named the id (so a retry can find it)
    digest: str = ""  # of a named id's event: what a retry must carry again


def insert_with_orm(
    integration: Integration, new: list[AcceptedEvent], fresh_since: datetime, producer: int
) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """_claim_and_insert for the SQLite development database: look the ids up, forget the
    expired ones, bulk-insert the rest (a racing duplicate is an IntegrityError, retried)."""
    earlier: dict[str, tuple[int, str]] = {}
    stale: list[int] = []
    named = [event.event_id for event in new if event.producer_id]
    for pk, event_id, item_id, created_at, digest in recorded_ids(integration, producer, named):
        if created_at >= fresh_since:
            earlier[event_id] = (item_id, digest)
        else:
            stale.append(pk)
    if stale:  # older records no longer deduplicate: their ids may come again as new events
        IngestedEvent.objects.filter(pk__in=stale).delete()
    fresh = [event for event in new if event.event_id not in earlier]
    items = RecoveryItem.objects.bulk_create(
        [
            RecoveryItem(
                integration=integration,
                event_type=event.event_type,
                payload=event.payload,
                event_id=event.event_id,
                ordering_key=ordering_key_of(event.payload, integration.ordering_key_path),
                max_attempts=settings.INTEGRATION_MAX_ATTEMPTS,
                request_id=current_request_id(),
                traceparent=current_traceparent(),
            )
            for event in fresh
        ]
    )
    by_event = {item.event_id: item.pk for item in items}
    IngestedEvent.objects.bulk_create(
        [
            IngestedEvent(
                integration=integration,
                producer_id=producer,
                event_id=event.event_id,
                payload_digest=event.digest,
                item_id=item.pk,
            )
            for event, item in zip(fresh, items, strict=True)
            if event.producer_id
        ]
    )
    return by_event, earlier


def recorded_ids(
    integration: Integration, producer: int, event_ids: list[str]
) -> list[tuple[Any, ...]]:
    """(pk, event_id, item_id, created_at, payload_digest) of the ids the producer already
    recorded for the integration."""
    if not event_ids:
        return []
    return list(
        IngestedEvent.objects.filter(
            integration=integration, producer_id=producer, event_id__in=event_ids
        ).values_list("pk", "event_id", "item_id", "created_at", "payload_digest")
    )
