"""The failure inbox as tables grow: large groups counted by the planner, whole groups
resolved with a reason, and each group's open failures sampled for its sparkline."""

from __future__ import annotations

import pytest
from django.utils import timezone

from opsconsole.models import AuditEvent
from recovery.inbox import groups as inbox
from recovery.inbox import trends as inbox_trends
from recovery.inbox.bulk_actions import bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, FailureResolution
from tests.helpers import error_of
from tests.recovery.factories import ParkedItemFactory

FAILURES = "/api/v1/failures"


@pytest.mark.django_db
def test_a_group_past_the_exact_count_takes_the_planners_estimate(
    integration, monkeypatch, viewer_client, admin_client
):
    from django.db import connection

    monkeypatch.setattr(inbox, "EXACT_GROUP_COUNT", 5)
    busy = [
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
        for _ in range(8)
    ]
    for _ in range(3):
        ParkedItemFactory(integration=integration, status="failed", failure_code="HTTP_400")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE recovery_recoveryitem")
    by_code = {group.failure_code: group for group in inbox.failure_groups()}
    big, small = by_code["HTTP_503"], by_code["HTTP_400"]
    assert (small.count, small.count_estimated) == (3, False)  # within the window: exact
    # Past it: the planner's estimate, which the status-fingerprint statistics keep right.
    assert big.count_estimated and big.count == 8
    assert big.first_seen == min(item.created_at for item in busy)
    assert big.last_seen >= max(item.updated_at for item in busy)
    listed = viewer_client.get(FAILURES).json()["groups"]
    assert {g["failure_code"]: g["count_estimated"] for g in listed} == {
        "HTTP_503": True,
        "HTTP_400": False,
    }
    page = admin_client.get(f"/admin/failures/{big.fingerprint}/").content.decode()
    assert "about 8 open integration_delivery failures" in page


@pytest.mark.django_db
def test_a_whole_group_is_resolved_with_a_reason_without_replaying(
    integration, operator, operator_client
):
    items = [
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
        for _ in range(3)
    ]
    [group] = inbox.failure_groups()
    created = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": group.fingerprint, "reason": "partner has them", "mode": "resolve"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="resolve-group-1",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["mode"] == "resolve"
    assert (body["preview"]["would_resolve"], body["preview"]["would_replay"]) == (3, 0)
    assert body["preview"]["sample"][0]["predicted"] == "resolve: partner has them"
    bulk_action_transition(action_id=body["id"], verb="start", actor=operator, reason="go")
    assert bulk_action_run(action_id=body["id"], max_seconds=10) == 3
    action = BulkAction.objects.get(pk=body["id"])
    assert (action.status, action.resolved, action.replayed) == ("completed", 3, 0)
    for item in items:
        item.refresh_from_db()
        assert (item.status, item.replay_count) == ("dlq", 0)  # closed, never replayed
    resolutions = FailureResolution.objects.filter(source="integration_delivery")
    assert sorted(resolutions.values_list("source_id", flat=True)) == sorted(i.pk for i in items)
    assert {r.reason for r in resolutions} == {"partner has them"}
    assert AuditEvent.objects.filter(event="recovery.failure.resolved").count() == 3
    assert inbox.failure_groups() == []
    bad = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": group.fingerprint, "reason": "x", "mode": "delete"},
        format="json",
    )
    assert (bad.status_code, error_of(bad)["code"]) == (400, "OPS-400-INVALID-PAYLOAD")


@pytest.mark.django_db
def test_the_group_page_offers_resolving_the_group(integration, admin_client):
    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    [group] = inbox.failure_groups()
    page = admin_client.get(f"/admin/failures/{group.fingerprint}/")
    assert "Dry run resolving these 2 items" in page.content.decode()
    form = {
        "reason": "events were backfilled by hand",
        "mode": "resolve",
        "rate_per_second": "10",
        "action_token": page.context["action_token"],
    }
    response = admin_client.post(f"/admin/failures/{group.fingerprint}/", form, follow=True)
    action = BulkAction.objects.get()
    assert (action.mode, action.total, action.preview["would_resolve"]) == ("resolve", 2, 2)
    assert "0 items would be replayed, 2 items resolved" in response.content.decode()


@pytest.mark.django_db
def test_the_minute_sample_keeps_each_groups_open_count_for_its_sparkline(
    integration, admin_client
):
    from datetime import timedelta

    from opsconsole.models import QueueDepthSample
    from opsconsole.monitoring.queue_depth import group_series, queue_depth_sample

    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    queue_depth_sample(now=now - timedelta(hours=3))
    for _ in range(3):
        ParkedItemFactory(integration=integration, status="failed", failure_code="HTTP_400")
    queue_depth_sample(now=now - timedelta(hours=1))
    by_code = {group.failure_code: group.fingerprint for group in inbox.failure_groups()}
    sample = QueueDepthSample.objects.filter(queue=inbox_trends.INBOX_SAMPLE).latest("sampled_at")
    assert sample.counts == {"open": 4}
    assert sample.groups == {by_code["HTTP_503"]: {"open": 1}, by_code["HTTP_400"]: {"open": 3}}
    series = group_series(inbox_trends.INBOX_SAMPLE, list(by_code.values()), "open")
    assert [count for _, count in series[by_code["HTTP_400"]]] == [0, 3]  # absent, then 3
    assert [count for _, count in series[by_code["HTTP_503"]]] == [1, 1]
    page = admin_client.get("/admin/failures/").content.decode()
    assert f'data-testid="group-trend-{by_code["HTTP_400"]}" data-latest="3"' in page
