"""The seed-001 admin bulk replay job (to be folded into BulkAction, issue 18)."""

from __future__ import annotations

from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from opsconsole import audit
from opsconsole.context import current_request_id, current_traceparent
from recovery.errors import (
    RecoveryReplayConflict,
)
from recovery.models import (
    BulkReplayJob,
    BulkReplayJobItem,
    RecoveryItem,
)
from recovery.services.replay import recovery_item_replay

logger = structlog.get_logger(__name__)


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
