"""Resources, holds and bookings, made through the booking services (so the overlap rules,
the hold cap and the audit rows apply as in production)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from bookings import services
from bookings.models import Booking, BookingHold, Resource
from payments.refunds import payment_record


def slot(hour: int, hours: int = 1, days: int = 1) -> tuple[datetime, datetime]:
    """A slot tomorrow (by default) from `hour` for `hours`."""
    day = (timezone.now() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    start = day.replace(hour=hour)
    return start, start + timedelta(hours=hours)


class ResourceFactory(DjangoModelFactory):
    class Meta:
        model = Resource

    name = factory.Sequence(lambda n: f"court-{n + 1}")


class HoldFactory(DjangoModelFactory):
    """`HoldFactory(holder=customer, resource=court, hour=10)`: tomorrow, one hour."""

    class Meta:
        model = BookingHold

    resource = factory.SubFactory(ResourceFactory)
    hour = 10

    @classmethod
    def _create(cls, model_class: type[BookingHold], *args: Any, **fields: Any) -> BookingHold:
        start, end = slot(fields.pop("hour"))
        return services.booking_hold_create(
            resource_id=fields["resource"].pk,
            start_time=start,
            end_time=end,
            holder=fields["holder"],
        )


class BookingFactory(DjangoModelFactory):
    """A hold confirmed into a booking; with `paid`, a card payment of that amount attached."""

    class Meta:
        model = Booking

    resource = factory.SubFactory(ResourceFactory)
    hour = 10
    paid: Decimal | None = None

    @classmethod
    def _create(cls, model_class: type[Booking], *args: Any, **fields: Any) -> Booking:
        customer, paid = fields["customer"], fields.get("paid")
        hold = HoldFactory(holder=customer, resource=fields["resource"], hour=fields["hour"])
        booking = services.booking_hold_confirm(hold_id=hold.pk, customer=customer).booking
        if paid is None:
            return booking
        payment = payment_record(
            reference=f"pay_{booking.pk}",
            subject=f"booking:{booking.pk}",
            amount=paid,
            currency="EUR",
            method="card",
            provider_payment_id=f"pi_{booking.pk}",
        )
        return services.booking_attach_payment(
            booking_id=booking.pk, payment_id=payment.pk, actor="test"
        )
