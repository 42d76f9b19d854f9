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

    def check_in(booking: Booking) -> tuple[str, ...] | None:
        if booking.status == Booking.Status.CHECKED_IN:
            return None
        opens = booking.start_time - timedelta(minutes=settings.CHECK_IN_OPENS_MINUTES)
        now = timezone.now()
        if booking.status != Booking.Status.CONFIRMED or not opens <= now < booking.end_time:
            raise BookingNotCheckable(
                details={
                    "status": booking.status,
                    "opens_at": opens.isoformat(),
                    "closes_at": booking.end_time.isoformat(),
                }
            )
        booking.check_in()
        return ()  # a transition: every field it touched

    return audit.audited_update(
        Booking.objects.filter(pk=booking_id),
        not_found=BookingNotFound,
        change=check_in,
        state=Booking.state,
        event="booking.checked_in",
        actor=actor,
        reason=reason,
    )
