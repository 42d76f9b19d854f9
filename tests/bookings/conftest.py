from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from bookings.models import Resource
from tests.bookings.factories import ResourceFactory
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory


@pytest.fixture
def customer(db: None) -> User:
    return UserFactory(username="carla", groups=["Booking client"])


@pytest.fixture
def customer_client(customer: User):
    return token_client(customer)


@pytest.fixture
def resource(db: None) -> Resource:
    return ResourceFactory()


@pytest.fixture
def stripe(httpserver, settings):
    """Stripe's refund API stood in for by a local HTTP server."""
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    return httpserver
