"""The ingestion API: producers with an Event producer token add events to one
integration's queue; their event ids make retries safe for 7 days, also when two retries
race; a payload failing the integration's schema is refused and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import AuditEvent
from recovery.models import IngestedEvent, RecoveryItem
from tests.helpers import error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory

SCHEMA = {
    "type": "object",
    "required": ["booking_id"],
    "properties": {"booking_id": {"type": "integer"}},
}


@pytest.fixture
def producer(db):
    return UserFactory(username="shop", groups=["Event producer"])


@pytest.fixture
def producer_client(producer):
    return token_client(producer)


@pytest.fixture
def partner(db):
    return IntegrationFactory(name="partner", payload_schema=SCHEMA)


def events_url(integration, batch: bool = False) -> str:
    return f"/platform/integrations/{integration.pk}/events" + ("/batch" if batch else "")


def event(n: int = 1, **extra):
    return {"event_type": "booking.confirmed", "payload": {"booking_id": n}, **extra}


@pytest.mark.django_db
def test_an_event_is_queued_once_per_event_id_and_answers_the_same(producer_client, partner):
    first = producer_client.post(events_url(partner), event(event_id="ord-1"), format="json")
    assert first.status_code == 202, first.content
    body = first.json()
    assert body == {"id": body["id"], "event_id": "ord-1", "status": "pending"}
    item = RecoveryItem.objects.get(pk=body["id"])
    assert (item.event_type, item.payload, item.webhook_id) == (
        "booking.confirmed",
        {"booking_id": 1},
        f"ord-1.{item.pk}",
    )
    again = producer_client.post(events_url(partner), event(event_id="ord-1"), format="json")
    assert (again.status_code, again.json()) == (200, body)
    assert RecoveryItem.objects.filter(integration=partner).count() == 1
    assert AuditEvent.objects.get(event="platform.events.ingested").actor == "shop"

    # After 7 days the id is forgotten: the same id is a new event.
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        later = producer_client.post(events_url(partner), event(event_id="ord-1"), format="json")
    assert later.status_code == 202
    assert later.json()["id"] != body["id"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": {"booking_id": 1}}, "event_type"),
        (event(payload={"booking_id": "seven"}), "payload"),
        ({"event_type": "booking.confirmed", "payload": {}}, "payload"),
        (event(event_id=""), "event_id"),
        (event(colour="red"), "unknown_fields"),
        ([event()], "body"),
    ],
)
def test_an_invalid_event_is_refused_and_changes_nothing(producer_client, partner, body, field):
    response = producer_client.post(events_url(partner), body, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "INT-400-INVALID-PAYLOAD"
    assert field in error["details"]["fields"]
    assert not RecoveryItem.objects.filter(integration=partner).exists()


@pytest.mark.django_db
def test_a_batch_answers_each_event_and_refuses_101(producer_client, partner):
    batch = [event(n, event_id=f"b-{n}") for n in range(1, 99)]
    batch += [event(payload={"booking_id": "x"}), event(5, event_id="b-5")]  # invalid; repeat
    response = producer_client.post(
        events_url(partner, batch=True), {"events": batch}, format="json"
    )
    assert response.status_code == 202, response.content
    results = response.json()["results"]
    assert len(results) == 100
    assert results[98]["error"]["code"] == "INT-400-INVALID-PAYLOAD"
    assert results[99] == {**results[4], "duplicate": True}
    assert RecoveryItem.objects.filter(integration=partner).count() == 98
    assert IngestedEvent.objects.filter(integration=partner).count() == 98

    too_many = {"events": [event(n) for n in range(101)]}
    refused = producer_client.post(events_url(partner, batch=True), too_many, format="json")
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "INT-400-INVALID-PAYLOAD"
    assert RecoveryItem.objects.filter(integration=partner).count() == 98


@pytest.mark.django_db(transaction=True)
def test_racing_retries_of_one_event_make_one_item(producer):
    partner = IntegrationFactory(name="racer")

    def send(_: int):
        return token_client(producer).post(
            events_url(partner, batch=True),
            {"events": [event(event_id="same"), event(2, event_id=f"own-{_}")]},
            format="json",
        )

    responses = run_concurrently(send, 6)
    assert {response.status_code for response in responses} == {202}
    ids = {response.json()["results"][0]["id"] for response in responses}
    assert len(ids) == 1
    assert RecoveryItem.objects.filter(integration=partner, event_id="same").count() == 1
    assert RecoveryItem.objects.filter(integration=partner).count() == 7


@pytest.mark.django_db
def test_only_producers_ingest_and_they_see_nothing_else(producer_client, operator_client, partner):
    assert operator_client.post(events_url(partner), event(), format="json").status_code == 403
    assert producer_client.get("/platform/integrations").status_code == 403
    assert (
        producer_client.get(f"/platform/integrations/{partner.pk}/recovery/queue").status_code
        == 403
    )
    missing = producer_client.post("/platform/integrations/999999/events", event(), format="json")
    assert error_of(missing)["code"] == "INT-404-NOT-FOUND"


@pytest.mark.django_db
def test_the_retention_worker_forgets_event_ids_past_the_window(producer_client, partner):
    from recovery.workers import RetentionRedactor
    from tests.workers import run_worker

    producer_client.post(events_url(partner), event(event_id="old"), format="json")
    assert run_worker(RetentionRedactor).outcomes.get("purged", 0) == 0
    later = timezone.now() + timedelta(days=7, hours=1)
    # Two purges: the event ids, and the rate counters of the producer, idle since.
    assert run_worker(RetentionRedactor, at=later).outcomes["purged"] == 2
    assert not IngestedEvent.objects.exists()
    assert RecoveryItem.objects.filter(integration=partner).count() == 1  # the item stays


@pytest.mark.django_db
def test_an_event_id_past_the_window_is_queued_again_before_any_purge(producer_client, partner):
    """The dedup window is a promise of the claim itself, not of the retention worker: an id
    recorded over 7 days ago makes a new item at once, and the record points at it."""
    first = producer_client.post(events_url(partner), event(event_id="weekly"), format="json")
    assert first.status_code == 202
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        again = producer_client.post(events_url(partner), event(event_id="weekly"), format="json")
        repeat = producer_client.post(events_url(partner), event(event_id="weekly"), format="json")
    assert again.status_code == 202 and again.json()["id"] != first.json()["id"]
    assert (repeat.status_code, repeat.json()["id"]) == (200, again.json()["id"])
    assert IngestedEvent.objects.get(event_id="weekly").item_id == again.json()["id"]
    assert RecoveryItem.objects.filter(integration=partner).count() == 2
