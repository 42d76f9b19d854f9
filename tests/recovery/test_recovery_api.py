from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opsconsole.models import AuditEvent
from recovery import services
from recovery.models import RecoveryItem
from tests.helpers import error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory, QueuedItemFactory
from tests.workers import deliver


def queue_url(integration_id) -> str:
    return f"/platform/integrations/{integration_id}/recovery/queue"


def replay_url(integration_id, item_id) -> str:
    return f"{queue_url(integration_id)}/{item_id}/replay"


def replay(client, integration_id, item_id, reason="upstream fixed", key=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        replay_url(integration_id, item_id), {"reason": reason}, format="json", **headers, **extra
    )


@pytest.mark.smoke
@pytest.mark.django_db
def test_listing_integrations_needs_the_view_permission(
    integration, anonymous_client, outsider_client, viewer_client
):
    assert (
        error_of(anonymous_client.get("/platform/integrations"))["code"]
        == "INT-401-UNAUTHENTICATED"
    )
    assert error_of(outsider_client.get("/platform/integrations"))["code"] == "INT-403-FORBIDDEN"
    response = viewer_client.get("/platform/integrations")
    assert response.status_code == 200
    assert [i["name"] for i in response.json()["items"]] == ["crm"]


@pytest.mark.smoke
@pytest.mark.django_db
def test_the_queue_lists_items_newest_first_with_the_review_fields(integration, viewer_client):
    older = ParkedItemFactory(integration=integration, status="dlq")
    newer = QueuedItemFactory(integration=integration)
    response = viewer_client.get(queue_url(integration.pk))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["id"] for i in items] == [newer.pk, older.pk]
    assert {"status", "attempt_count", "failure_code", "failure_detail"} <= set(items[1])
    assert items[1]["failure_code"] == "HTTP_500"
    assert response.json()["next_cursor"] is None


@pytest.mark.django_db
def test_the_queue_filters_by_status_and_pages_by_cursor(integration, viewer_client):
    dlq = [ParkedItemFactory(integration=integration, status="dlq") for _ in range(5)]
    ParkedItemFactory(integration=integration, status="failed")
    QueuedItemFactory(integration=integration)
    seen: list[int] = []
    cursor = None
    while True:
        params = {"status": "dlq", "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = viewer_client.get(queue_url(integration.pk), params).json()
        assert all(item["status"] == "dlq" for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted((i.pk for i in dlq), reverse=True)
    both = viewer_client.get(queue_url(integration.pk), {"status": "dlq,failed"}).json()
    assert len(both["items"]) == 6


@pytest.mark.django_db
def test_the_queue_list_costs_the_same_queries_for_one_item_or_many(integration, viewer_client):
    ParkedItemFactory(integration=integration, status="dlq")
    with CaptureQueriesContext(connection) as one:
        viewer_client.get(queue_url(integration.pk))
    for _ in range(20):
        ParkedItemFactory(integration=integration, status="dlq")
    with CaptureQueriesContext(connection) as many:
        viewer_client.get(queue_url(integration.pk))
    assert len(many) == len(one)
    # The rate limiter's cache table (a few rows a minute) is counted on write; the queue
    # itself never is.
    queue_queries = [q["sql"] for q in many.captured_queries if "opsconsole_cache" not in q["sql"]]
    assert not any("COUNT(" in sql.upper() for sql in queue_queries)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{"status": "exploded"}, {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"cursor": "@@@"}],
)
def test_the_queue_rejects_bad_filters_with_int_400(integration, viewer_client, params):
    response = viewer_client.get(queue_url(integration.pk), params)
    assert response.status_code == 400
    assert error_of(response)["code"] == "INT-400-INVALID-PAYLOAD"


@pytest.mark.django_db
def test_the_queue_answers_int_404_for_a_missing_integration_and_400_for_a_bad_id(viewer_client):
    missing = viewer_client.get(queue_url(999999))
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "INT-404-NOT-FOUND"
    bad = viewer_client.get(queue_url("abc"))
    assert bad.status_code == 400
    assert error_of(bad)["code"] == "INT-400-INVALID-PAYLOAD"


@pytest.mark.smoke
@pytest.mark.django_db
@pytest.mark.parametrize("source", ["failed", "dlq"])
def test_an_operator_replays_a_failed_or_dlq_item(integration, operator_client, source):
    item = ParkedItemFactory(integration=integration, status=source)
    response = replay(operator_client, integration.pk, item.pk, HTTP_X_REQUEST_ID="replay-req-1")
    assert response.status_code == 202
    assert response.json()["status"] == "replayed"
    item.refresh_from_db()
    assert item.status == "replayed"
    assert item.attempt_count == 0
    assert item.replay_count == 1
    event = AuditEvent.objects.get(event="platform.integration.recovery.replayed")
    assert event.before_state["status"] == source
    assert event.after_state["status"] == "replayed"
    assert event.request_id == "replay-req-1"
    assert event.reason == "upstream fixed"
    assert event.actor == "operator"


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["pending", "retrying", "succeeded", "replayed"])
def test_replaying_any_other_status_is_a_conflict(integration, operator_client, source):
    item = ParkedItemFactory(integration=integration, status=source)
    response = replay(operator_client, integration.pk, item.pk)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "INT-409-RECOVERY-REPLAY-CONFLICT"
    assert error["details"]["status"] == source
    item.refresh_from_db()
    assert item.status == source
    assert not AuditEvent.objects.filter(event="platform.integration.recovery.replayed").exists()


