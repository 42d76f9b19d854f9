"""One delivery attempt of a leased item: the HTTP call outside any transaction, and its
outcome written in one statement."""

from __future__ import annotations

import json
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from opsconsole.db.compare_and_set import Increment, compare_and_set
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy, parse_retry_after
from opsconsole.http.context import current_request_id, current_traceparent
from opsconsole.monitoring.alerts import alert_raise
from opsconsole.outbound.guard import ENDPOINT_NOT_ALLOWED
from opsconsole.workers import listeners, wakes
from recovery.errors import (
    LeaseLost,
)
from recovery.integrations.circuits import (
    circuit_record,
)
from recovery.integrations.delivery.request import DeliveryRequest, DeliveryResult
from recovery.integrations.signing import signature_headers
from recovery.models import (
    DeliveryAttempt,
    DeliveryRollup,
    Integration,
    RecoveryItem,
)
from recovery.models.events import latency_bucket_field

logger = structlog.get_logger(__name__)


EVENT_PREFIX = "platform.integration.recovery"


EVENT_RETRY_SCHEDULED = f"{EVENT_PREFIX}.retry_scheduled"


EVENT_REPROCESS_FAILED = f"{EVENT_PREFIX}.reprocess_failed"


EVENT_RETRY_EXHAUSTED = f"{EVENT_PREFIX}.retry_exhausted"


EVENT_REPROCESS_SUCCEEDED = f"{EVENT_PREFIX}.reprocess_succeeded"


EVENT_REPLAYED = f"{EVENT_PREFIX}.replayed"


EVENT_ENQUEUED = f"{EVENT_PREFIX}.enqueued"


WORKER_ACTOR = "worker:integration_delivery_worker"


def delivery_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.INTEGRATION_MAX_ATTEMPTS,
        base_seconds=settings.INTEGRATION_BACKOFF_BASE_SECONDS,
        cap_seconds=settings.INTEGRATION_BACKOFF_CAP_SECONDS,
        retryable_network_errors=frozenset(settings.INTEGRATION_RETRYABLE_NETWORK_ERRORS),
    )


@transaction.atomic
def recovery_item_enqueue(
    *,
    integration: Integration,
    event_type: str,
    payload: Any,
    actor: audit.Actor = None,
    event_id: str = "",
) -> RecoveryItem:
    """Queue one delivery. `event_id` becomes its `webhook-id` (the item's own id if none)."""
    item = RecoveryItem.objects.create(
        integration=integration,
        event_type=event_type,
        payload=payload,
        event_id=event_id,
        ordering_key=ordering_key_of(payload, integration.ordering_key_path),
        request_id=current_request_id(),
        traceparent=current_traceparent(),
    )
    # What will be sent; each attempt signs it with that attempt's timestamp.
    item.request_snapshot = delivery_request(item, signed=False).snapshot()
    item.save(update_fields=["request_snapshot"])
    audit.record(EVENT_ENQUEUED, obj=item, after=item.state(), actor=actor)
    announce_deliveries()
    return item


def ordering_key_of(payload: Any, path: str) -> str:
    """The value at a dotted `path` in the payload, as text ("" when no path or no value)."""
    if not path:
        return ""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return "" if value is None or isinstance(value, dict | list) else str(value)[:200]


def delivery_request(item: RecoveryItem, *, signed: bool = True) -> DeliveryRequest:
    headers = {
        "Idempotency-Key": item.delivery_idempotency_key,
        "X-Ops-Event-Type": item.event_type,
        "X-Ops-Attempt": str(item.attempt_count + 1),
    }
    if item.request_id:
        headers["X-Request-ID"] = item.request_id
    if item.traceparent:
        headers["traceparent"] = item.traceparent
    if item.edit_count:
        # A corrected payload goes under a new webhook-id; this names the message it corrects.
        headers["X-Ops-Corrects-Webhook-Id"] = item.original_webhook_id
    body = item.payload_override if item.payload_override is not None else item.payload
    if item.integration.body_format == Integration.BodyFormat.STANDARD_WEBHOOKS:
        # The event as Standard Webhooks shapes it; the same body on every attempt.
        body = {
            "type": item.event_type,
            "timestamp": item.created_at.isoformat().replace("+00:00", "Z"),
            "data": body,
        }
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    if signed:
        secrets_in_use = item.integration.active_secrets()
        headers.update(signature_headers(secrets_in_use, item.webhook_id, content))
    return DeliveryRequest(
        url=item.integration.endpoint_url, body=body, headers=headers, content=content
    )


@dataclass(frozen=True)
class Classified:
    outcome: str  # DeliveryAttempt.Outcome
    failure_code: str
    failure_detail: str
    retry_after: float | None


