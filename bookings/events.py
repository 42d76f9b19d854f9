"""Bookings' business events for the outbox (booking.confirmed, booking.cancelled)."""

from __future__ import annotations

from bookings.models import Booking
from opsconsole.db import outbox


def booking_event(booking: Booking, event_type: str) -> None:
    outbox.publish(
        event_type,
        {
            "booking_id": booking.pk,
            "resource_id": booking.resource_id,
            "start_time": booking.start_time.isoformat(),
            "end_time": booking.end_time.isoformat(),
            "status": booking.status,
            "payment_status": booking.payment_status,
        },
    )
