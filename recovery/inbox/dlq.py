"""The DLQ sweeper (every 15 minutes, docs/runbooks/bookings-payments-notifications.md):
failures older than 24 hours go to the manual review queue; recent transient failures are
retried, once per item.

It works on the registered failure sources that declare a dead-lettered share, so "what is
parked, what is its error, how is it replayed" is written once, by the app that owns it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, models, transaction

from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureEntry, FailureSource
from opsconsole.http.errors import ApplicationError, Conflict, NotFound
from recovery.inbox.groups import FailureNotOpen, failure_resolve_by_operator, open_rows
from recovery.inbox.replay_guard import failure_replay
from recovery.models import ManualReviewItem, SweepRetry

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


def swept_sources() -> list[FailureSource]:
    return [s for s in failure_sources.all_sources() if s.dead_lettered is not None]


class ManualReviewNotFound(NotFound):
    code = "OPS-404-MANUAL-REVIEW-NOT-FOUND"


class ManualReviewResolved(Conflict):
    code = "OPS-409-MANUAL-REVIEW-RESOLVED"


def is_transient(failure_code: str) -> bool:
    return failure_code.strip().startswith(TRANSIENT_PREFIXES)


def dead_rows(name: str) -> models.QuerySet:
    source = failure_sources.get(name)
    if source.dead_lettered is None:
        raise ValueError(f"failure source {name!r} declares no dead-lettered rows")
    return source.dead_lettered(open_rows(source))


def sweep_one(source: FailureSource, row: Any, now: datetime) -> str:
    entry = source.entry(row)
    cutoff = now - timedelta(hours=settings.DLQ_MANUAL_REVIEW_AFTER_HOURS)
    if entry.last_seen < cutoff:
        return _to_manual_review(source, row.pk, entry)
    if not is_transient(entry.failure_code):
        return "left"  # permanent and recent: the 24-hour rule takes it to a human
    try:
        with transaction.atomic():
            SweepRetry.objects.create(
                source=source.name, source_id=row.pk, failed_at=entry.last_seen
            )
    except IntegrityError:
        return "already_retried"
    # The replay runs after the one-retry mark is committed and outside any transaction
    # (a refund replay calls the provider).
    try:
        failure_replay(
            source=source.name,
            source_id=row.pk,
            actor=SWEEPER_ACTOR,
            reason=f"DLQ sweep: transient failure {entry.failure_code}",
        )
    except ApplicationError as exc:
        logger.info("dlq_sweep_retry_refused", source=source.name, id=row.pk, error=exc.message)
        return "retry_refused"
    return "retried"


# A review closed because its failure was replayed or resolved elsewhere (its record's page,
# the inbox, the case view): the same delivery is never worked twice from two queues.
CLOSED_ELSEWHERE = "closed_elsewhere"
CLOSE_BATCH = 500


def close_reviews_of_closed_failures() -> int:
    """Close the open reviews whose failure is no longer failing; how many were closed."""
    closed = 0
    for source in swept_sources():
        still_failing = open_rows(source).values("pk")
        stale = (
            ManualReviewItem.objects.filter(source=source.name, status=ManualReviewItem.Status.OPEN)
            .exclude(source_id__in=still_failing)
            .values_list("pk", flat=True)[:CLOSE_BATCH]
        )
        for review_id in list(stale):
            with transaction.atomic():
                review = (
                    ManualReviewItem.objects.select_for_update()
                    .filter(pk=review_id, status=ManualReviewItem.Status.OPEN)
                    .first()
                )
                if review is None:
                    continue
                review.resolve(
                    resolution=CLOSED_ELSEWHERE,
                    reason="its failure was replayed or resolved outside this review",
                    resolved_by=SWEEPER_ACTOR,
                )
                review.save()
                audit.record(
                    "recovery.manual_review.resolved",
                    obj=review,
                    before={"status": "open"},
                    after={"status": "resolved", "resolution": CLOSED_ELSEWHERE},
                    actor=SWEEPER_ACTOR,
                    reason=review.resolution_reason,
                )
                closed += 1
    return closed


def _dismiss_failure(*, review_id: int, actor: audit.Actor, reason: str) -> None:
    review = ManualReviewItem.objects.filter(pk=review_id).first()
    if review is None or review.status != ManualReviewItem.Status.OPEN:
        return  # the review's own checks answer below
    try:
        outcome = failure_resolve_by_operator(
            source=review.source, source_id=review.source_id, actor=actor, reason=reason
        )
    except FailureNotOpen:
        return  # replayed, or resolved, meanwhile: only the review is left to close
    if outcome.awaiting_second_operator:
        raise ManualReviewAwaitsSecondOperator(details={"requested_by": outcome.requested_by})


def _to_manual_review(source: FailureSource, source_id: int, entry: FailureEntry) -> str:
    try:
        with transaction.atomic():
            review = ManualReviewItem.objects.create(
                source=source.name,
                source_id=source_id,
                summary=f"{entry.provider}: {entry.error}"[:300],
                error=entry.failure_code,
                failed_at=entry.last_seen,
            )
            audit.record(
                "recovery.manual_review.opened",
                obj=review,
                after={"source": source.name, "source_id": source_id, "error": review.error},
                actor=SWEEPER_ACTOR,
            )
    except IntegrityError:
        return "already_in_review"
    return "manual_review"


class ManualReviewAwaitsSecondOperator(Conflict):
    code = "OPS-409-SECOND-OPERATOR-REQUIRED"
    default_message = (
        "This failure moves money: a second operator must also dismiss it. Your request is "
        "recorded; the review stays open until then."
    )


def manual_review_resolve(
    *, review_id: int, retry: bool, actor: audit.Actor, reason: str
) -> ManualReviewItem:
    """Retry the failure, or dismiss it. A dismissal resolves the failure itself (the
    inbox's resolution, two operators for money), so the next sweep does not reopen it."""
    if not retry:
        _dismiss_failure(review_id=review_id, actor=actor, reason=reason)
    with transaction.atomic():
        review = ManualReviewItem.objects.select_for_update().filter(pk=review_id).first()
        if review is None:
            raise ManualReviewNotFound()
        if review.status != ManualReviewItem.Status.OPEN:
            raise ManualReviewResolved(details={"resolution": review.resolution})
        review.resolve(
            resolution="retried" if retry else "dismissed",
            reason=reason,
            resolved_by=audit.actor_label(actor),
        )
        review.save()
        audit.record(
            "recovery.manual_review.resolved",
            obj=review,
            before={"status": "open"},
            after={"status": "resolved", "resolution": review.resolution},
            actor=actor,
            reason=reason,
        )
    if retry:
        # After the review is closed and outside its transaction: a replay may call out.
        failure_replay(source=review.source, source_id=review.source_id, actor=actor, reason=reason)
    return review
