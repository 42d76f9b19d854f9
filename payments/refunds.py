"""Refunds (docs/runbooks/bookings-payments-notifications.md): PENDING row first, then the
provider with `refund:<id>`, then the outcome.

Split from services.py because refunds are their own recovery workflow with their own worker.
"""

from __future__ import annotations

from decimal import Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.http.errors import Conflict, NotFound
from opsconsole.monitoring.alerts import alert_raise, alerts_settle
from payments.adapters import RefundOutcome, RefundProvider, default_refund_provider
from payments.events import payment_event, refund_event
from payments.models import Payment, Refund
from payments.money import to_minor_units

logger = structlog.get_logger(__name__)

EVENT_PREFIX = "payments.refund"


class PaymentNotFound(NotFound):
    code = "PAY-404-PAYMENT-NOT-FOUND"
    default_message = "Payment not found."


class RefundAmountInvalid(Conflict):
    code = "PAY-409-REFUND-AMOUNT-INVALID"
    default_message = "The refund amount does not match what can be refunded."


class RefundLeaseLost(Conflict):
    code = "PAY-409-REFUND-LEASE-LOST"


def refund_retry_policy() -> RetryPolicy:
    """The first retry 5 minutes after the failure, then exponential from 60 s, 3 retries
    (4 attempts in all), never sooner than those delays
    (docs/runbooks/bookings-payments-notifications.md)."""
    return RetryPolicy(
        max_attempts=settings.REFUND_MAX_ATTEMPTS,
        first_delay_seconds=settings.REFUND_FIRST_RETRY_SECONDS,
        base_seconds=settings.REFUND_BACKOFF_BASE_SECONDS,
        cap_seconds=settings.REFUND_BACKOFF_CAP_SECONDS,
        jitter="floor",
    )


def _refund_open(*, payment_id: int, amount: Decimal, reason: str, actor: audit.Actor) -> Refund:
    """The payment's refund row: created PENDING, or the one that already exists."""
    existing = Refund.objects.filter(payment_id=payment_id).first()
    if existing is not None:
        return existing
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound()
    if amount <= 0 or amount > payment.amount:
        raise RefundAmountInvalid(
            details={"amount": str(amount), "refundable": str(payment.amount)}
        )
    offline = payment.method in Payment.OFFLINE_METHODS
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                payment=payment,
                amount=amount,
                reason=reason,
                requested_by=audit.actor_label(actor),
                # Paid offline, paid back offline: owed until staff settle it, never Stripe.
                **({"status": Refund.Status.OWED, "next_retry_at": None} if offline else {}),
            )
            audit.record(
                f"{EVENT_PREFIX}.owed" if offline else f"{EVENT_PREFIX}.requested",
                obj=refund,
                after=refund.state(),
                actor=actor,
                reason=reason,
                metadata={"payment": payment.reference, "amount": str(amount)},
            )
            return refund
    except IntegrityError:
        # A concurrent request created it first; the unique index makes that one row.
        return Refund.objects.get(payment_id=payment_id)


def refund_request(
    *,
    payment_id: int,
    amount: Decimal,
    reason: str,
    actor: audit.Actor,
    provider: RefundProvider | None = None,
) -> Refund:
    """Refund a payment now: one provider attempt; a failure is retried by the worker. A
    payment taken offline gets a refund OWED to the customer, settled by staff."""
    refund = _refund_open(payment_id=payment_id, amount=amount, reason=reason, actor=actor)
    if refund.status in (Refund.Status.COMPLETED, Refund.Status.OWED):
        return refund
    return refund_attempt(refund_id=refund.pk, provider=provider)


def refund_attempt(
    *, refund_id: int, provider: RefundProvider | None = None, lease_owner: str = ""
) -> Refund:
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status in (Refund.Status.COMPLETED, Refund.Status.OWED):
        return refund  # done, or paid back offline: never a provider call
    provider = provider or default_refund_provider()
    outcome = provider.create_refund(
        payment_intent=refund.payment.provider_payment_id or refund.payment.reference,
        amount_cents=to_minor_units(refund.amount, refund.payment.currency),
        idempotency_key=refund.provider_idempotency_key,
    )
    return _refund_record_outcome(refund_id=refund_id, outcome=outcome, lease_owner=lease_owner)


