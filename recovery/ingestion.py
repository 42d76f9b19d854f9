"""Events from producers outside this process, into one integration's queue.

A request of up to 100 events is one transaction and a handful of statements, whatever its
size: the items are inserted together, the producers' event ids are recorded together, and
one audit row names the batch. An event id seen for the integration within
INGESTION_DEDUP_DAYS answers the item it made then, with no second item; two requests racing
with the same id meet at the unique pair (integration, event_id) and the loser's whole
batch is retried once, when it finds the winner's item.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from opsconsole import audit
from opsconsole.context import current_request_id, current_traceparent
from opsconsole.errors import envelope
from recovery.errors import IntegrationInvalidPayload, IntegrationNotFound
from recovery.models import IngestedEvent, Integration, RecoveryItem
from recovery.services.delivery import ordering_key_of, wake_delivery_worker
from recovery.services.integrations import EVENT_TYPE

MAX_BATCH = 100
MAX_PAYLOAD_BYTES = 256 * 1024
EVENT_ID_MAX = 200


@dataclass
class IngestResult:
    """One event's answer: its item (new or the earlier one) or why it was refused."""

    index: int
    item_id: int | None = None
    event_id: str = ""
    duplicate: bool = False
    error: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        if self.error is not None:
            return {"index": self.index, "error": self.error}
        # The answer a producer's retry gets again, byte for byte: the item as first queued.
        return {"id": self.item_id, "event_id": self.event_id, "status": "pending"}


@dataclass
class _Accepted:
    index: int
    event_type: str
    payload: Any
    event_id: str
    producer_id: bool  # the producer named the id (so a retry can find it)
    problems: dict[str, Any] = field(default_factory=dict)


def _problems(event: Any, integration: Integration) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"event": ["An object with event_type and payload."]}
    found: dict[str, Any] = {}
    unknown = sorted(set(event) - {"event_type", "payload", "event_id"})
    if unknown:
        found["unknown_fields"] = unknown
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type) or event_type == "*":
        found["event_type"] = ["Required: a dotted event type, like booking.confirmed."]
    event_id = event.get("event_id")
    if event_id is not None and (
        not isinstance(event_id, str) or not event_id.strip() or len(event_id) > EVENT_ID_MAX
    ):
        found["event_id"] = [f"A non-empty string of at most {EVENT_ID_MAX} characters."]
    if "payload" not in event:
        found["payload"] = ["Required."]
        return found
    payload = event["payload"]
    if len(json.dumps(payload, separators=(",", ":"))) > MAX_PAYLOAD_BYTES:
        found["payload"] = [f"At most {MAX_PAYLOAD_BYTES} bytes."]
    elif integration.payload_schema:
        errors = sorted(
            Draft202012Validator(integration.payload_schema).iter_errors(payload),
            key=lambda error: list(error.path),
        )
        if errors:
            found["payload"] = [
                f"{'/'.join(str(p) for p in error.path) or '(root)'}: {error.message}"[:300]
                for error in errors[:10]
            ]
    return found


def events_ingest(
    *, integration_id: int, events: list[Any], actor: audit.Actor
) -> list[IngestResult]:
    """Queue `events` for the integration: one result per event, in order."""
    integration = Integration.objects.filter(pk=integration_id, deleted_at__isnull=True).first()
    if integration is None:
        raise IntegrationNotFound()
    results: list[IngestResult] = []
    accepted: list[_Accepted] = []
    for index, event in enumerate(events):
        problems = _problems(event, integration)
        if problems:
            error = IntegrationInvalidPayload("The event is invalid.", details={"fields": problems})
            body = envelope(error.code, error.message, error.details)["error"]
            results.append(IngestResult(index=index, error=body))
            continue
        given = event.get("event_id")
        accepted.append(
            _Accepted(
                index=index,
                event_type=event["event_type"],
                payload=event["payload"],
                event_id=given.strip() if given else f"evt_{uuid.uuid4().hex}",
                producer_id=bool(given),
            )
        )
    try:
        results += _queue(integration, accepted, actor)
    except IntegrityError:
        # Another request recorded one of these ids first; its items are committed now.
        results += _queue(integration, accepted, actor)
    return sorted(results, key=lambda result: result.index)


