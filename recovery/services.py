"""Every write to integrations and their recovery queue."""

from __future__ import annotations

import difflib
import functools
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from jsonschema import Draft202012Validator

from opsconsole import audit
from opsconsole.compare_and_set import compare_and_set
from opsconsole.context import bound_context, current_request_id, current_traceparent
from opsconsole.outbound import ENDPOINT_NOT_ALLOWED, endpoint_url_problem
from opsconsole.prepared import RowReader, fetch_prepared
from opsconsole.retry import RetryPolicy, parse_retry_after
from opsconsole.workers import claim_due_rows
from recovery.adapters import DeliveryAdapter, DeliveryRequest, DeliveryResult, default_adapter
from recovery.circuits import (
    blocked_integrations,
    circuit_record,
    integrations_with_circuit_state,
)
from recovery.errors import (
    IntegrationInvalidPayload,
    IntegrationNotFound,
    LeaseLost,
    RecoveryNotFound,
    RecoveryReplayConflict,
)
from recovery.models import (
    BulkReplayJob,
    BulkReplayJobItem,
    DeliveryAttempt,
    Integration,
    PayloadEdit,
    ProviderCircuit,
    RecoveryItem,
)

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


# ---------------------------------------------------------------------------- integrations


INTEGRATION_EDITABLE_FIELDS = ("name", "endpoint_url", "payload_schema", "enabled")


def integration_check_fields(changes: dict[str, Any]) -> None:
    """Validate integration fields; raises INT-400-INVALID-PAYLOAD with field details."""
    unknown = sorted(set(changes) - set(INTEGRATION_EDITABLE_FIELDS))
    problems: dict[str, str] = {name: "This field cannot be changed." for name in unknown}
    if "name" in changes and not str(changes["name"] or "").strip():
        problems["name"] = "A name is required."
    if "endpoint_url" in changes:
        problem = endpoint_url_problem(str(changes["endpoint_url"] or ""))
        if problem:
            problems["endpoint_url"] = problem
    schema = changes.get("payload_schema")
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # jsonschema raises SchemaError; any failure means invalid
            problems["payload_schema"] = f"Not a valid JSON Schema: {str(exc)[:200]}"
    if problems:
        raise IntegrationInvalidPayload("The integration is invalid.", details=problems)


def integration_state_full(integration: Integration) -> dict[str, Any]:
    return {name: getattr(integration, name) for name in INTEGRATION_EDITABLE_FIELDS} | {
        "paused": integration.paused
    }


