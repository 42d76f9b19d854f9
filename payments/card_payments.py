"""Card payments reported by Stripe's webhooks: a payment that succeeded is recorded once
and applied to what it paid for; refunds and disputes reported by Stripe update the payment."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from opsconsole.evidence import audit
from opsconsole.monitoring.alerts import alert_raise
from payments import services
from payments.models import HostedCheckoutSession, Payment, Refund, StripeEvent
from payments.money import amount_text, from_minor_units
from payments.refunds import payment_record
from payments.signals import payment_received


def on_payment_intent_succeeded(event: dict[str, Any]) -> None:
    """Record the payment once (by its payment intent), complete the hosted session it paid,
    and let its app apply it; one that cannot be applied is kept for a refund decision."""
    intent = event["data"]["object"]
    intent_id = str(intent.get("id") or "")
    if not intent_id:
        raise LookupError("payment_intent.succeeded without an id")
    metadata = intent.get("metadata") or {}
    booking_id = metadata.get("booking_id")
    currency = str(intent.get("currency") or "eur")
    payment = Payment.objects.filter(provider_payment_id=intent_id).first() or payment_record(
        reference=f"stripe_{intent_id}"[:100],
        subject=f"booking:{booking_id}" if booking_id else f"stripe:{intent_id}"[:100],
        amount=from_minor_units(intent.get("amount_received") or intent.get("amount"), currency),
        currency=currency.upper()[:3],
        method=Payment.Method.CARD,
        provider_payment_id=intent_id,
        actor="stripe",
    )
    _complete_hosted_session(metadata.get("reference"), event["id"])
    reasons = [
        str(reason)
        for _, reason in payment_received.send(sender=Payment, payment=payment, metadata=metadata)
        if reason
    ]
    if reasons and not payment.unapplied_reason:
        reason = "; ".join(reasons)[:300]
        Payment.objects.filter(pk=payment.pk).update(unapplied_reason=reason)
        audit.record(
            "payments.payment.unapplied",
            obj=payment,
            after={"unapplied_reason": reason},
            actor="stripe",
            reason=event["id"],
        )


def _complete_hosted_session(reference: Any, event_id: str) -> None:
    if not reference:
        return
    session = HostedCheckoutSession.objects.filter(reference=str(reference)).first()
    if session is not None and session.status in HostedCheckoutSession.REGENERABLE:
        services.hosted_session_transition(
            session_id=session.pk, transition="complete", actor="stripe", reason=event_id
        )


def on_charge_refunded(event: dict[str, Any]) -> None:
    """Stripe's total refunded so far, as it says: a partial refund leaves the rest paid."""
    charge = event["data"]["object"]
    intent = charge.get("payment_intent") or ""
    payment = Payment.objects.select_for_update().filter(provider_payment_id=intent).first()
    if payment is None:
        raise LookupError(f"no payment for payment_intent {intent!r}")
    before = {"status": payment.status, "amount_refunded": str(payment.amount_refunded)}
    payment.record_refunded(
        amount_refunded=from_minor_units(
            charge.get("amount_refunded"), str(charge.get("currency") or payment.currency)
        )
    )
    payment.save()
    audit.record(
        "payments.payment.refunded",
        obj=payment,
        before=before,
        after={"status": payment.status, "amount_refunded": str(payment.amount_refunded)},
        actor="stripe",
        reason=event["id"],
    )


def on_dispute_created(event: dict[str, Any]) -> None:
    """A customer disputes a charge: money may be taken back, so a person must look now."""
    dispute = event["data"]["object"]
    intent = dispute.get("payment_intent") or ""
    payment = Payment.objects.filter(
        Q(provider_payment_id=intent) | Q(provider_payment_id=dispute.get("charge") or "-")
    ).first()
    subject = payment or StripeEvent.objects.get(event_id=event["id"])
    alert_raise(
        kind="payment_disputed",
        severity="critical",
        obj=subject,
        message=f"Stripe dispute {dispute.get('id')} on {intent or dispute.get('charge')}: "
        f"{_dispute_amount(dispute)} "
        f"({dispute.get('reason') or 'no reason given'})",
        details={"dispute": dispute.get("id"), "status": dispute.get("status")},
    )


def _dispute_amount(dispute: dict[str, Any]) -> str:
    currency = str(dispute.get("currency") or "")
    amount = from_minor_units(dispute.get("amount"), currency)
    return f"{amount_text(amount, currency)} {currency.upper()}"


def on_refund_updated(event: dict[str, Any]) -> None:
    """Stripe reports a refund's later fate. One we counted as paid that then failed or was
    cancelled means the customer was not paid back: a person must act (critical alert)."""
    stripe_refund = event["data"]["object"]
    refund = Refund.objects.filter(provider_refund_id=str(stripe_refund.get("id") or "-")).first()
    if refund is None:
        raise LookupError(f"no refund {stripe_refund.get('id')!r}")
    status = str(stripe_refund.get("status") or "")
    audit.record(
        "payments.refund.updated_by_provider",
        obj=refund,
        after={"provider_status": status, "failure_reason": stripe_refund.get("failure_reason")},
        actor="stripe",
        reason=event["id"],
    )
    if status in ("failed", "canceled") and refund.status == Refund.Status.COMPLETED:
        alert_raise(
            kind="refund_reversed",
            severity="critical",
            obj=refund,
            message=f"Stripe reports refund {refund.provider_refund_id} {status} "
            f"({stripe_refund.get('failure_reason') or 'no reason given'}): "
            f"{refund.amount} was not paid back; pay it another way",
            details={"provider_status": status},
        )
