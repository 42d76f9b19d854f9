"""Loyalty and onboarding nudges (docs/runbooks/incident-response.md).

Two workers of the one engine send them:
- `loyalty_nudge_dispatch`: a customer whose voucher expires within LOYALTY_NUDGE_EXPIRY_DAYS,
  and a customer whose referral's first booking is paid (a thank-you);
- `onboarding_nudges`: a customer who signed up within ONBOARDING_WINDOW_DAYS and has not
  booked gets the sequence (a nudge ONBOARDING_NUDGE_DAYS after signing up, each step after
  the one before), once.

Each run first plans what is owed (one row per kind and subject: the unique pair makes
"once" hold however often it runs), then sends the due rows through the email channel with
a lease each: without consent or to a suppressed address a nudge is skipped, in the
customer's quiet hours it waits for their morning, and a send the provider refuses retries
with backoff and parks for the failure inbox. Each send is a span, `otel.status_code=ERROR`
when it fails (the incident guide alerts on those of the loyalty dispatch).

Planning and sending sit with bookings, above payments and notifications, which they read
and send through; the rows are bookings.nudge_models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from bookings.models import Booking, ContactPreference, Nudge, Referral
from notifications.services import communication_send
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.monitoring.tracing import internal_span, mark_span_failed
from opsconsole.workers import BatchWorker, register_worker
from opsconsole.workers.claims import RunContext, claim_due_rows
from payments.models import Voucher

logger = structlog.get_logger(__name__)

LOYALTY_DISPATCH = "loyalty_nudge_dispatch"
ONBOARDING = "onboarding_nudges"
HEADLINES = {
    Nudge.Kind.VOUCHER_EXPIRING: "Your voucher expires soon",
    Nudge.Kind.REFERRAL_THANKS: "Thank you for bringing a friend",
    Nudge.Kind.ONBOARDING_1: "Book your first court",
    Nudge.Kind.ONBOARDING_2: "Courts are free this week",
    Nudge.Kind.ONBOARDING_3: "Still thinking about it?",
}


class NudgeOutcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # no consent, a suppressed address, no longer relevant
    DEFERRED = "deferred"  # the customer's quiet hours: sent in their morning
    RETRY_SCHEDULED = "retry_scheduled"
    PARKED = "parked"
    ALREADY_DONE = "already_done"


class NudgeSendFailed(Exception):
    """The provider refused or failed the send (its code and detail)."""


def nudge_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.NUDGE_MAX_ATTEMPTS,
        base_seconds=settings.NUDGE_BACKOFF_BASE_SECONDS,
        cap_seconds=3600,
        jitter="floor",
    )


# ------------------------------------------------------------------------------ planning


def _without_nudge(rows: QuerySet, kind: str, prefix: str) -> QuerySet:
    """`rows` that have no nudge of `kind` yet (subject "<prefix>:<pk>"), in SQL."""
    subject = Concat(Value(f"{prefix}:"), Cast(OuterRef("pk"), CharField()))
    return rows.filter(~Exists(Nudge.objects.filter(kind=kind, subject=subject)))


def loyalty_nudges_plan(now: datetime | None = None) -> int:
    """Owe a nudge to each customer whose voucher expires soon or whose referral booked and
    paid; returns how many were new."""
    now = now or timezone.now()
    users = get_user_model().objects
    rows: list[Nudge] = []
    soon = now + timedelta(days=settings.LOYALTY_NUDGE_EXPIRY_DAYS)
    expiring = _without_nudge(
        Voucher.objects.filter(
            status=Voucher.Status.ISSUED, expires_at__gt=now, expires_at__lte=soon
        ).exclude(customer_email=""),
        Nudge.Kind.VOUCHER_EXPIRING,
        "voucher",
    )
    for voucher in expiring[: settings.WORKER_BATCH_SIZE * 20]:
        customer = users.filter(email__iexact=voucher.customer_email).order_by("pk").first()
        if customer is not None:  # a voucher bought for someone without an account: no nudge
            rows.append(
                Nudge(
                    kind=Nudge.Kind.VOUCHER_EXPIRING,
                    subject=f"voucher:{voucher.pk}",
                    customer=customer,
                    recipient=voucher.customer_email,
                    next_retry_at=now,
                )
            )
    paid = Booking.objects.filter(
        customer=OuterRef("referred"), payment_status=Booking.PaymentStatus.PAID
    )
    to_thank = _without_nudge(
        Referral.objects.filter(Exists(paid)).select_related("referrer"),
        Nudge.Kind.REFERRAL_THANKS,
        "referral",
    )
    for referral in to_thank[: settings.WORKER_BATCH_SIZE * 20]:
        if referral.referrer.email:
            rows.append(
                Nudge(
                    kind=Nudge.Kind.REFERRAL_THANKS,
                    subject=f"referral:{referral.pk}",
                    customer=referral.referrer,
                    recipient=referral.referrer.email,
                    next_retry_at=now,
                )
            )
    return len(Nudge.objects.bulk_create(rows, ignore_conflicts=True))


def onboarding_nudges_plan(
    now: datetime | None = None,
    *,
    signed_up_from: datetime | None = None,
    signed_up_until: datetime | None = None,
) -> int:
    """Owe the next step of the sequence to each customer who signed up in the window (by
    default the last ONBOARDING_WINDOW_DAYS), has not booked, and is that many days in."""
    now = now or timezone.now()
    since = signed_up_from or now - timedelta(days=settings.ONBOARDING_WINDOW_DAYS)
    until = signed_up_until or now
    kinds = Nudge.ONBOARDING_KINDS
    rows: list[Nudge] = []
    for step, (kind, days) in enumerate(zip(kinds, settings.ONBOARDING_NUDGE_DAYS, strict=True)):
        customers = (
            get_user_model()
            .objects.filter(
                groups__name="Booking client",
                date_joined__gte=since,
                date_joined__lt=until,
                date_joined__lte=now - timedelta(days=days),
            )
            .exclude(email="")
            .filter(~Exists(Booking.objects.filter(customer=OuterRef("pk"))))
        )
        if step:  # each step after the one before went out (or was skipped on purpose)
            subject = Concat(Value("user:"), Cast(OuterRef("pk"), CharField()))
            before = Nudge.objects.filter(
                kind=kinds[step - 1],
                subject=subject,
                status__in=[Nudge.Status.SENT, Nudge.Status.SKIPPED],
            )
            customers = customers.filter(Exists(before))
        for customer in _without_nudge(customers, kind, "user")[: settings.WORKER_BATCH_SIZE * 20]:
            rows.append(
                Nudge(
                    kind=kind,
                    subject=f"user:{customer.pk}",
                    customer=customer,
                    recipient=customer.email,
                    next_retry_at=now,
                )
            )
    return len(Nudge.objects.bulk_create(rows, ignore_conflicts=True))


# ------------------------------------------------------------------------------- sending


def _quiet_until(customer_timezone: str, now: datetime) -> datetime | None:
    """The end of the customer's quiet hours when `now` falls in them, else None."""
    start, end = (time.fromisoformat(part) for part in settings.NUDGE_QUIET_HOURS.split("-"))
    try:
        zone = ZoneInfo(customer_timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    local = now.astimezone(zone)
    inside = (start <= local.time() < end) if start < end else not (end <= local.time() < start)
    if not inside:
        return None
    morning = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if morning <= local:
        morning += timedelta(days=1)
    return morning


def _still_owed(nudge: Nudge) -> str:
    """Why the nudge no longer makes sense ("" if it does)."""
    if nudge.kind in Nudge.ONBOARDING_KINDS:
        if Booking.objects.filter(customer_id=nudge.customer_id).exists():
            return "the customer has booked"
    elif nudge.kind == Nudge.Kind.VOUCHER_EXPIRING:
        voucher = Voucher.objects.filter(pk=int(nudge.subject.split(":")[1])).first()
        if voucher is None or voucher.status != Voucher.Status.ISSUED:
            return "the voucher is no longer open"
        if voucher.expires_at is not None and voucher.expires_at <= timezone.now():
            return "the voucher has expired"
    return ""


def nudge_send(*, nudge_id: int, lease_owner: str, worker: str) -> NudgeOutcome:
    """Send one claimed nudge (the provider call with no transaction open)."""
    nudge = (
        Nudge.objects.select_related("customer")
        .filter(pk=nudge_id, lease_owner=lease_owner, status=Nudge.Status.PENDING)
        .first()
    )
    if nudge is None:
        return NudgeOutcome.ALREADY_DONE
    with internal_span(
        f"{worker}.send", **{"nudge.kind": nudge.kind, "nudge.id": nudge.pk}
    ) as span:
        preference = ContactPreference.objects.filter(customer_id=nudge.customer_id).first()
        skip = _still_owed(nudge) or (
            "" if preference and preference.nudges_allowed else "no consent to nudges"
        )
        if skip:
            _finish(nudge, Nudge.Status.SKIPPED, skip_reason=skip)
            return NudgeOutcome.SKIPPED
        now = timezone.now()
        quiet_until = _quiet_until(preference.timezone if preference else "", now)
        if quiet_until is not None:
            Nudge.objects.filter(pk=nudge.pk, lease_owner=lease_owner).update(
                next_retry_at=quiet_until, lease_owner="", lease_expires_at=None
            )
            return NudgeOutcome.DEFERRED
        log = communication_send(
            channel="email",
            to=nudge.recipient,
            template="nudge",
            context=_context(nudge),
            subject_type="notifications.nudge",
            subject_id=nudge.pk,
            triggered_by=worker,
            idempotency_key=f"nudge:{nudge.pk}:{nudge.attempt_count + 1}",
        )
        if log.status == "sent":
            _finish(nudge, Nudge.Status.SENT, log_id=log.pk)
            return NudgeOutcome.SENT
        if log.status == "skipped":  # a suppressed address, or the channel switched off
            _finish(
                nudge, Nudge.Status.SKIPPED, skip_reason=log.failure_detail[:200], log_id=log.pk
            )
            return NudgeOutcome.SKIPPED
        failure = NudgeSendFailed(f"{log.failure_code}: {log.failure_detail}"[:1000])
        if span is not None:
            mark_span_failed(span, failure)
        logger.error(
            "nudge_send_failed",
            worker=worker,
            nudge_id=nudge.pk,
            kind=nudge.kind,
            failure_code=log.failure_code,
        )
        return _record_failure(nudge, log.failure_code, str(failure))


def _context(nudge: Nudge) -> dict[str, Any]:
    context: dict[str, Any] = {"headline": HEADLINES[Nudge.Kind(nudge.kind)], "kind": nudge.kind}
    if nudge.kind == Nudge.Kind.VOUCHER_EXPIRING:
        voucher = Voucher.objects.get(pk=int(nudge.subject.split(":")[1]))
        context.update(
            voucher_value=str(voucher.value),
            expires_at=voucher.expires_at.isoformat() if voucher.expires_at else None,
        )
    return context


@transaction.atomic
def _finish(nudge: Nudge, status: str, *, skip_reason: str = "", log_id: int | None = None) -> None:
    before = nudge.state()
    nudge.status = status
    nudge.skip_reason = skip_reason
    nudge.communication_log_id = log_id
    nudge.attempt_count += 1 if status == Nudge.Status.SENT else 0
    nudge.sent_at = timezone.now() if status == Nudge.Status.SENT else None
    nudge.next_retry_at = None
    nudge.release_lease()
    nudge.save()
    audit.record(
        f"notifications.nudge.{status.lower()}",
        obj=nudge,
        before=before,
        after=nudge.state(),
        actor=LOYALTY_DISPATCH if nudge.kind in Nudge.LOYALTY_KINDS else ONBOARDING,
    )


@transaction.atomic
def _record_failure(nudge: Nudge, code: str, error: str) -> NudgeOutcome:
    before = nudge.state()
    parked = nudge.count_failed_attempt(nudge_retry_policy())
    nudge.status = Nudge.Status.PARKED if parked else Nudge.Status.PENDING
    nudge.failure_code, nudge.last_error = code, error
    nudge.release_lease()
    nudge.save()
    audit.record(
        "notifications.nudge.parked" if parked else "notifications.nudge.retry_scheduled",
        obj=nudge,
        before=before,
        after=nudge.state(),
        actor=LOYALTY_DISPATCH if nudge.kind in Nudge.LOYALTY_KINDS else ONBOARDING,
    )
    return NudgeOutcome.PARKED if parked else NudgeOutcome.RETRY_SCHEDULED


@transaction.atomic
def nudges_requeue(*, nudge_ids: Sequence[int], actor: audit.Actor, reason: str) -> int:
    """Parked nudges due again with a fresh budget (the inbox's replay, the re-run scripts).
    A nudge that went out is never sent again."""
    requeued = 0
    for nudge in Nudge.objects.select_for_update().filter(
        pk__in=list(nudge_ids), status=Nudge.Status.PARKED
    ):
        before = nudge.state()
        nudge.status, nudge.attempt_count = Nudge.Status.PENDING, 0
        nudge.next_retry_at = timezone.now()
        nudge.save()
        audit.record(
            "notifications.nudge.requeued",
            obj=nudge,
            before=before,
            after=nudge.state(),
            actor=actor,
            reason=reason,
        )
        requeued += 1
    return requeued


# ------------------------------------------------------------------------------- workers


_OUTCOME_CLASSES = {"sent": "succeeded", "retry_scheduled": "retried", "parked": "dead_lettered"}


class _NudgeWorker(BatchWorker):
    kinds: ClassVar[Sequence[str]] = ()
    Outcome = NudgeOutcome
    lease_model = Nudge
    outcome_classes: ClassVar[dict[str, str]] = _OUTCOME_CLASSES
    schedule_minutes = 5

    def plan(self) -> int:
        raise NotImplementedError

    def begin_run(self, run: RunContext) -> None:
        planned = self.plan()
        if planned:
            logger.info("nudges_planned", worker=self.name, planned=planned)

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return claim_due_rows(
            Nudge,
            filters=Q(
                status=Nudge.Status.PENDING,
                kind__in=list(self.kinds),
                next_retry_at__lte=timezone.now(),
            ),
            owner=run.owner,
            limit=limit,
            lease_seconds=self.lease_seconds,
        )

    def process(self, item_id: int, run: RunContext) -> NudgeOutcome:
        return nudge_send(nudge_id=item_id, lease_owner=run.owner, worker=self.name)

    def item_seconds(self) -> float:
        return float(settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS) + 3


@register_worker
class LoyaltyNudgeDispatch(_NudgeWorker):
    name = LOYALTY_DISPATCH
    description = (
        "Loyalty: vouchers about to expire and referrals to thank, one nudge each"
        " (runbook: Incident response)"
    )
    kinds = Nudge.LOYALTY_KINDS

    def plan(self) -> int:
        return loyalty_nudges_plan()


@register_worker
class OnboardingNudges(_NudgeWorker):
    name = ONBOARDING
    description = (
        "Onboarding: customers who signed up and have not booked, the sequence once"
        " (runbook: Incident response)"
    )
    kinds = Nudge.ONBOARDING_KINDS

    def plan(self) -> int:
        return onboarding_nudges_plan()
