from __future__ import annotations

import pytest

from bookings.models import Resource
from tests.bookings.factories import ResourceFactory
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_a_booking_client_finds_the_active_resources_page_by_page():
    courts = ResourceFactory.create_batch(3)
    retired = ResourceFactory(name="old court")
    Resource.objects.filter(pk=retired.pk).update(active=False)
    client = token_client(UserFactory(username="ana", groups=["Booking client"]))
    first = client.get("/api/v1/bookings/resources", {"limit": 2}).json()
    rest = client.get("/api/v1/bookings/resources", {"cursor": first["next_cursor"]}).json()
    ids = [r["id"] for r in first["items"] + rest["items"]]
    assert ids == sorted((c.pk for c in courts), reverse=True)
    every = client.get("/api/v1/bookings/resources", {"include_inactive": "true"}).json()
    assert retired.pk in [r["id"] for r in every["items"]]