@transaction.atomic
def _refund_record_outcome(*, refund_id: int, outcome: RefundOutcome, lease_owner: str) -> Refund:
    refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
    if refund.status == Refund.Status.COMPLETED:
        return refund  # a concurrent attempt with the same idempotency key finished first
    if lease_owner and refund.lease_owner != lease_owner:
        raise RefundLeaseLost(f"refund {refund_id} changed hands; outcome dropped")
    before = refund.state()
    refund.lease_owner, refund.lease_expires_at = "", None
    if outcome.ok:
        refund.complete(provider_refund_id=outcome.provider_refund_id)
        refund.save()
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        payment.record_refunded(amount_refunded=payment.amount_refunded + refund.amount)
        payment.save()
        audit.record(
            f"{EVENT_PREFIX}.completed",
            obj=refund,
            before=before,
            after=refund.state(),
            actor="worker:refunds" if lease_owner else None,
        )
        refund_event(refund, "refund.succeeded", provider_refund_id=refund.provider_refund_id)
        alerts_settle(obj=refund, reason=f"refund {refund.pk} completed at the provider")
        return refund
    policy = refund_retry_policy()
    attempts = refund.attempt_count + 1
    will_retry = outcome.retryable and not policy.exhausted(attempts, refund.max_attempts)
    refund.fail(
        error=f"{outcome.failure_code}: {outcome.failure_detail}".strip(": ")[:2000],
        next_retry_at=policy.next_retry_at(attempts, retry_after=outcome.retry_after_seconds)
        if will_retry
        else None,
    )
    refund.save()
    audit.record(
        f"{EVENT_PREFIX}.failed",
        obj=refund,
        before=before,
        after=refund.state(),
        actor="worker:refunds" if lease_owner else None,
        metadata={"will_retry": will_retry, "failure_code": outcome.failure_code},
    )
    if not will_retry:  # given up: people decide now, and partners hear of it
        refund_event(refund, "refund.failed", failure_code=outcome.failure_code)
    if refund.amount > settings.REFUND_ALERT_AMOUNT:
        alert_raise(
            kind="refund-failed",
            severity="critical",
            obj=refund,
            message=f"Refund of {refund.amount} {refund.payment.currency} failed "
            f"(attempt {refund.attempt_count}): {outcome.failure_code}",
            details={"will_retry": will_retry, "payment": refund.payment.reference},
        )
    return refund


def due_refunds_filter() -> Q:
    return Q(
        status=Refund.Status.FAILED,
        next_retry_at__lte=timezone.now(),
        attempt_count__lt=F("max_attempts"),
    )


@transaction.atomic
def payment_record(
    *,
    reference: str,
    subject: str,
    amount: Decimal,
    currency: str,
    method: str,
    provider_payment_id: str = "",
    actor: audit.Actor = None,
) -> Payment:
    offline = method in Payment.OFFLINE_METHODS
    payment = Payment.objects.create(
        reference=reference,
        subject=subject,
        amount=amount,
        currency=currency,
        method=method,
        provider_payment_id=provider_payment_id,
        # An offline payment is RECORDED, with the staff member who recorded it.
        status=Payment.Status.RECORDED if offline else Payment.Status.SUCCEEDED,
        recorded_by=audit.actor_label(actor) if offline else "",
    )
    audit.record(
        "payments.payment.recorded",
        obj=payment,
        after={"amount": str(amount), "currency": currency, "method": method, "subject": subject},
        actor=actor,
    )
    payment_event(payment)
    return payment


@transaction.atomic
def refund_requeue(*, refund_id: int, actor: audit.Actor, reason: str) -> Refund:
    """One more provider attempt for a refund that gave up (same key: no double refund)."""
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.status != Refund.Status.FAILED:
        raise RefundAmountInvalid(
            "Only a failed refund can be retried.",
            code="PAY-409-REFUND-NOT-RETRYABLE",
            details={"status": refund.status},
        )
    before = refund.state()
    refund.max_attempts = max(refund.max_attempts, refund.attempt_count + 1)
    refund.next_retry_at = timezone.now()
    refund.save()
    audit.record(
        f"{EVENT_PREFIX}.requeued",
        obj=refund,
        before=before,
        after=refund.state(),
        actor=actor,
        reason=reason,
    )
    return refund