def classify(result: DeliveryResult, policy: RetryPolicy) -> Classified:
    if result.http_status is not None:
        status = result.http_status
        if 200 <= status < 300:
            return Classified(DeliveryAttempt.Outcome.SUCCEEDED, "", "", None)
        detail = f"HTTP {status}: {result.body[:500]}"
        retry_after = parse_retry_after(result.headers.get("retry-after"))
        if policy.is_retryable_status(status):
            return Classified(
                DeliveryAttempt.Outcome.RETRYABLE, f"HTTP_{status}", detail, retry_after
            )
        return Classified(DeliveryAttempt.Outcome.PERMANENT, f"HTTP_{status}", detail, None)
    if result.error_class == ENDPOINT_NOT_ALLOWED:
        # Retrying cannot help: the destination stays refused until an operator changes it.
        return Classified(
            DeliveryAttempt.Outcome.PERMANENT, "ENDPOINT_NOT_ALLOWED", result.error_detail, None
        )
    code = f"NETWORK_{result.error_class.upper()}"
    if policy.is_retryable_network_error(result.error_class):
        return Classified(DeliveryAttempt.Outcome.RETRYABLE, code, result.error_detail, None)
    return Classified(DeliveryAttempt.Outcome.PERMANENT, code, result.error_detail, None)


def delivery_start(item: RecoveryItem, *, lease_owner: str) -> DeliveryRequest | None:
    """The signed request for a leased item's next attempt; None when its integration does
    not take deliveries now (the lease is handed back). Raises LeaseLost."""
    if item.lease_owner != lease_owner:
        raise LeaseLost(f"item {item.pk} is leased to {item.lease_owner or 'nobody'}")
    if not item.integration.accepts_deliveries:
        recovery_item_release_lease(item_id=item.pk, lease_owner=lease_owner)
        return None
    return delivery_request(item)


def recovery_item_record_outcome(
    *,
    item_id: int,
    lease_owner: str,
    request: DeliveryRequest,
    result: DeliveryResult,
    started_at: Any,
    policy: RetryPolicy | None = None,
    item: RecoveryItem | None = None,
    circuit_clean: bool = False,
    circuit_streak: bool = True,
) -> str:
    """Write an attempt's outcome, only if this worker still holds the lease (compare-and-set).

    `circuit_streak` False: a retryable failure that does not extend the circuit's run of
    failures, because a call started after it has succeeded already (calls in flight end
    out of order; a burst of timeouts from calls sent before a success is no streak).

    The item as it was claimed is enough: the item's new state, its attempt row and its audit
    row are one atomic compare-and-set on (id, lease_owner, status), and nothing is written
    when it matches no row. A success on a clean circuit is that one statement alone.
    """
    policy = policy or delivery_retry_policy()
    if item is None:
        item = RecoveryItem.objects.get(pk=item_id)
    if item.lease_owner != lease_owner or item.status not in RecoveryItem.DELIVERABLE:
        raise LeaseLost(f"item {item_id} changed hands during delivery; outcome dropped")
    claimed_status = item.status
    before = item.state()
    was_recovering = item.status != RecoveryItem.Status.PENDING or item.attempt_count > 0
    classified = classify(result, policy)
    attempt_number = item.attempt_count + 1

    if classified.outcome == DeliveryAttempt.Outcome.SUCCEEDED:
        item.mark_succeeded()
        event = EVENT_REPROCESS_SUCCEEDED if was_recovering else f"{EVENT_PREFIX}.delivered"
        label = "succeeded"
    elif classified.outcome == DeliveryAttempt.Outcome.PERMANENT:
        item.mark_failed(
            failure_code=classified.failure_code, failure_detail=classified.failure_detail
        )
        event, label = EVENT_REPROCESS_FAILED, "failed"
    elif policy.exhausted(attempt_number, item.max_attempts):
        item.move_to_dlq(
            failure_code=classified.failure_code, failure_detail=classified.failure_detail
        )
        event, label = EVENT_RETRY_EXHAUSTED, "dlq"
    else:
        item.schedule_retry(
            failure_code=classified.failure_code,
            failure_detail=classified.failure_detail,
            next_retry_at=policy.next_retry_at(attempt_number, retry_after=classified.retry_after),
        )
        event, label = EVENT_RETRY_SCHEDULED, "retry_scheduled"

    item.request_snapshot = request.snapshot()
    item.response_snapshot = result.snapshot()
    item.updated_at = timezone.now()
    attempt = DeliveryAttempt(
        item=item,
        number=attempt_number,
        replay_count=item.replay_count,
        outcome=classified.outcome,
        http_status=result.http_status,
        failure_code=classified.failure_code,
        failure_detail=classified.failure_detail,
        retry_after_seconds=classified.retry_after,
        duration_ms=result.duration_ms,
        request_snapshot=item.request_snapshot,
        response_snapshot=item.response_snapshot,
        lease_owner=lease_owner,
        started_at=started_at,
        finished_at=timezone.now(),
    )
    audit_row = audit.unsaved_event(
        event,
        obj=item,
        before=before,
        after=item.state(),
        actor=WORKER_ACTOR,
        metadata={"attempt": attempt_number, "http_status": result.http_status},
        request_id=item.request_id,
        traceparent=item.traceparent,
    )
    succeeded = classified.outcome == DeliveryAttempt.Outcome.SUCCEEDED
    circuit_changes = not (succeeded and circuit_clean)
    # The circuit row joins the outcome's transaction only when it changes.
    with transaction.atomic() if circuit_changes else nullcontext():
        written = compare_and_set(
            RecoveryItem,
            match={"pk": item.pk, "lease_owner": lease_owner, "status": claimed_status},
            values={field: getattr(item, field) for field in (*OUTCOME_FIELDS, "status")},
            also_insert=(attempt, audit_row),
            also_add=rollup_increment(item.integration_id, label, result.duration_ms, lease_owner),
        )
        if not written:
            raise LeaseLost(f"item {item_id} changed hands during delivery; outcome dropped")
        if circuit_changes:
            circuit_record(
                integration_id=item.integration_id,
                succeeded=succeeded,
                retryable_failure=classified.outcome == DeliveryAttempt.Outcome.RETRYABLE
                and circuit_streak,
            )
        if result.http_status == 410:
            endpoint_gone(item.integration_id, item_id=item.pk)
    return label


