"""Events from producers outside this process, into one integration's queue.

A request of up to 100 events is one atomic write, whatever its size: on PostgreSQL one
statement records the producers' event ids, inserts the items and the audit row that names
the batch. Event ids are the producer's own: an id the same producer sent the integration
within INGESTION_DEDUP_DAYS answers the item it made then, with no second item, when it
carries the same event (type and payload), and is refused (409 INT-409-EVENT-ID-CONFLICT)
when it carries another; another producer's same id is another event. Two requests racing
with the same id meet at the unique triple (integration, producer, event_id), where the
second waits for the first and then answers its item.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from opsconsole.db.prepared import RowReader, fetch_prepared
from opsconsole.evidence import audit
from opsconsole.http.context import current_request_id, current_traceparent
from opsconsole.http.errors import ApplicationError, envelope
from opsconsole.workers import listeners
from recovery.errors import EventIdConflict, IntegrationInvalidPayload, IntegrationNotFound
from recovery.integrations.ingestion_orm import AcceptedEvent, insert_with_orm, recorded_ids
from recovery.models import IngestedEvent, Integration, RecoveryItem
from recovery.services.delivery import DELIVERY_WORKER, announce_deliveries, ordering_key_of
from recovery.services.integrations import EVENT_TYPE

MAX_BATCH = 100
MAX_PAYLOAD_BYTES = 256 * 1024
# A payload re-encoded compactly in UTF-8 is at most this many times its bytes in the request
# body (a number such as 1e15 grows to 1000000000000000.0; strings and escapes only shrink), so
# in a body of at most MAX_PAYLOAD_BYTES / NUMBER_GROWTH bytes no payload can be over the limit.
NUMBER_GROWTH = 5
EVENT_ID_MAX = 200
# A producer's event id becomes every delivery's `webhook-id`, which receivers sign as
# "<id>.<timestamp>.<body>" (Standard Webhooks): only characters every library and header
# carries unchanged, and no "." (the separator). Otherwise a receiver's signature check fails
# (non-ASCII) or the request cannot be sent at all (CR/LF) and the item fails forever.
EVENT_ID = re.compile(rf"^[A-Za-z0-9_-]{{1,{EVENT_ID_MAX}}}$")
EVENT_ID_RULE = f"1 to {EVENT_ID_MAX} letters (A-Z, a-z), digits, '_' or '-'."
INGESTED_EVENT = "platform.events.ingested"


@dataclass
class IngestResult:
    """One event's answer: its item (new or the earlier one) or why it was refused."""

    index: int
    item_id: int | None = None
    event_id: str = ""
    duplicate: bool = False
    error: dict[str, Any] | None = None
    # The refusal `error` is the envelope of, for a single event's route to raise.
    refusal: ApplicationError | None = None

    def body(self) -> dict[str, Any]:
        if self.error is not None:
            return {"index": self.index, "error": self.error}
        # The answer a producer's retry gets again, byte for byte: the item as first queued.
        return {"id": self.item_id, "event_id": self.event_id, "status": "pending"}


