"""What the customer was charged and refunded, totals that reconcile (paid - refunded = net),
and warnings where money and state disagree."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from bookings.models import Booking
from opsconsole.http.inputs import is_id
from payments.models import Payment, Refund, WebhookFailure
from payments.money import amount_text
from recovery.cases.customer import Customer
from recovery.cases.entries import stripe_object
from recovery.cases.timeline import webhook_failures

CENTS = Decimal("100")
OPEN_REFUND = (Refund.Status.PENDING, Refund.Status.OWED, Refund.Status.FAILED)


def reconciliation(customer: Customer) -> dict[str, Any]:
    payments = list(Payment.objects.filter(pk__in=customer.payment_ids).order_by("created_at"))
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"paid": Decimal("0"), "refunded": Decimal("0")}
    )
    net_by_subject: dict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        totals[payment.currency]["paid"] += payment.amount
        totals[payment.currency]["refunded"] += payment.amount_refunded
        net_by_subject[payment.subject] += payment.amount - payment.amount_refunded
    refunds = Refund.objects.filter(pk__in=customer.refund_ids).select_related("payment")
    open_refund_payments = {r.payment_id for r in refunds if r.status in OPEN_REFUND}
    warnings = _booking_warnings(customer, payments, net_by_subject, open_refund_payments)
    warnings += _orphan_payment_warnings(customer, payments)
    return {
        "charged": [
            {
                "payment_id": p.pk,
                "reference": p.reference,
                "amount": amount_text(p.amount, p.currency),
                "refunded": amount_text(p.amount_refunded, p.currency),
                "currency": p.currency,
                "method": p.method,
                "status": p.status,
                "at": p.created_at,
            }
            for p in payments
        ],
        "refunds": [
            {
                "refund_id": r.pk,
                "payment_id": r.payment_id,
                "amount": amount_text(r.amount, r.payment.currency),
                "status": r.status,
                "at": r.created_at,
            }
            for r in refunds.order_by("created_at")
        ],
        "totals": {
            currency: {
                "paid": amount_text(t["paid"], currency),
                "refunded": amount_text(t["refunded"], currency),
                "net": amount_text(t["paid"] - t["refunded"], currency),
            }
            for currency, t in sorted(totals.items())
        },
        "warnings": warnings,
    }


def _booking_warnings(
    customer: Customer,
    payments: list[Payment],
    net_by_subject: dict[str, Decimal],
    open_refund_payments: set[int],
) -> list[dict[str, Any]]:
    warnings = []
    paid_by_subject: dict[str, list[int]] = defaultdict(list)
    for payment in payments:
        paid_by_subject[payment.subject].append(payment.pk)
    for booking in Booking.objects.filter(pk__in=customer.booking_ids).order_by("pk"):
        subject = f"booking:{booking.pk}"
        net = net_by_subject.get(subject, Decimal("0"))
        if booking.payment_status == Booking.PaymentStatus.PAID and net <= 0:
            warnings.append(
                {
                    "code": "paid_booking_without_money",
                    "booking_id": booking.pk,
                    "message": f"Booking {booking.pk} is PAID but its payments net {net}.",
                }
            )
        refunding = any(pk in open_refund_payments for pk in paid_by_subject.get(subject, []))
        if booking.status == Booking.Status.CANCELLED and net > 0 and not refunding:
            warnings.append(
                {
                    "code": "cancelled_booking_still_charged",
                    "booking_id": booking.pk,
                    "message": f"Booking {booking.pk} is CANCELLED but {net} is still charged "
                    "and no refund is open.",
                }
            )
    return warnings


def _orphan_payment_warnings(customer: Customer, payments: list[Payment]) -> list[dict[str, Any]]:
    warnings = []
    booked = set(customer.booking_subjects())
    for payment in payments:
        if payment.subject not in booked or payment.unapplied_reason:
            warnings.append(
                {
                    "code": "payment_without_booking",
                    "payment_id": payment.pk,
                    "message": f"Payment {payment.reference} "
                    f"({amount_text(payment.amount, payment.currency)} "
                    f"{payment.currency}) pays no booking"
                    + (f": {payment.unapplied_reason}." if payment.unapplied_reason else "."),
                }
            )
    failures = webhook_failures(customer)
    pending = (
        failures.filter(
            status=WebhookFailure.Status.PENDING_MANUAL, event_type="payment_intent.succeeded"
        )
        if failures is not None
        else []
    )
    for failure in pending:
        intent = stripe_object(failure.payload)
        cents = intent.get("amount_received") or intent.get("amount") or 0
        amount = (Decimal(int(cents)) / CENTS).quantize(Decimal("0.01"))
        booking_id = (intent.get("metadata") or {}).get("booking_id")
        warnings.append(
            {
                "code": "payment_without_booking",
                "webhook_failure_id": failure.pk,
                "booking_id": int(str(booking_id)) if is_id(str(booking_id)) else None,
                "message": f"Stripe took {amount} {str(intent.get('currency') or '').upper()} "
                f"({intent.get('id', '')}) for booking {booking_id}, but its webhook failed: "
                "no booking shows the payment.",
            }
        )
    return warnings
