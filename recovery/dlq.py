"""The DLQ sweeper (seed 003, every 15 minutes): failures older than 24 hours go to the
manual review queue; recent transient failures are retried, once per item."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_requeue
from opsconsole import audit
from opsconsole.errors import ApplicationError, Conflict, NotFound
from opsconsole.workers import BatchWorker, register_worker
from payments.models import Refund
from payments.refunds import refund_requeue
from recovery import services
from recovery.models import ManualReviewItem, RecoveryItem, SweepRetry

logger = structlog.get_logger(__name__)

SWEEPER_ACTOR = "worker:dlq_sweeper"
TRANSIENT_PREFIXES = (
    "HTTP_5",
    "HTTP_408",
    "HTTP_429",
    "NETWORK_",
    "http_5",
    "http_408",
    "http_429",
    "read_timeout",
    "connect_timeout",
    "connection_",
)


def is_transient(error: str) -> bool:
    return error.strip().startswith(TRANSIENT_PREFIXES)


@dataclass(frozen=True)
class DeadLetterSource:
    """One kind of parked failure: how to find it, describe it and retry it."""

    name: str
    dead: Callable[[], models.QuerySet]
    failed_at: Callable[[Any], datetime]
    error: Callable[[Any], str]
    summary: Callable[[Any], str]
    retry: Callable[[int, audit.Actor, str], Any]


def _replay_delivery(item_id: int, actor: audit.Actor, reason: str) -> Any:
    item = RecoveryItem.objects.get(pk=item_id)
    return services.recovery_item_replay(
        integration_id=item.integration_id, item_id=item_id, actor=actor, reason=reason
    )


SOURCES: dict[str, DeadLetterSource] = {
    source.name: source
    for source in (
        DeadLetterSource(
            name="integration_delivery",
            dead=lambda: RecoveryItem.objects.filter(status__in=RecoveryItem.REPLAYABLE),
            failed_at=lambda item: item.last_attempt_at or item.updated_at,
            error=lambda item: item.failure_code,
            summary=lambda item: f"{item.event_type} to integration {item.integration_id}",
            retry=_replay_delivery,
        ),
        DeadLetterSource(
            name="notification",
            dead=lambda: Notification.objects.filter(status=Notification.Status.DEAD),
            failed_at=lambda n: n.created_at,
            error=lambda n: n.last_error,
            summary=lambda n: f"{n.channel} {n.template} to {n.recipient}",
            retry=lambda pk, actor, reason: notification_requeue(
                notification_id=pk, actor=actor, reason=reason
            ),
        ),
        DeadLetterSource(
            name="refund",
            dead=lambda: Refund.objects.filter(
                status=Refund.Status.FAILED, next_retry_at__isnull=True
            ),
            failed_at=lambda r: r.updated_at,
            error=lambda r: r.last_error,
            summary=lambda r: f"refund of {r.amount} for payment {r.payment_id}",
            retry=lambda pk, actor, reason: refund_requeue(
                refund_id=pk, actor=actor, reason=reason
            ),
        ),
    )
}


class ManualReviewNotFound(NotFound):
    code = "OPS-404-MANUAL-REVIEW-NOT-FOUND"


class ManualReviewResolved(Conflict):
    code = "OPS-409-MANUAL-REVIEW-RESOLVED"


def sweep_one(source: DeadLetterSource, row: Any, now: datetime) -> str:
    failed_at = source.failed_at(row)
    error = source.error(row) or ""
    cutoff = now - timedelta(hours=settings.DLQ_MANUAL_REVIEW_AFTER_HOURS)
    if failed_at < cutoff or not is_transient(error):
        return _to_manual_review(source, row, failed_at, error) if failed_at < cutoff else "left"
    try:
        with transaction.atomic():
            SweepRetry.objects.create(source=source.name, source_id=row.pk)
            source.retry(row.pk, SWEEPER_ACTOR, f"DLQ sweep: transient failure {error[:80]}")
    except IntegrityError:
        return "already_retried"  # retried once already; the 24-hour rule takes it from here
    except ApplicationError as exc:
        logger.info("dlq_sweep_retry_refused", source=source.name, id=row.pk, error=exc.message)
        return "retry_refused"
    return "retried"


def _to_manual_review(source: DeadLetterSource, row: Any, failed_at: datetime, error: str) -> str:
    try:
        with transaction.atomic():
            review = ManualReviewItem.objects.create(
                source=source.name,
                source_id=row.pk,
                summary=source.summary(row)[:300],
                error=error,
                failed_at=failed_at,
            )
            audit.record(
                "recovery.manual_review.opened",
                obj=review,
                after={"source": source.name, "source_id": row.pk, "error": error},
                actor=SWEEPER_ACTOR,
            )
    except IntegrityError:
        return "already_in_review"
    return "manual_review"


@register_worker
class DlqSweeper(BatchWorker):
    name = "dlq_sweeper"
    description = "Every 15 minutes: old failures to manual review, recent transient ones retried"
    schedule_task = "recovery.tasks.run_dlq_sweeper"
    schedule_minutes = 15

    def claim(self, *, owner: str, limit: int) -> list[Any]:  # type: ignore[override]
        open_reviews = set(
            ManualReviewItem.objects.filter(status=ManualReviewItem.Status.OPEN).values_list(
                "source", "source_id"
            )
        )
        claimed: list[tuple[str, int]] = []
        for source in SOURCES.values():
            ids = source.dead().order_by("pk").values_list("pk", flat=True)[: limit * 4]
            claimed += [(source.name, pk) for pk in ids if (source.name, pk) not in open_reviews]
        return claimed[: limit * 4]

    def process(self, item_id: Any, *, owner: str) -> str:  # type: ignore[override]
        source_name, pk = item_id
        source = SOURCES[source_name]
        row = source.dead().filter(pk=pk).first()
        if row is None:
            return "gone"
        return sweep_one(source, row, timezone.now())


def manual_review_resolve(
    *, review_id: int, retry: bool, actor: audit.Actor, reason: str
) -> ManualReviewItem:
    with transaction.atomic():
        review = ManualReviewItem.objects.select_for_update().filter(pk=review_id).first()
        if review is None:
            raise ManualReviewNotFound()
        if review.status != ManualReviewItem.Status.OPEN:
            raise ManualReviewResolved(details={"resolution": review.resolution})
        if retry:
            SOURCES[review.source].retry(review.source_id, actor, reason)
        review.status = ManualReviewItem.Status.RESOLVED
        review.resolution = "retried" if retry else "dismissed"
        review.resolution_reason = reason
        review.resolved_by = audit.actor_label(actor)
        review.resolved_at = timezone.now()
        review.save()
        audit.record(
            "recovery.manual_review.resolved",
            obj=review,
            before={"status": "open"},
            after={"status": "resolved", "resolution": review.resolution},
            actor=actor,
            reason=reason,
        )
    return review


def sources() -> Iterable[DeadLetterSource]:
    return SOURCES.values()