def event_digest(event_type: str, payload: Any) -> str:
    """What a retry must carry again: the type and the payload, keys sorted (a retry may
    encode the same object with its keys in another order)."""
    encoded = json.dumps(
        [event_type, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def _producer_of(actor: audit.Actor) -> int:
    """Whose event ids these are: the authenticated producer (0 for the platform itself)."""
    pk = getattr(actor, "pk", None)
    return int(pk) if isinstance(pk, int) else 0


EVENT_FIELDS = frozenset({"event_type", "payload", "event_id"})


@functools.lru_cache(maxsize=1024)
def _is_event_type(value: str) -> bool:
    # A batch names a few types a hundred times: each is matched once.
    return value != "*" and EVENT_TYPE.match(value) is not None


def _problems(
    event: Any, validator: Draft202012Validator | None, *, measure: bool
) -> dict[str, Any]:
    """What is wrong with `event` ({}: nothing): `validator` checks the payload against the
    integration's schema (None: it has none); `measure`: its payload may be over the size
    limit, so it is encoded to find out."""
    if not isinstance(event, dict):
        return {"event": ["An object with event_type and payload."]}
    found: dict[str, Any] = {}
    if not event.keys() <= EVENT_FIELDS:
        found["unknown_fields"] = sorted(set(event) - EVENT_FIELDS)
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not _is_event_type(event_type):
        found["event_type"] = ["Required: a dotted event type, like booking.confirmed."]
    event_id = event.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not EVENT_ID.match(event_id)):
        found["event_id"] = [EVENT_ID_RULE]
    if "payload" not in event:
        found["payload"] = ["Required."]
        return found
    payload = event["payload"]
    if measure and len(_compact(payload).encode()) > MAX_PAYLOAD_BYTES:
        found["payload"] = [f"At most {MAX_PAYLOAD_BYTES} bytes."]
    elif validator is not None:
        errors = sorted(validator.iter_errors(payload), key=lambda error: list(error.path))
        if errors:
            found["payload"] = [
                f"{'/'.join(str(p) for p in error.path) or '(root)'}: {error.message}"[:300]
                for error in errors[:10]
            ]
    return found


_INTEGRATION_ROWS = RowReader(Integration)


def _live_integration(integration_id: int) -> Integration | None:
    """The integration, unless deleted; prepared on PostgreSQL (read on every request)."""
    if connection.vendor != "postgresql":
        return Integration.objects.filter(pk=integration_id, deleted_at__isnull=True).first()
    rows = fetch_prepared(
        f"SELECT {_INTEGRATION_ROWS.select_list('integration')} "
        f"FROM {Integration._meta.db_table} integration "
        "WHERE integration.id = %s AND integration.deleted_at IS NULL",
        [integration_id],
    )
    return _INTEGRATION_ROWS.read(rows[0]) if rows else None


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def events_ingest(
    *,
    integration_id: int,
    events: list[Any],
    actor: audit.Actor,
    body_bytes: int | None = None,
) -> list[IngestResult]:
    """Queue `events` for the integration: one result per event, in order. `body_bytes`:
    the size of the request they came in, when known (a small one needs no payload measured)."""
    integration = _live_integration(integration_id)
    if integration is None:
        raise IntegrationNotFound()
    measure = body_bytes is None or body_bytes * NUMBER_GROWTH > MAX_PAYLOAD_BYTES
    results: list[IngestResult] = []
    accepted: list[AcceptedEvent] = []
    producer = _producer_of(actor)
    schema = integration.payload_schema
    validator = Draft202012Validator(schema) if schema else None  # built once per request
    for index, event in enumerate(events):
        problems = _problems(event, validator, measure=measure)
        if problems:
            error = IntegrationInvalidPayload("The event is invalid.", details={"fields": problems})
            body = envelope(error.code, error.message, error.details)["error"]
            results.append(IngestResult(index=index, error=body))
            continue
        given = event.get("event_id")
        accepted.append(
            AcceptedEvent(
                index=index,
                event_type=event["event_type"],
                payload=event["payload"],
                event_id=given or f"evt_{uuid.uuid4().hex}",
                producer_id=bool(given),
                digest=event_digest(event["event_type"], event["payload"]) if given else "",
            )
        )
    if connection.vendor == "postgresql":
        results += _queue(integration, accepted, actor, producer)
    else:
        try:
            results += _queue(integration, accepted, actor, producer)
        except IntegrityError:
            # Another request recorded one of these ids first; its items are committed now.
            results += _queue(integration, accepted, actor, producer)
    return sorted(results, key=lambda result: result.index)


def _queue(
    integration: Integration, accepted: list[AcceptedEvent], actor: audit.Actor, producer: int
) -> list[IngestResult]:
    new: list[AcceptedEvent] = []
    repeats: list[AcceptedEvent] = []  # an id already named earlier in this batch
    first_of: dict[str, AcceptedEvent] = {}
    for event in accepted:
        if event.producer_id and event.event_id in first_of:
            repeats.append(event)
        else:
            new.append(event)
            if event.producer_id:
                first_of[event.event_id] = event
    fresh_since = timezone.now() - timedelta(days=settings.INGESTION_DEDUP_DAYS)
    if connection.vendor == "postgresql":
        by_event, earlier = _claim_and_insert(integration, new, fresh_since, actor, producer)
    else:
        with transaction.atomic():
            by_event, earlier = insert_with_orm(integration, new, fresh_since, producer)
            if by_event:
                audit.record(
                    INGESTED_EVENT,
                    obj=integration,
                    actor=actor,
                    after={
                        "items": len(by_event),
                        "first_item_id": min(by_event.values()),
                        "last_item_id": max(by_event.values()),
                    },
                    metadata={
                        "event_types": sorted(
                            {event.event_type for event in new if event.event_id in by_event}
                        )
                    },
                )
    if by_event:
        # On PostgreSQL the statement that inserted them also sent the NOTIFY.
        announce_deliveries(notified=connection.vendor == "postgresql")
    results = [
        IngestResult(index=event.index, item_id=by_event[event.event_id], event_id=event.event_id)
        for event in new
        if event.event_id in by_event
    ]
    results += [
        _answer_known(event, *earlier[event.event_id])
        for event in new
        if event.event_id not in by_event
    ]
    # A batch that repeats an id answers the repeat as a retry of the first: its item when
    # it carries the same event, a refusal when it carries another.
    for event in repeats:
        if event.digest != first_of[event.event_id].digest:
            results.append(_conflict(event))
        elif event.event_id in by_event:
            results.append(_duplicate(event, by_event[event.event_id]))
        else:
            results.append(_answer_known(event, *earlier[event.event_id]))
    return results


def _answer_known(event: AcceptedEvent, item_id: int, digest: str) -> IngestResult:
    """An id this producer sent within the window: a retry answers its item; another event
    under it is refused ("": recorded without a digest, so it cannot be told apart)."""
    if digest and digest != event.digest:
        return _conflict(event)
    return _duplicate(event, item_id)


def _conflict(event: AcceptedEvent) -> IngestResult:
    refusal = EventIdConflict(details={"event_id": event.event_id})
    body = envelope(refusal.code, refusal.message, refusal.details)["error"]
    return IngestResult(index=event.index, event_id=event.event_id, error=body, refusal=refusal)


def _claim_and_insert(
    integration: Integration,
    new: list[AcceptedEvent],
    fresh_since: datetime,
    actor: audit.Actor,
    producer: int,
) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Record the producer's ids, insert the items and the audit row naming them in one
    statement (atomic without a transaction, so one round trip): ({event_id: new item id},
    {event_id: (earlier item id, its digest)} for ids recorded within the dedup window).

    Each row gets its item id from the sequence first, so the id record can be written
    before the item: its insert claims the id on the unique pair (ON CONFLICT, which always
    uses that index, whatever a fast-growing table's statistics say), waits for a racing
    request holding the same id, and lets an expired record be claimed again. Only events
    whose id was claimed (or that named none) become items. The rows travel as one JSON
    array (one parameter, each payload as already encoded: the driver quoting a text array
    element by element cost more than the insert), encoded in one call.
    """
    if not new:
        return {}, {}
    items, ingested = RecoveryItem._meta.db_table, IngestedEvent._meta.db_table
    # The audit row, written only when an item was: its counts and event types come from
    # the rows inserted, which only the statement knows.
    audit_insert, audit_params = audit.insert_select(
        audit.unsaved_event(INGESTED_EVENT, obj=integration, actor=actor),
        computed={
            "after_state": "jsonb_build_object('items', count(*), 'first_item_id', min(id), "
            "'last_item_id', max(id))",
            "metadata": "jsonb_build_object('event_types', (SELECT jsonb_agg(DISTINCT "
            "event_type ORDER BY event_type) FROM new))",
        },
        source="new HAVING count(*) > 0",
    )
    sql = (
        "WITH input AS (SELECT t.row, t.position, %s::timestamptz AS at, "
        f"nextval('{_item_id_sequence()}'::regclass) AS item_id "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(row, position)), "
        f"claimed AS (INSERT INTO {ingested} AS recorded "
        "(integration_id, producer_id, event_id, payload_digest, item_id, created_at) "
        "SELECT %s, %s, row->>2, row->>5, item_id, at FROM input WHERE (row->>4)::boolean "
        "ON CONFLICT (integration_id, producer_id, event_id) DO UPDATE SET "
        "item_id = EXCLUDED.item_id, created_at = EXCLUDED.created_at, "
        "payload_digest = EXCLUDED.payload_digest WHERE recorded.created_at < %s "
        "RETURNING event_id), "
        f"new AS (INSERT INTO {items} (id, integration_id, event_type, payload, event_id, "
        "ordering_key, status, attempt_count, max_attempts, replay_count, next_retry_at, "
        "lease_owner, failure_code, failure_fingerprint, failure_detail, request_snapshot, "
        "response_snapshot, request_id, traceparent, created_at, updated_at) "
        "SELECT item_id, %s, row->>0, row->1, row->>2, row->>3, 'pending', 0, "
        "%s, 0, at, '', '', '', '', '{}'::jsonb, '{}'::jsonb, %s, %s, at, at "
        "FROM input WHERE NOT (row->>4)::boolean OR row->>2 IN (SELECT event_id FROM claimed) "
        "ORDER BY position RETURNING id, event_id, event_type), "
        f"audited AS ({audit_insert}) "
        # The listening delivery processes' wake, sent with this statement's commit (one
        # however many rows: PostgreSQL folds a transaction's equal notifications).
        "SELECT event_id, id, pg_notify(%s, '') FROM new"
    )
    key_path = integration.ordering_key_path
    rows = _compact(
        [
            (
                event.event_type,
                event.payload,
                event.event_id,
                ordering_key_of(event.payload, key_path),
                event.producer_id,
                event.digest,
            )
            for event in new
        ]
    )
    # The application's clock, as every other row's timestamps, so the dedup window is
    # measured on one clock.
    params = [
        timezone.now(),
        rows,
        integration.pk,
        producer,
        fresh_since,
        integration.pk,
        settings.INTEGRATION_MAX_ATTEMPTS,
        current_request_id(),
        current_traceparent(),
        *audit_params,
        listeners.channel(DELIVERY_WORKER),
    ]
    # Prepared: its text never changes, and planning it took a sixth of its time.
    by_event = {event_id: item_id for event_id, item_id, _ in fetch_prepared(sql, params)}
    missed = [event.event_id for event in new if event.event_id not in by_event]
    earlier = {
        event_id: (item_id, digest)
        for _, event_id, item_id, _, digest in recorded_ids(integration, producer, missed)
    }
    return by_event, earlier


@functools.cache
def _item_id_sequence() -> str:
    """The items' id sequence, looked up once: pg_get_serial_sequence in the statement ran
    a catalog lookup for each of a batch's rows."""
    with connection.cursor() as cursor:
        table = RecoveryItem._meta.db_table
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (name,) = cursor.fetchone()
    return name


def _duplicate(event: AcceptedEvent, item_id: int | None) -> IngestResult:
    """An id already queued: the earlier item (None: earlier in this same batch)."""
    return IngestResult(index=event.index, item_id=item_id, event_id=event.event_id, duplicate=True)


def ingested_events_purge(*, max_rows: int = 50_000) -> int:
    """Forget producer event ids past the dedup window (they no longer deduplicate anyway);
    the retention worker's daily step. Returns how many it deleted."""
    cutoff = timezone.now() - timedelta(days=settings.INGESTION_DEDUP_DAYS)
    stale = IngestedEvent.objects.filter(created_at__lt=cutoff).values("pk")[:max_rows]
    deleted, _ = IngestedEvent.objects.filter(pk__in=stale).delete()
    return deleted
