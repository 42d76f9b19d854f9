"""django-q2 entry points: they only wake a worker; the rows hold the state."""

from __future__ import annotations

from typing import Any

from bookings.workers import BookingHoldExpiryWorker


def run_booking_hold_expiry_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return BookingHoldExpiryWorker().run_once(triggered_by=triggered_by).as_dict()
