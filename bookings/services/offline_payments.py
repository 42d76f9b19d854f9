"""Payments recorded by staff (cash, transfer) and card payments attached to bookings."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from bookings.errors import (
    BookingAlreadyPaid,
    BookingNotCancellable,
    BookingNotFound,
)
from bookings.models import Booking
from bookings.services.fulfilment import fulfilment_owe
from opsconsole.db.transactions import retry_on_deadlock
from opsconsole.evidence import audit
from payments.models import Payment
from payments.refunds import payment_record


@transaction.atomic
def booking_attach_payment(*, booking_id: int, payment_id: int, actor: audit.Actor) -> Booking:
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    booking.payment_id = payment_id
    booking.payment_status = Booking.PaymentStatus.PAID
    booking.save(update_fields=["payment_id", "payment_status", "updated_at"])
    audit.record(
        "booking.payment_attached", obj=booking, after={"payment_id": payment_id}, actor=actor
    )
    fulfilment_owe(booking)
    return booking


OFFLINE_DUPLICATE_WINDOW = timedelta(minutes=5)


def _key_digest(actor: AbstractBaseUser, idempotency_key: str) -> str:
    # Keys are per caller, so the caller is part of the reference.
    raw = f"{getattr(actor, 'pk', actor)}:{idempotency_key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class OfflinePaymentResult:
    payment: Payment
    booking: Booking
    duplicate: bool


@retry_on_deadlock()
def booking_offline_payment_record(
    *,
    booking_id: int,
    amount: Decimal,
    method: str,
    actor: AbstractBaseUser,
    idempotency_key: str = "",
) -> OfflinePaymentResult:
    """Staff record cash or a transfer for a booking
    (docs/runbooks/bookings-payments-notifications.md). The booking's row lock serializes
    recordings; the same booking and amount within 5 minutes is the same payment; a booking
    already paid refuses another (409); the booking is marked PAID in the same transaction as
    the payment row.

    With an Idempotency-Key the payment's reference is derived from it, and references are
    unique: a retry that takes over a crashed request's key finds the payment the crashed
    request made, whenever it comes, and never makes a second one."""
    reference = (
        f"offline_{booking_id}_{_key_digest(actor, idempotency_key)}"
        if idempotency_key
        else f"offline_{booking_id}_{uuid.uuid4().hex[:12]}"
    )
    with transaction.atomic():
        booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
        if booking is None:
            raise BookingNotFound()
        subject = f"booking:{booking.pk}"
        existing = Payment.objects.filter(reference=reference).first() or (
            Payment.objects.filter(
                subject=subject,
                amount=amount,
                created_at__gt=timezone.now() - OFFLINE_DUPLICATE_WINDOW,
            )
            .order_by("-id")
            .first()
        )
        if existing is not None:
            return OfflinePaymentResult(payment=existing, booking=booking, duplicate=True)
        if booking.payment_status == Booking.PaymentStatus.PAID:
            raise BookingAlreadyPaid(
                details={"booking_id": booking.pk, "payment_id": booking.payment_id}
            )
        if booking.status not in Booking.LIVE or booking.status == Booking.Status.CANCELLING:
            raise BookingNotCancellable(
                "Only a confirmed or checked-in booking can be paid.",
                code="BKG-409-BOOKING-NOT-PAYABLE",
                details={"status": booking.status},
            )
        payment = payment_record(
            reference=reference,
            subject=subject,
            amount=amount,
            currency="EUR",
            method=method,
            actor=actor,
        )
        before = {"payment_status": booking.payment_status, "payment_id": booking.payment_id}
        booking.payment_status = Booking.PaymentStatus.PAID
        booking.payment_id = payment.pk
        booking.save(update_fields=["payment_status", "payment_id", "updated_at"])
        audit.record(
            "booking.paid",
            obj=booking,
            before=before,
            after={"payment_status": booking.payment_status, "payment_id": payment.pk},
            actor=actor,
            metadata={"method": method, "amount": str(amount)},
        )
        fulfilment_owe(booking)
    return OfflinePaymentResult(payment=payment, booking=booking, duplicate=False)
