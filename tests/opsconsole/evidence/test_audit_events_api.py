from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from opsconsole.models import AuditEvent
from tests.helpers import error_of


def audit(event: str, object_id: str, request_id: str = "", minutes_ago: int = 0) -> AuditEvent:
    row = AuditEvent.objects.create(
        event=event,
        object_type="recovery.recoveryitem",
        object_id=object_id,
        actor="oncall",
        request_id=request_id,
        after_state={"recipient": "ana@example.test"},
        metadata={},
    )
    AuditEvent.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return row


@pytest.mark.django_db
def test_filters_by_object_request_and_time_page_newest_first(operator_client):
    rows = [audit("replayed", "7", "req-a", minutes_ago=m) for m in (30, 20, 10)]
    audit("replayed", "8", "req-b", minutes_ago=5)
    url = "/api/v1/audit-events"
    body = operator_client.get(
        url, {"object_type": "recovery.recoveryitem", "object_id": "7", "limit": 2}
    ).json()
    assert [item["id"] for item in body["items"]] == [rows[2].pk, rows[1].pk]
    rest = operator_client.get(
        url,
        {"object_type": "recovery.recoveryitem", "object_id": "7", "cursor": body["next_cursor"]},
    ).json()
    assert [item["id"] for item in rest["items"]] == [rows[0].pk]
    assert rest["next_cursor"] is None
    by_request = operator_client.get(url, {"request_id": "req-b"}).json()["items"]
    assert [item["object_id"] for item in by_request] == ["8"]
    since = (timezone.now() - timedelta(minutes=15)).isoformat()
    recent = operator_client.get(
        url, {"since": since, "object_id": "7", "object_type": "recovery.recoveryitem"}
    ).json()["items"]
    assert [item["id"] for item in recent] == [rows[2].pk]


@pytest.mark.django_db
def test_personal_data_is_masked_for_viewers_and_bad_filters_are_400(viewer_client):
    audit("replayed", "9")
    (item,) = viewer_client.get("/api/v1/audit-events").json()["items"]
    assert item["after_state"] == {"recipient": "a***@example.test"}
    for params in (
        {"object_id": "9"},
        {"since": "yesterday"},
        {"cursor": "garbage"},
        {"since": "2026-01-01T10:00:00"},
    ):
        response = viewer_client.get("/api/v1/audit-events", params)
        assert (response.status_code, error_of(response)["code"]) == (
            400,
            "OPS-400-INVALID-PAYLOAD",
        ), params
