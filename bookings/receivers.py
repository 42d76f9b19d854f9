"""Bookings' side of other apps' events: a card payment that arrives for a booking."""

from __future__ import annotations

from typing import Any

from bookings.models import Booking
from bookings.services import booking_attach_payment
from opsconsole.http.inputs import is_id
from payments.models import Payment


def apply_card_payment(
    sender: Any, *, payment: Payment, metadata: dict[str, Any], **kw: Any
) -> str:
    """A card payment whose metadata names a booking pays it (PAID). One for a booking that is
    already paid or cancelled is not applied: the reason comes back, and payments keeps the
    money for a refund decision. Runs in the webhook's transaction (the booking row locked)."""
    raw = metadata.get("booking_id")
    if raw in (None, ""):
        return ""  # not a booking's payment
    if not is_id(str(raw)):
        return f"booking_id {str(raw)[:40]!r} is not a booking id"
    booking = Booking.objects.select_for_update().filter(pk=int(raw)).first()
    if booking is None:
        return f"no booking {raw}"
    if booking.payment_id == payment.pk:
        return ""  # applied already (the same event again)
    if booking.status in (Booking.Status.CANCELLED, Booking.Status.CANCELLING):
        return f"booking {booking.pk} is {booking.status}"
    if booking.payment_status == Booking.PaymentStatus.PAID:
        return f"booking {booking.pk} is already PAID"
    booking_attach_payment(booking_id=booking.pk, payment_id=payment.pk, actor="stripe")
    return ""
