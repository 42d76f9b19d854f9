"""Payments' business events for the outbox: what a partner system is told, and nothing it
should not hold (no card data, no personal data beyond the references it already knows)."""

from __future__ import annotations

from typing import Any

from opsconsole.db import outbox
from payments.models import HostedCheckoutSession, Payment, Refund, Voucher
from payments.money import amount_text


def payment_event(payment: Payment) -> None:
    """`payment.succeeded` for a card payment the provider confirmed; `payment.recorded` for
    one taken offline (cash, transfer, terminal) and recorded by staff or a station."""
    outbox.publish(
        "payment.succeeded" if payment.method == Payment.Method.CARD else "payment.recorded",
        {
            "payment_id": payment.pk,
            "reference": payment.reference,
            "subject": payment.subject,
            "amount": amount_text(payment.amount, payment.currency),
            "currency": payment.currency,
            "method": payment.method,
        },
    )


def refund_event(refund: Refund, event_type: str, **extra: Any) -> None:
    outbox.publish(
        event_type,
        {
            "refund_id": refund.pk,
            "payment_id": refund.payment_id,
            "amount": amount_text(refund.amount, refund.payment.currency),
            "currency": refund.payment.currency,
            "status": refund.status,
            **extra,
        },
    )


def voucher_event(voucher: Voucher, event_type: str) -> None:
    outbox.publish(
        event_type,
        {
            "voucher_id": voucher.pk,
            "code": voucher.code,
            "status": voucher.status,
            "value": str(voucher.value),
            "station_id": voucher.redeemed_station or None,
        },
    )


def hosted_session_event(session: HostedCheckoutSession) -> None:
    if session.status not in (session.Status.COMPLETED, session.Status.ABANDONED):
        return
    outbox.publish(
        f"hosted_session.{session.status}",
        {
            "session_id": session.pk,
            "reference": session.reference,
            "amount": amount_text(session.amount, session.currency),
            "currency": session.currency,
            "status": session.status,
        },
    )