@transaction.atomic
def _queue(
    integration: Integration, accepted: list[_Accepted], actor: audit.Actor
) -> list[IngestResult]:
    fresh_since = timezone.now() - timedelta(days=settings.INGESTION_DEDUP_DAYS)
    named = [event.event_id for event in accepted if event.producer_id]
    seen: dict[str, int] = {}
    stale: list[int] = []
    for pk, event_id, item_id, created_at in IngestedEvent.objects.filter(
        integration=integration, event_id__in=named
    ).values_list("pk", "event_id", "item_id", "created_at"):
        if created_at >= fresh_since:
            seen[event_id] = item_id
        else:
            stale.append(pk)
    if stale:  # older records no longer deduplicate: their ids may come again as new events
        IngestedEvent.objects.filter(pk__in=stale).delete()
    results: list[IngestResult] = []
    new: list[_Accepted] = []
    in_this_batch: dict[str, _Accepted] = {}
    for event in accepted:
        if event.event_id in seen:
            results.append(_duplicate(event, seen[event.event_id]))
        elif event.producer_id and event.event_id in in_this_batch:
            results.append(_duplicate(event, None))
        else:
            new.append(event)
            if event.producer_id:
                in_this_batch[event.event_id] = event
    if not new:
        return _resolve_in_batch(results, {})
    by_event = _insert(integration, new)
    audit.record(
        "platform.events.ingested",
        obj=integration,
        actor=actor,
        after={
            "items": len(by_event),
            "first_item_id": min(by_event.values()),
            "last_item_id": max(by_event.values()),
        },
        metadata={"event_types": sorted({event.event_type for event in new})},
    )
    transaction.on_commit(wake_delivery_worker)
    results += [
        IngestResult(index=event.index, item_id=by_event[event.event_id], event_id=event.event_id)
        for event in new
    ]
    return _resolve_in_batch(results, by_event)


def _insert(integration: Integration, new: list[_Accepted]) -> dict[str, int]:
    """Insert the items and record the producers' ids: {event_id: item id}.

    On PostgreSQL one statement does both (a data-modifying CTE), with the JSON rendered here
    once, because the ORM's per-field compilation of a 100-row bulk insert cost more than the
    insert itself. Elsewhere (the SQLite development database) the ORM's bulk inserts.
    """
    request_id, traceparent = current_request_id(), current_traceparent()
    max_attempts = settings.INTEGRATION_MAX_ATTEMPTS
    named = [event.event_id for event in new if event.producer_id]
    if connection.vendor != "postgresql":
        items = RecoveryItem.objects.bulk_create(
            [
                RecoveryItem(
                    integration=integration,
                    event_type=event.event_type,
                    payload=event.payload,
                    event_id=event.event_id,
                    ordering_key=ordering_key_of(event.payload, integration.ordering_key_path),
                    max_attempts=max_attempts,
                    request_id=request_id,
                    traceparent=traceparent,
                )
                for event in new
            ]
        )
        by_event = {item.event_id: item.pk for item in items}
        IngestedEvent.objects.bulk_create(
            [
                IngestedEvent(integration=integration, event_id=name, item_id=by_event[name])
                for name in named
            ]
        )
        return by_event
    items, ingested = RecoveryItem._meta.db_table, IngestedEvent._meta.db_table
    # The rows travel as four arrays: a short statement whatever the batch's size, so the
    # driver's statement handling costs the same for 1 event as for 100.
    sql = (
        f"WITH new AS (INSERT INTO {items} (integration_id, event_type, payload, event_id, "
        "ordering_key, status, attempt_count, max_attempts, replay_count, next_retry_at, "
        "lease_owner, failure_code, failure_fingerprint, failure_detail, request_snapshot, "
        "response_snapshot, request_id, traceparent, created_at, updated_at) "
        "SELECT %s, t.event_type, t.payload::jsonb, t.event_id, t.ordering_key, 'pending', 0, "
        "%s, 0, now(), '', '', '', '', '{}'::jsonb, '{}'::jsonb, %s, %s, now(), now() "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
        "AS t(event_type, payload, event_id, ordering_key, position) ORDER BY t.position "
        "RETURNING id, event_id), "
        f"recorded AS (INSERT INTO {ingested} (integration_id, event_id, item_id, created_at) "
        "SELECT %s, event_id, id, now() FROM new WHERE event_id = ANY(%s::text[])) "
        "SELECT event_id, id FROM new"
    )
    params = [
        integration.pk,
        max_attempts,
        request_id,
        traceparent,
        [event.event_type for event in new],
        [json.dumps(event.payload, separators=(",", ":")) for event in new],
        [event.event_id for event in new],
        [ordering_key_of(event.payload, integration.ordering_key_path) for event in new],
        integration.pk,
        named,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _duplicate(event: _Accepted, item_id: int | None) -> IngestResult:
    """An id already queued: the earlier item (None: earlier in this same batch)."""
    return IngestResult(index=event.index, item_id=item_id, event_id=event.event_id, duplicate=True)


def _resolve_in_batch(results: list[IngestResult], by_event: dict[str, int]) -> list[IngestResult]:
    """A batch that repeats an id answers the repeat with the first one's item."""
    for result in results:
        if result.item_id is None and result.error is None:
            result.item_id = by_event[result.event_id]
    return results


def ingested_events_purge(*, max_rows: int = 50_000) -> int:
    """Forget producer event ids past the dedup window (they no longer deduplicate anyway);
    the retention worker's daily step. Returns how many it deleted."""
    cutoff = timezone.now() - timedelta(days=settings.INGESTION_DEDUP_DAYS)
    stale = IngestedEvent.objects.filter(created_at__lt=cutoff).values("pk")[:max_rows]
    deleted, _ = IngestedEvent.objects.filter(pk__in=stale).delete()
    return deleted