ENDPOINT_GONE_REASON = (
    "the endpoint answered 410 Gone: its receiver no longer takes these deliveries "
    "(Standard Webhooks). Fix the endpoint URL, or delete the integration; then resume it."
)


def endpoint_gone(integration_id: int, *, item_id: int) -> None:
    """A receiver that answers 410 Gone has said it wants no more deliveries (Standard
    Webhooks): the integration is paused at once, so the next event is not sent there, with
    an audit row and an alert; the item that met it is a permanent failure in the inbox."""
    integration = Integration.objects.select_for_update().get(pk=integration_id)
    if integration.paused:
        return
    before = {"paused": False, "paused_reason": integration.paused_reason}
    integration.paused, integration.paused_reason = True, ENDPOINT_GONE_REASON
    integration.save(update_fields=["paused", "paused_reason", "updated_at"])
    audit.record(
        "platform.integration.paused",
        obj=integration,
        before=before,
        after={"paused": True, "paused_reason": ENDPOINT_GONE_REASON},
        actor=WORKER_ACTOR,
        reason=ENDPOINT_GONE_REASON,
        metadata={"item_id": item_id, "http_status": 410},
    )
    alert_raise(
        kind="integration_endpoint_gone",
        severity="warning",
        obj=integration,
        message=f"Integration {integration.name} paused: its endpoint answered 410 Gone "
        f"(item #{item_id}). Fix its endpoint or delete it, then resume it.",
        details={"item_id": item_id, "endpoint_url": integration.endpoint_url},
    )


def rollup_increment(
    integration_id: int, outcome: str, duration_ms: int | None, lease_owner: str
) -> Increment:
    """This outcome's share of its minute's rollup: one count, one latency bucket, in the
    row of this processor's shard."""
    minute = timezone.now().replace(second=0, microsecond=0)
    shard = zlib.crc32(lease_owner.encode()) % DeliveryRollup.SHARDS
    return Increment(
        DeliveryRollup,
        key={"integration_id": integration_id, "minute": minute, "shard": shard},
        counters=ROLLUP_COUNTERS,
        add=(outcome, latency_bucket_field(duration_ms)),
    )


ROLLUP_COUNTERS = (*DeliveryRollup.OUTCOMES, *DeliveryRollup.BUCKETS)


# What an attempt's outcome changes on the item (status goes through the FSM transition).
OUTCOME_FIELDS = (
    "attempt_count",
    "last_attempt_at",
    "failure_code",
    "failure_detail",
    "failure_fingerprint",
    "lease_owner",
    "lease_expires_at",
    "next_retry_at",
    "succeeded_at",
    "request_snapshot",
    "response_snapshot",
    "updated_at",
)


def recovery_item_release_lease(*, item_id: int, lease_owner: str) -> bool:
    """Give a leased item back untouched (paused integration, worker stopping)."""
    released = RecoveryItem.objects.filter(pk=item_id, lease_owner=lease_owner).update(
        lease_owner="", lease_expires_at=None
    )
    return released == 1


DELIVERY_WORKER = "integration_delivery_worker"


def announce_deliveries(triggered_by: str = "enqueue", *, notified: bool = False) -> None:
    """Inside the transaction that made deliveries due: the listening delivery processes
    wake with its commit (opsconsole.workers.listeners); when none is listening, django-q2
    runs the worker after it; the worker's schedule catches anything else. `notified`: the
    transaction's own statement already sent the NOTIFY."""
    listeners.announce(DELIVERY_WORKER, notified=notified)
    transaction.on_commit(lambda: wakes.wake(DELIVERY_WORKER, triggered_by))
