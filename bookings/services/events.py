"""Booking events sent to other apps' receivers, only after the change commits."""

from __future__ import annotations

import structlog
from django.db import transaction
from django.dispatch import Signal

from bookings.models import Booking
from bookings.signals import booking_cancelled

logger = structlog.get_logger(__name__)


def _emit_on_commit(signal: Signal, event: str, **payload: object) -> None:
    def send() -> None:
        logger.info(event, **{k: str(v) for k, v in payload.items()})
        for receiver, response in signal.send_robust(sender=Booking, **payload):
            if isinstance(response, Exception):
                logger.error(
                    "event_receiver_failed",
                    event=event,
                    receiver=str(receiver),
                    error=repr(response),
                )

    transaction.on_commit(send)


def _emit_booking_cancelled(booking: Booking) -> None:
    """`booking.cancelled`, after commit: the waitlist hears the slot is free."""
    _emit_on_commit(
        booking_cancelled,
        "booking.cancelled",
        booking_id=booking.pk,
        resource_id=booking.resource_id,
        start_time=booking.start_time,
        end_time=booking.end_time,
    )