@pytest.mark.django_db
def test_replay_needs_the_operate_permission_and_a_reason(
    integration, viewer_client, operator_client
):
    item = ParkedItemFactory(integration=integration, status="dlq")
    denied = replay(viewer_client, integration.pk, item.pk)
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "INT-403-FORBIDDEN"
    blank = replay(operator_client, integration.pk, item.pk, reason="   ")
    assert blank.status_code == 400
    assert error_of(blank)["code"] == "INT-400-INVALID-PAYLOAD"
    assert "reason" in error_of(blank)["details"]["fields"]
    item.refresh_from_db()
    assert item.status == "dlq"


@pytest.mark.django_db
def test_replay_answers_the_seed_404_codes(integration, operator_client):
    other = services.integration_create(name="erp", endpoint_url="http://127.0.0.1:9/x", actor="t")
    item_of_other = ParkedItemFactory(integration=other, status="dlq")
    assert (
        error_of(replay(operator_client, 999999, item_of_other.pk))["code"] == "INT-404-NOT-FOUND"
    )
    assert (
        error_of(replay(operator_client, integration.pk, 999999))["code"]
        == "INT-404-RECOVERY-NOT-FOUND"
    )
    # Another integration's item is "not found" here, never replayed through the wrong route.
    crossed = replay(operator_client, integration.pk, item_of_other.pk)
    assert error_of(crossed)["code"] == "INT-404-RECOVERY-NOT-FOUND"
    assert (
        error_of(replay(operator_client, integration.pk, "x1"))["code"] == "INT-400-INVALID-PAYLOAD"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [("reason=x", "text/plain"), ("reason=x", "application/x-www-form-urlencoded"), ("{", None)],
)
def test_a_body_that_is_not_json_is_int_400_and_changes_nothing(
    integration, operator_client, body, content_type
):
    item = ParkedItemFactory(integration=integration, status="dlq")
    url = f"/platform/integrations/{integration.pk}/recovery/queue/{item.pk}/replay"
    response = operator_client.post(url, body, content_type=content_type or "application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "INT-400-INVALID-PAYLOAD"
    assert RecoveryItem.objects.get(pk=item.pk).status == "dlq"


@pytest.mark.django_db
def test_replay_is_refused_while_the_integration_is_paused(integration, operator, operator_client):
    item = ParkedItemFactory(integration=integration, status="dlq")
    services.integration_set_paused(
        integration_id=integration.pk, paused=True, actor=operator, reason="vendor outage"
    )
    response = replay(operator_client, integration.pk, item.pk)
    assert response.status_code == 409
    assert error_of(response)["details"]["integration_paused"] is True
    item.refresh_from_db()
    assert item.status == "dlq"


@pytest.mark.django_db(transaction=True)
def test_replay_fails_closed_when_the_database_is_down(database_down):
    # The token lookup itself needs the database, so the request is refused before acting.
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.post(replay_url(1, 1), {"reason": "x"}, format="json")
    assert response.status_code == 503
    assert error_of(response)["code"] == "INT-503-DEPENDENCY-UNAVAILABLE"


@pytest.mark.django_db
def test_a_replayed_item_is_redelivered_by_the_worker_with_the_replay_request_id(
    integration, operator_client, httpserver
):
    httpserver.expect_request("/hooks/crm").respond_with_data("ok")
    item = ParkedItemFactory(integration=integration, status="dlq")
    replay(operator_client, integration.pk, item.pk, HTTP_X_REQUEST_ID="chain-77")
    deliver()
    item.refresh_from_db()
    assert item.status == "succeeded"
    succeeded = AuditEvent.objects.get(event="platform.integration.recovery.reprocess_succeeded")
    assert succeeded.before_state["status"] == "replayed"
    assert succeeded.request_id == "chain-77"
    request, _ = httpserver.log[0]
    assert request.headers["X-Request-ID"] == "chain-77"


def _race(integration_id: int, item_id: int, keys: list[str | None]) -> list:
    user = UserFactory(username="racer", groups=["Support operator"])
    return run_concurrently(
        lambda n: replay(token_client(user), integration_id, item_id, key=keys[n]), len(keys)
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_with_one_idempotency_key_replay_once(httpserver):
    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/h"), actor="t"
    )
    item = ParkedItemFactory(integration=integration, status="dlq")
    responses = _race(integration.pk, item.pk, ["same-key"] * 8)
    executed = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r]
    replayed = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" in r]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(executed) == 1
    assert len(executed) + len(replayed) + len(in_flight) == 8
    # A late caller gets the first outcome back, byte for byte; an early one is told to wait.
    assert all(r.json() == executed[0].json() for r in replayed)
    assert {r.json()["error"]["code"] for r in in_flight} <= {"INT-409-IDEMPOTENCY-KEY-IN-USE"}
    assert AuditEvent.objects.filter(event="platform.integration.recovery.replayed").count() == 1
    assert RecoveryItem.objects.get(pk=item.pk).replay_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_without_a_shared_key_still_replay_once(httpserver):
    integration = services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/h"), actor="t"
    )
    item = ParkedItemFactory(integration=integration, status="dlq")
    responses = _race(integration.pk, item.pk, [f"key-{n}" for n in range(8)])
    codes = [r.status_code for r in responses]
    assert codes.count(202) == 1
    assert codes.count(409) == 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "INT-409-RECOVERY-REPLAY-CONFLICT"
    }
    assert AuditEvent.objects.filter(event="platform.integration.recovery.replayed").count() == 1
