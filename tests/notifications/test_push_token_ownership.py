"""Push tokens stay with their owner (issue #33): a customer registering a token another
customer holds gets the answer a fresh registration gets and moves nothing; removing
another's token answers as a missing one; a removed token is free again; producers, who
name the user, still move a device to its new user."""

from __future__ import annotations

import pytest

from notifications.models import PushToken
from opsconsole.models import AuditEvent
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory

URL = "/api/v1/push-tokens"


@pytest.fixture
def ana(db):
    return UserFactory(username="ana", groups=["Booking client"])


@pytest.fixture
def mallory(db):
    return UserFactory(username="mallory", groups=["Booking client"])


def register(user, token: str):
    return token_client(user).post(URL, {"token": token}, format="json")


def without_request_id(response) -> tuple[int, dict]:
    error = dict(error_of(response))
    error.pop("request_id")
    return response.status_code, error


@pytest.mark.django_db
def test_another_customers_token_is_not_moved_and_the_answer_is_a_fresh_ones(ana, mallory):
    assert register(ana, "tok-ana").status_code == 201
    audit_rows = AuditEvent.objects.count()

    taken = register(mallory, "tok-ana")
    fresh = register(mallory, "tok-mallory")
    assert taken.status_code == fresh.status_code == 201
    assert taken.json() == {**fresh.json(), "token": "tok-ana"}
    assert taken.json() == {"token": "tok-ana", "user_id": mallory.pk, "valid": True}

    row = PushToken.objects.get(token="tok-ana")
    assert (row.user_id, row.valid) == (ana.pk, True)
    # Only mallory's own fresh token was written.
    assert AuditEvent.objects.count() == audit_rows + 1
    # Registering again answers alike, whether the token is hers or someone else's.
    assert register(mallory, "tok-ana").status_code == register(mallory, "tok-mallory").status_code


@pytest.mark.django_db
def test_removing_another_customers_token_answers_as_a_missing_one(ana, mallory):
    register(ana, "tok-ana")
    register(mallory, "tok-ana")
    theirs = token_client(mallory).delete(f"{URL}/tok-ana")
    missing = token_client(mallory).delete(f"{URL}/tok-nobody-has")
    assert without_request_id(theirs) == without_request_id(missing)
    assert without_request_id(theirs)[0] == 404
    assert error_of(theirs)["code"] == "NTF-404-PUSH-TOKEN-NOT-FOUND"
    row = PushToken.objects.get(token="tok-ana")
    assert (row.user_id, row.valid, row.invalidated_at) == (ana.pk, True, None)
    assert not AuditEvent.objects.filter(event="notifications.push_token.removed").exists()


@pytest.mark.django_db
def test_a_token_its_owner_removed_is_free_to_register(ana, mallory):
    register(ana, "tok-phone")
    assert token_client(ana).delete(f"{URL}/tok-phone").status_code == 200
    again = register(mallory, "tok-phone")
    assert (again.status_code, again.json()["user_id"]) == (201, mallory.pk)
    row = PushToken.objects.get(token="tok-phone")
    assert (row.user_id, row.valid) == (mallory.pk, True)
    # Now mallory's: ana's registration no longer moves it back.
    register(ana, "tok-phone")
    assert PushToken.objects.get(token="tok-phone").user_id == mallory.pk


@pytest.mark.django_db
def test_a_producer_moves_a_device_to_its_new_user(ana, mallory):
    producer = token_client(UserFactory(username="app", groups=["Event producer"]))
    register(ana, "tok-shared")
    moved = producer.post(URL, {"token": "tok-shared", "user_id": mallory.pk}, format="json")
    assert (moved.status_code, moved.json()["user_id"]) == (200, mallory.pk)
    assert PushToken.objects.get(token="tok-shared").user_id == mallory.pk
