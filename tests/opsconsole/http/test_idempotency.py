from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from opsconsole.http.idempotency import request_fingerprint
from opsconsole.models import AuditEvent, IdempotencyKey
from tests.helpers import error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory

pytestmark = pytest.mark.urls("tests.opsconsole.urls_for_tests")
URL = "/api/v1/test/charges"


def executions() -> int:
    return AuditEvent.objects.filter(event="test.charge.executed").count()


def post(client, body, key):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_replays_the_stored_response_without_running_again(outsider_client):
    first = post(outsider_client, {"amount": 5}, "key-1")
    second = post(outsider_client, {"amount": 5}, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert executions() == 1


@pytest.mark.django_db
def test_it_runs_again_for_a_new_key_or_without_a_key(outsider_client):
    post(outsider_client, {"amount": 5}, "key-a")
    post(outsider_client, {"amount": 5}, "key-b")
    outsider_client.post(URL, {"amount": 5}, format="json")
    assert executions() == 3


@pytest.mark.smoke
@pytest.mark.django_db
def test_it_answers_422_when_the_same_key_comes_with_a_different_body(outsider_client):
    post(outsider_client, {"amount": 5}, "key-2")
    response = post(outsider_client, {"amount": 6}, "key-2")
    assert response.status_code == 422
    assert error_of(response)["code"] == "TST-422-IDEMPOTENCY-KEY-REUSED"
    assert executions() == 1


@pytest.mark.django_db
def test_it_keeps_key_spaces_apart_per_user(outsider_client, operator):
    post(outsider_client, {"amount": 5}, "shared-key")
    other = post(token_client(operator), {"amount": 9}, "shared-key")
    assert other.status_code == 201
    assert executions() == 2


@pytest.mark.django_db
def test_it_stores_and_replays_a_domain_error_too(outsider_client):
    first = post(outsider_client, {"amount": 5, "fail_with": "409"}, "key-409")
    again = post(outsider_client, {"amount": 5, "fail_with": "409"}, "key-409")
    assert first.status_code == again.status_code == 409
    assert again.json()["error"]["code"] == "TST-409-ALREADY"
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_it_forgets_a_key_whose_request_failed_on_our_side(outsider_client):
    failed = post(outsider_client, {"amount": 5, "fail_with": "503"}, "key-503")
    assert failed.status_code == 503
    assert not IdempotencyKey.objects.filter(key="key-503").exists()


@pytest.mark.django_db
def test_it_runs_again_after_the_key_expires(outsider_client):
    post(outsider_client, {"amount": 5}, "key-exp")
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        later = post(outsider_client, {"amount": 7}, "key-exp")
    assert later.status_code == 201
    assert later.json()["amount"] == 7
    assert executions() == 2


@pytest.mark.django_db
def test_it_rejects_a_malformed_key(outsider_client):
    response = post(outsider_client, {"amount": 5}, "x" * 256)
    assert response.status_code == 400
    assert error_of(response)["code"] == "TST-400-INVALID-PAYLOAD"
    assert executions() == 0


def orphan_claim(owner, body, *, locked_minutes_ago: int) -> IdempotencyKey:
    now = timezone.now()
    return IdempotencyKey.objects.create(
        owner=str(owner.pk),
        key="orphan",
        request_fingerprint=request_fingerprint(method="POST", path=URL, body=body),
        method="POST",
        path=URL,
        locked_at=now - timedelta(minutes=locked_minutes_ago),
        expires_at=now + timedelta(hours=23),
    )


@pytest.mark.django_db
def test_it_lets_a_retry_take_over_a_key_whose_request_died(outsider_client, outsider):
    orphan_claim(outsider, {"amount": 5}, locked_minutes_ago=10)
    response = post(outsider_client, {"amount": 5}, "orphan")
    assert response.status_code == 201
    assert executions() == 1
    assert IdempotencyKey.objects.get(key="orphan").state == "completed"


@pytest.mark.django_db
def test_it_answers_409_while_a_recent_claim_is_in_flight(outsider_client, outsider):
    orphan_claim(outsider, {"amount": 5}, locked_minutes_ago=1)
    response = post(outsider_client, {"amount": 5}, "orphan")
    assert response.status_code == 409
    assert executions() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_execute_exactly_once():
    user = UserFactory(username="racer")
    responses = run_concurrently(
        lambda _: post(token_client(user), {"amount": 11, "sleep_ms": 300}, "race-key"), 6
    )

    assert executions() == 1
    first = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    waiting = [r for r in responses if r.status_code == 409]
    late = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" in r]
    assert len(first) == 1
    assert len(first) + len(waiting) + len(late) == 6
    assert waiting, "the 300 ms window should have caught at least one concurrent caller"
    assert {r.json()["error"]["code"] for r in waiting} == {"TST-409-IDEMPOTENCY-KEY-IN-USE"}
    assert all(r.json() == first[0].json() for r in late)
    # Once the first finishes, the same request gets its stored outcome back.
    replay = post(token_client(user), {"amount": 11, "sleep_ms": 300}, "race-key")
    assert replay.status_code == 201
    assert replay.json() == first[0].json()
    assert executions() == 1


@pytest.mark.django_db
def test_the_housekeeping_task_purges_only_expired_keys(outsider_client):
    from opsconsole.tasks import purge_expired_idempotency_keys

    post(outsider_client, {"amount": 5}, "old-key")
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        post(outsider_client, {"amount": 5}, "fresh-key")
        assert purge_expired_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh-key"]
