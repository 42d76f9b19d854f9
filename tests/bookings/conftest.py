from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from bookings import services
from bookings.models import Booking, BookingHold, Resource
from payments.refunds import payment_record
from tests.conftest import make_user, token_client

_names = count(1)


def slot(hour: int, hours: int = 1, days: int = 1) -> tuple[datetime, datetime]:
    """A slot tomorrow (by default) from `hour` for `hours`."""
    day = (timezone.now() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    start = day.replace(hour=hour)
    return start, start + timedelta(hours=hours)


def make_resource(name: str | None = None) -> Resource:
    return Resource.objects.create(name=name or f"court-{next(_names)}")


def hold_for(customer: User, resource: Resource, hour: int = 10) -> BookingHold:
    start, end = slot(hour)
    return services.booking_hold_create(
        resource_id=resource.pk, start_time=start, end_time=end, holder=customer
    )


def booking_for(
    customer: User, resource: Resource, hour: int = 10, paid: Decimal | None = None
) -> Booking:
    hold = hold_for(customer, resource, hour)
    booking = services.booking_hold_confirm(hold_id=hold.pk, customer=customer).booking
    if paid is not None:
        payment = payment_record(
            reference=f"pay_{booking.pk}",
            subject=f"booking:{booking.pk}",
            amount=paid,
            currency="EUR",
            method="card",
            provider_payment_id=f"pi_{booking.pk}",
        )
        booking = services.booking_attach_payment(
            booking_id=booking.pk, payment_id=payment.pk, actor="test"
        )
    return booking


@pytest.fixture
def customer(db: None) -> User:
    return make_user("carla", "Booking client")


@pytest.fixture
def customer_client(customer: User):
    return token_client(customer)


@pytest.fixture
def resource(db: None) -> Resource:
    return make_resource()


@pytest.fixture
def stripe(httpserver, settings):
    """Stripe's refund API stood in for by a local HTTP server."""
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    return httpserver