@transaction.atomic
def integration_create(
    *,
    name: str,
    endpoint_url: str,
    actor: audit.Actor,
    payload_schema: dict[str, Any] | None = None,
    enabled: bool = True,
    reason: str = "",
) -> Integration:
    integration_check_fields(
        {"name": name, "endpoint_url": endpoint_url, "payload_schema": payload_schema}
    )
    integration = Integration.objects.create(
        name=name, endpoint_url=endpoint_url, payload_schema=payload_schema, enabled=enabled
    )
    audit.record(
        "platform.integration.created",
        obj=integration,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    return integration


@transaction.atomic
def integration_update(
    *, integration_id: int, changes: dict[str, Any], actor: audit.Actor, reason: str
) -> Integration:
    """Change an integration's settings: validated, locked, audited with before and after."""
    if not reason.strip():
        raise IntegrationInvalidPayload(
            "A reason is required.", details={"reason": "A reason is required."}
        )
    integration_check_fields(changes)
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
    before = integration_state_full(integration)
    for name, value in changes.items():
        setattr(integration, name, value)
    integration.save(update_fields=[*changes, "updated_at"])
    audit.record(
        "platform.integration.updated",
        obj=integration,
        before=before,
        after=integration_state_full(integration),
        actor=actor,
        reason=reason,
    )
    return integration


def _integration_state(integration: Integration) -> dict[str, Any]:
    return {"enabled": integration.enabled, "paused": integration.paused}


@transaction.atomic
def integration_set_paused(
    *, integration_id: int, paused: bool, actor: audit.Actor, reason: str
) -> Integration:
    """Containment: a paused integration gets no deliveries and no replays until resumed."""
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
    before = _integration_state(integration)
    integration.paused = paused
    integration.paused_reason = reason if paused else ""
    integration.save(update_fields=["paused", "paused_reason", "updated_at"])
    audit.record(
        f"platform.integration.{'paused' if paused else 'resumed'}",
        obj=integration,
        before=before,
        after=_integration_state(integration),
        actor=actor,
        reason=reason,
    )
    if not paused:
        transaction.on_commit(wake_delivery_worker)
    return integration


# ---------------------------------------------------------------------------- queue items


@transaction.atomic
def recovery_item_enqueue(
    *, integration: Integration, event_type: str, payload: Any, actor: audit.Actor = None
) -> RecoveryItem:
    item = RecoveryItem.objects.create(
        integration=integration,
        event_type=event_type,
        payload=payload,
        request_id=current_request_id(),
        traceparent=current_traceparent(),
    )
    item.request_snapshot = _delivery_request(item).snapshot()
    item.save(update_fields=["request_snapshot"])
    audit.record(EVENT_ENQUEUED, obj=item, after=item.state(), actor=actor)
    transaction.on_commit(wake_delivery_worker)
    return item


def _delivery_request(item: RecoveryItem) -> DeliveryRequest:
    headers = {
        "Idempotency-Key": item.delivery_idempotency_key,
        "X-Ops-Event-Type": item.event_type,
        "X-Ops-Attempt": str(item.attempt_count + 1),
    }
    if item.request_id:
        headers["X-Request-ID"] = item.request_id
    if item.traceparent:
        headers["traceparent"] = item.traceparent
    body = item.payload_override if item.payload_override is not None else item.payload
    return DeliveryRequest(url=item.integration.endpoint_url, body=body, headers=headers)


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


def recovery_item_deliver(
    *,
    item_id: int,
    lease_owner: str,
    adapter: DeliveryAdapter | None = None,
    item: RecoveryItem | None = None,
    circuit_clean: bool = False,
) -> str:
    """Make one delivery attempt for a leased item. The HTTP call runs outside any transaction.

    A worker passes the `item` it loaded right after claiming it (one query for the batch)
    and `circuit_clean` when the integration's circuit was closed with no failures.
    """
    if item is None:
        item = RecoveryItem.objects.select_related("integration").get(pk=item_id)
    if item.lease_owner != lease_owner:
        raise LeaseLost(f"item {item_id} is leased to {item.lease_owner or 'nobody'}")
    if not item.integration.accepts_deliveries:
        recovery_item_release_lease(item_id=item_id, lease_owner=lease_owner)
        return "held_paused"
    # The attempt's logs carry the request id of whoever created or last replayed the item.
    with bound_context(request_id=item.request_id, traceparent=item.traceparent):
        request = _delivery_request(item)
        started_at = timezone.now()
        result = (adapter or default_adapter()).deliver(request)
        return recovery_item_record_outcome(
            item_id=item_id,
            lease_owner=lease_owner,
            request=request,
            result=result,
            started_at=started_at,
            item=item,
            circuit_clean=circuit_clean,
        )


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
) -> str:
    """Write an attempt's outcome, only if this worker still holds the lease (compare-and-set).

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
        )
        if not written:
            raise LeaseLost(f"item {item_id} changed hands during delivery; outcome dropped")
        if circuit_changes:
            circuit_record(
                integration_id=item.integration_id,
                succeeded=succeeded,
                retryable_failure=classified.outcome == DeliveryAttempt.Outcome.RETRYABLE,
            )
    return label


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


def recovery_item_get(
    *, integration_id: int, item_id: int, for_update: bool = False
) -> RecoveryItem:
    """The same error for a missing item and one that belongs to another integration."""
    queryset = RecoveryItem.objects.select_related("integration")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    item = queryset.filter(pk=item_id, integration_id=integration_id).first()
    if item is None:
        if not Integration.objects.filter(pk=integration_id).exists():
            raise IntegrationNotFound()
        raise RecoveryNotFound()
    return item


@transaction.atomic
def recovery_item_replay(
    *, integration_id: int, item_id: int, actor: audit.Actor, reason: str
) -> RecoveryItem:
    """Operator replay: failed|dlq -> replayed; the delivery worker then re-delivers it."""
    item = recovery_item_get(integration_id=integration_id, item_id=item_id, for_update=True)
    if item.status not in RecoveryItem.REPLAYABLE:
        raise RecoveryReplayConflict(
            f"Only failed or dlq entries can be replayed; this one is {item.status}.",
            details={"status": item.status, "allowed_statuses": list(RecoveryItem.REPLAYABLE)},
        )
    if not item.integration.accepts_deliveries:
        raise RecoveryReplayConflict(
            "The integration is paused; resume it before replaying (containment).",
            details={"status": item.status, "integration_paused": True},
        )
    before = item.state()
    item.replay(request_id=current_request_id(), traceparent=current_traceparent())
    item.save()
    audit.record(
        EVENT_REPLAYED, obj=item, before=before, after=item.state(), actor=actor, reason=reason
    )
    transaction.on_commit(wake_delivery_worker)
    return item


def wake_delivery_worker() -> None:
    """Ask django-q2 to run the delivery worker now; the schedule catches it otherwise."""
    from django_q.tasks import async_task

    try:
        async_task("recovery.tasks.run_integration_delivery_worker", "replay")
    except Exception:  # the row is the truth; a lost wake-up only delays delivery
        logger.warning("delivery_worker_wake_failed", exc_info=True)


# ---------------------------------------------------------------------------- bulk replay


def replayable_items(queryset: Any) -> Any:
    return queryset.filter(status__in=RecoveryItem.REPLAYABLE)


@transaction.atomic
def bulk_replay_job_create(
    *, item_ids: list[int], filter_description: dict[str, Any], actor: audit.Actor, reason: str
) -> BulkReplayJob:
    """Freeze the matching ids now, so items that fail later are not swept in by surprise."""
    frozen = list(
        RecoveryItem.objects.filter(pk__in=item_ids, status__in=RecoveryItem.REPLAYABLE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    job = BulkReplayJob.objects.create(
        filter_description=filter_description,
        reason=reason,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        request_id=current_request_id(),
        traceparent=current_traceparent(),
        total=len(frozen),
    )
    BulkReplayJobItem.objects.bulk_create(
        [BulkReplayJobItem(job=job, item_id=pk) for pk in frozen], batch_size=1000
    )
    audit.record(
        "platform.integration.recovery.bulk_replay_requested",
        obj=job,
        after={"status": job.status, "total": job.total, "filter": filter_description},
        actor=actor,
        reason=reason,
    )
    transaction.on_commit(wake_bulk_replay_worker)
    return job


@transaction.atomic
def bulk_replay_job_cancel(*, job_id: int, actor: audit.Actor, reason: str) -> BulkReplayJob:
    job = BulkReplayJob.objects.select_for_update().get(pk=job_id)
    if job.status not in (BulkReplayJob.Status.QUEUED, BulkReplayJob.Status.RUNNING):
        raise RecoveryReplayConflict(f"Bulk replay #{job.pk} is already {job.status}.")
    before = {"status": job.status, "processed": job.processed}
    job.cancel(cancelled_by=audit.actor_label(actor))
    job.save()
    audit.record(
        "platform.integration.recovery.bulk_replay_cancelled",
        obj=job,
        before=before,
        after={"status": job.status, "processed": job.processed},
        actor=actor,
        reason=reason,
    )
    return job


def bulk_replay_job_run_chunk(*, job_id: int, chunk_size: int = 100) -> int:
    """Replay the next chunk of a job's frozen items; returns how many it processed.

    Each member is marked processed in the same transaction as its replay, so a crash
    between items never replays one twice, and a cancel takes effect at the next item.
    """
    processed = 0
    with transaction.atomic():
        job = BulkReplayJob.objects.select_for_update().get(pk=job_id)
        if job.status not in (BulkReplayJob.Status.QUEUED, BulkReplayJob.Status.RUNNING):
            return 0
        if job.status == BulkReplayJob.Status.QUEUED:
            job.start()
            job.save()
    member_ids = list(
        BulkReplayJobItem.objects.filter(job_id=job_id, processed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:chunk_size]
    )
    for member_id in member_ids:
        if not _bulk_replay_member_process(job_id=job_id, member_id=member_id):
            break
        processed += 1
    with transaction.atomic():
        job = BulkReplayJob.objects.select_for_update().get(pk=job_id)
        remaining = BulkReplayJobItem.objects.filter(job_id=job_id, processed_at__isnull=True)
        if job.status == BulkReplayJob.Status.RUNNING and not remaining.exists():
            job.complete()
            job.save()
            audit.record(
                "platform.integration.recovery.bulk_replay_completed",
                obj=job,
                before={"status": "running"},
                after={"status": job.status, "replayed": job.replayed, "skipped": job.skipped},
                actor="worker:integration_bulk_replay_worker",
                request_id=job.request_id,
                traceparent=job.traceparent,
            )
    return processed


@transaction.atomic
def _bulk_replay_member_process(*, job_id: int, member_id: int) -> bool:
    job = BulkReplayJob.objects.select_for_update().get(pk=job_id)
    if job.status != BulkReplayJob.Status.RUNNING:
        return False
    member = BulkReplayJobItem.objects.select_for_update().get(pk=member_id)
    if member.processed_at is not None:
        return True
    item = RecoveryItem.objects.get(pk=member.item_id)
    try:
        with transaction.atomic():
            recovery_item_replay(
                integration_id=item.integration_id,
                item_id=item.pk,
                actor=job.requested_by or "worker:integration_bulk_replay_worker",
                reason=f"bulk replay #{job.pk}: {job.reason}",
            )
        member.outcome = "replayed"
        job.replayed += 1
    except RecoveryReplayConflict as exc:
        member.outcome = "skipped_paused" if exc.details.get("integration_paused") else "skipped"
        job.skipped += 1
    member.processed_at = timezone.now()
    member.save(update_fields=["processed_at", "outcome"])
    job.processed += 1
    job.save(update_fields=["processed", "replayed", "skipped"])
    return True


def wake_bulk_replay_worker() -> None:
    from django_q.tasks import async_task

    try:
        async_task("recovery.tasks.run_integration_bulk_replay_worker", "bulk_replay")
    except Exception:
        logger.warning("bulk_replay_worker_wake_failed", exc_info=True)


def due_items_filter() -> Q:
    return Q(
        status__in=RecoveryItem.DELIVERABLE,
        next_retry_at__lte=timezone.now(),
        integration__enabled=True,
        integration__paused=False,
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
        integrations = {item.integration_id for item in loaded.values()}
        unclean = integrations_with_circuit_state(integrations)
        return [
            ClaimedDelivery(loaded[pk], loaded[pk].integration_id not in unclean)
            for pk in ids
            if pk in loaded
        ]
    now = timezone.now()
    params = {
        "deliverable": list(RecoveryItem.DELIVERABLE),
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
    # MATERIALIZED: the locking subquery runs once, so LIMIT bounds what is locked; OF item:
    # an integration row must not be locked, or one worker would hide all its items.
    return f"""
        WITH due (claimed_id, integration_id) AS MATERIALIZED (
            SELECT item.id, item.integration_id FROM recovery_recoveryitem item
            JOIN recovery_integration integration ON integration.id = item.integration_id
            WHERE item.status = ANY(%(deliverable)s) AND item.next_retry_at <= %(now)s
              AND (item.lease_expires_at IS NULL OR item.lease_expires_at < %(now)s)
              AND integration.enabled AND NOT integration.paused
              AND {scope}
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
        RETURNING {returned},
            (circuit.id IS NULL
             OR (circuit.state = %(closed)s AND circuit.consecutive_failures = 0))
    """


# ---------------------------------------------------------------------------- edit and replay


class PayloadInvalid(IntegrationInvalidPayload):
    default_message = "The edited payload does not match the item's schema."


def payload_schema_for(item: RecoveryItem) -> dict[str, Any]:
    """The integration's schema, or one derived from the original: same keys, same types."""
    if item.integration.payload_schema:
        return item.integration.payload_schema
    if not isinstance(item.payload, dict):
        return {}
    json_types = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return {
        "type": "object",
        "required": sorted(item.payload),
        "properties": {
            key: {"type": json_types.get(type(value), "string")}
            for key, value in item.payload.items()
        },
    }


def payload_diff(original: Any, edited: Any) -> str:
    def pretty(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()

    return "\n".join(
        difflib.unified_diff(pretty(original), pretty(edited), "original", "edited", lineterm="")
    )


@transaction.atomic
def recovery_item_edit_and_replay(
    *, integration_id: int, item_id: int, payload: Any, actor: audit.Actor, reason: str
) -> tuple[RecoveryItem, PayloadEdit]:
    """Correct the payload, then replay. The original payload and snapshots stay as they were;
    the edit, its diff and who made it are stored and audited."""
    item = recovery_item_get(integration_id=integration_id, item_id=item_id, for_update=True)
    errors = sorted(
        f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}"
        for error in Draft202012Validator(payload_schema_for(item)).iter_errors(payload)
    )
    if errors:
        raise PayloadInvalid(details={"fields": {"payload": errors}})
    current = item.payload_override if item.payload_override is not None else item.payload
    edit = PayloadEdit.objects.create(
        item=item,
        original_payload=item.payload,
        edited_payload=payload,
        diff=payload_diff(current, payload),
        edited_by=audit.actor_label(actor),
        reason=reason,
    )
    item.payload_override = payload
    item.save(update_fields=["payload_override", "updated_at"])
    audit.record(
        f"{EVENT_PREFIX}.payload_edited",
        obj=item,
        before={"payload": current},
        after={"payload": payload},
        actor=actor,
        reason=reason,
        metadata={"edit_id": edit.pk, "diff": edit.diff},
    )
    item = recovery_item_replay(
        integration_id=integration_id, item_id=item_id, actor=actor, reason=reason
    )
    return item, edit
