"""Bad input is a clear 4xx in the envelope and changes nothing: never a 500."""

from __future__ import annotations

import json

import pytest

from bookings.models import BookingHold, Resource
from opsconsole.models import AuditEvent
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory


@pytest.fixture
def booking_client(db):
    return token_client(UserFactory(username="client", groups=["Booking client"]))


@pytest.fixture
def resource(db) -> Resource:
    return Resource.objects.create(name="Court 1")


def hold_body(resource: Resource, **overrides) -> dict:
    return {
        "resource_id": resource.pk,
        "start_time": "2031-05-01T10:00:00Z",
        "end_time": "2031-05-01T11:00:00Z",
        **overrides,
    }


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_before_it_is_read(operator_client):
    body = json.dumps({"reason": "x" * (6 * 1024 * 1024)})
    for path in ("/api/v1/failures/bulk-actions", "/webhooks/stripe"):
        response = operator_client.post(path, body, content_type="application/json")
        assert response.status_code == 413, path
        assert error_of(response)["code"] == "OPS-413-PAYLOAD-TOO-LARGE"
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deeply_nested_json_is_400(operator_client, depth):
    body = "[" * depth + "]" * depth
    response = operator_client.post(
        "/api/v1/failures/bulk-actions", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nests deeper than 64" in error_of(response)["message"]


@pytest.mark.django_db
def test_nesting_within_the_limit_parses(operator_client):
    nested: object = "leaf"
    for _ in range(60):
        nested = {"a": nested}
    response = operator_client.post(
        "/api/v1/failures/bulk-actions",
        json.dumps({"source": "recovery", "reason": "x", "filters": nested}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "nests deeper" not in error_of(response)["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw_id", ["\u0661\u0662", "\u00b2", "\uff11\uff12", "12\u0663", "-1", "1e3", "9" * 30]
)
def test_a_non_ascii_or_malformed_path_id_is_400(viewer_client, raw_id):
    response = viewer_client.get(f"/api/v1/billing/sessions/{raw_id}")
    assert response.status_code == 400
    assert error_of(response)["details"]["fields"] == {"id": ["Invalid id."]}


@pytest.mark.django_db
def test_an_unknown_field_is_400_and_books_nothing(booking_client, resource):
    response = booking_client.post(
        "/api/v1/bookings/holds", hold_body(resource, resourse_id=3), format="json"
    )
    assert response.status_code == 400
    assert error_of(response)["details"]["fields"]["resourse_id"] == ["Unknown field."]
    assert not BookingHold.objects.exists()


@pytest.mark.django_db
def test_a_timezone_naive_datetime_is_400_and_books_nothing(booking_client, resource):
    response = booking_client.post(
        "/api/v1/bookings/holds",
        hold_body(resource, start_time="2031-05-01T10:00:00"),
        format="json",
    )
    assert response.status_code == 400
    assert "start_time" in error_of(response)["details"]["fields"]
    assert not BookingHold.objects.exists()


@pytest.mark.django_db
def test_nan_is_not_json(operator_client):
    response = operator_client.post(
        "/api/v1/payments/offline",
        '{"booking_id": 1, "amount": NaN, "method": "cash"}',
        content_type="application/json",
    )
    assert response.status_code == 400
