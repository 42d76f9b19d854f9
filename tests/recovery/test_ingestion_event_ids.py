"""Event ids are each producer's own (issue #33): another producer's same id is another
event with its own item; the same producer's id with another event is a 409 and queues
nothing; the same event again stays the idempotent 200 with the first item."""

from __future__ import annotations

import pytest

from recovery.models import IngestedEvent, RecoveryItem
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory


@pytest.fixture
def partner(db):
    return IntegrationFactory(name="partner")


def producer(name: str):
    return token_client(UserFactory(username=name, groups=["Event producer"]))


def url(integration, batch: bool = False) -> str:
    return f"/platform/integrations/{integration.pk}/events" + ("/batch" if batch else "")


def event(payload: dict, event_id: str = "evt-1", event_type: str = "booking.confirmed"):
    return {"event_type": event_type, "payload": payload, "event_id": event_id}


@pytest.mark.django_db
def test_two_producers_with_one_event_id_each_get_their_own_item(partner):
    shop, crm = producer("shop"), producer("crm")
    first = shop.post(url(partner), event({"booking_id": 1}), format="json")
    second = crm.post(url(partner), event({"booking_id": 2}), format="json")
    assert (first.status_code, second.status_code) == (202, 202), second.content
    assert first.json()["id"] != second.json()["id"]
    payloads = {
        item.pk: item.payload
        for item in RecoveryItem.objects.filter(integration=partner, event_id="evt-1")
    }
    assert payloads == {
        first.json()["id"]: {"booking_id": 1},
        second.json()["id"]: {"booking_id": 2},
    }
    # Each producer's retry answers its own item.
    again = crm.post(url(partner), event({"booking_id": 2}), format="json")
    assert (again.status_code, again.json()) == (200, second.json())
    assert IngestedEvent.objects.filter(integration=partner, event_id="evt-1").count() == 2
    # And the partner receives them as two messages: a receiver deduplicating on webhook-id
    # (as Standard Webhooks advises) keeps both.
    webhook_ids = {i.webhook_id for i in RecoveryItem.objects.filter(event_id="evt-1")}
    assert len(webhook_ids) == 2 and all(w.startswith("evt-1.") for w in webhook_ids)


@pytest.mark.django_db
def test_another_event_under_a_known_id_is_a_409_and_the_same_one_a_200(partner):
    shop = producer("shop")
    first = shop.post(url(partner), event({"booking_id": 1, "seats": 2}), format="json")
    assert first.status_code == 202
    other = shop.post(url(partner), event({"booking_id": 9}), format="json")
    assert other.status_code == 409, other.content
    error = error_of(other)
    assert (error["code"], error["details"]) == ("INT-409-EVENT-ID-CONFLICT", {"event_id": "evt-1"})
    retyped = shop.post(
        url(partner),
        event({"booking_id": 1, "seats": 2}, event_type="booking.cancelled"),
        format="json",
    )
    assert retyped.status_code == 409
    # The same event, its keys in another order, is a retry.
    same = shop.post(url(partner), event({"seats": 2, "booking_id": 1}), format="json")
    assert (same.status_code, same.json()) == (200, first.json())
    assert RecoveryItem.objects.filter(integration=partner).count() == 1


@pytest.mark.django_db
def test_a_batch_refuses_only_the_events_that_reuse_an_id_for_another_event(partner):
    shop = producer("shop")
    shop.post(url(partner), event({"booking_id": 1}, "known"), format="json")
    batch = [
        event({"booking_id": 1}, "known"),  # a retry
        event({"booking_id": 2}, "known"),  # another event under a known id
        event({"booking_id": 3}, "fresh"),
        event({"booking_id": 4}, "fresh"),  # another event under an id of this batch
        event({"booking_id": 3}, "fresh"),  # a repeat of this batch's event
    ]
    response = shop.post(url(partner, batch=True), {"events": batch}, format="json")
    assert response.status_code == 202, response.content
    results = response.json()["results"]
    known = RecoveryItem.objects.get(event_id="known").pk
    fresh = RecoveryItem.objects.get(event_id="fresh").pk
    assert (results[0]["id"], results[0]["duplicate"]) == (known, True)
    assert results[1]["error"]["code"] == "INT-409-EVENT-ID-CONFLICT"
    assert (results[2]["id"], results[2]["duplicate"]) == (fresh, False)
    assert results[3]["error"]["code"] == "INT-409-EVENT-ID-CONFLICT"
    assert (results[4]["id"], results[4]["duplicate"]) == (fresh, True)
    assert RecoveryItem.objects.filter(integration=partner).count() == 2
