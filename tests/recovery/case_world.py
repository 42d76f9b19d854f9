"""A customer's incident, built as it happens: a booking, a card payment Stripe took, and
its webhook failing because the booking's row was locked by a long operation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, connections

from bookings.models import Booking
from tests.payments.providers import deliver

INTENT_CENTS = 4500


def intent_succeeded(booking: Booking, event_id: str = "evt_case_1") -> dict:
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": f"pi_case_{booking.pk}",
                "amount": INTENT_CENTS,
                "amount_received": INTENT_CENTS,
                "currency": "eur",
                "receipt_email": "",
                "metadata": {"booking_id": str(booking.pk)},
            }
        },
    }


@contextmanager
def booking_row_locked(booking_id: int) -> Iterator[None]:
    """Another session holds the booking's row lock until the block ends; this session
    gives up on a row lock after 300 ms, as a webhook must not hang."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT 1 FROM bookings_booking WHERE id = %s FOR UPDATE", [booking_id]
                )
                locked.set()
                release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        holder.join()


def webhook_fails_for(client, booking: Booking) -> dict:
    """Deliver the payment's webhook while the booking is locked: Stripe hears 200, the
    event is kept as a failure for a person to replay."""
    event = intent_succeeded(booking)
    with booking_row_locked(booking.pk):
        response = deliver(client, event)
    assert response.json() == {"received": True, "processingFailed": True}
    return event
