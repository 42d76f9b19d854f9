"""Checking a customer in at the desk (CHECKED_IN,
docs/runbooks/bookings-payments-notifications.md): a confirmed booking, within its check-in
window, audited; checking in twice answers the first check-in."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bookings.errors import BookingNotCheckable, BookingNotFound
from bookings.models import Booking
from opsconsole.evidence import audit


@transaction.atomic
def booking_check_in(*, booking_id: int, actor: audit.Actor, reason: str = "") -> Booking:
    booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
    if booking is None:
        raise BookingNotFound()
    if booking.status == Booking.Status.CHECKED_IN:
        return booking
    now = timezone.now()
    opens = booking.start_time - timedelta(minutes=settings.CHECK_IN_OPENS_MINUTES)
    if booking.status != Booking.Status.CONFIRMED or not opens <= now < booking.end_time:
        raise BookingNotCheckable(
            details={
                "status": booking.status,
                "opens_at": opens.isoformat(),
                "closes_at": booking.end_time.isoformat(),
            }
        )
    before = booking.state()
    booking.check_in()
    booking.save()
    audit.record(
        "booking.checked_in",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        reason=reason,
    )
    return booking
