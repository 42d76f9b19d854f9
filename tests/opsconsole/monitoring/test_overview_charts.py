"""The overview at any size: outcome charts drawn from the per-minute rollups, queue counts
and depth sparklines from the minute samples (exact, or the planner's estimate for a big
table), the page refreshing itself, and /admin/ opening on it for support staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opsconsole.models import QueueDepthSample
from opsconsole.monitoring import queue_depth
from opsconsole.monitoring.queue_depth import QueueDepthSampler, status_counts
from recovery.models import DeliveryRollup, RecoveryItem
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory
from tests.workers import run_worker


def total(page: str, testid: str) -> int:
    marker = f'data-testid="{testid}">'
    return int(page.split(marker)[1].split("<")[0])


@pytest.mark.django_db
def test_the_outcome_charts_count_what_the_rollups_hold(admin_client, integration):
    minute = timezone.now().replace(second=0, microsecond=0)
    DeliveryRollup.objects.create(integration=integration, minute=minute, succeeded=5, failed=3)
    DeliveryRollup.objects.create(
        integration=integration, minute=minute - timedelta(hours=2), dlq=2, retry_scheduled=4
    )
    DeliveryRollup.objects.create(
        integration=integration, minute=minute - timedelta(days=3), succeeded=7
    )
    page = admin_client.get("/admin/overview/").content.decode()
    assert total(page, "deliveries-last-hour-total-failed") == 3
    assert total(page, "deliveries-last-hour-total-dead_lettered") == 0
    assert total(page, "deliveries-last-day-total-dead_lettered") == 2
    assert total(page, "deliveries-last-day-total-retried") == 4
    assert total(page, "deliveries-last-week-total-succeeded") == 12
    assert page.count('data-series="failed" data-count="3"') == 3  # one bar in each chart


@pytest.mark.django_db
def test_the_sampler_keeps_a_week_of_depth_and_the_overview_reads_it(admin_client, integration):
    ParkedItemFactory.create_batch(2, integration=integration, status="dlq")
    old = QueueDepthSample.objects.create(
        queue="integration_deliveries",
        sampled_at=timezone.now() - timedelta(days=8),
        counts={"dlq": 9},
    )
    assert run_worker(QueueDepthSampler).outcomes == {"sampled": 1}
    assert not QueueDepthSample.objects.filter(pk=old.pk).exists()
    sample = QueueDepthSample.objects.get(queue="integration_deliveries")
    assert (sample.counts, sample.estimated) == ({"dlq": 2}, False)
    ParkedItemFactory(integration=integration, status="dlq")  # after the sample
    page = admin_client.get("/admin/overview/").content.decode()
    assert 'data-testid="depth-integration_deliveries" data-latest="2"' in page
    assert "dlq: 2" in page  # the minute's sample, not a count of the live table
    # The page refreshes itself from a static file (the Content-Security-Policy forbids an
    # inline script): every 5 seconds.
    assert 'data-live-refresh="5"' in page and "console/live_refresh.js" in page


@pytest.mark.django_db
def test_a_big_table_is_counted_from_the_planners_statistics(monkeypatch, integration):
    ParkedItemFactory.create_batch(30, integration=integration, status="dlq")
    ParkedItemFactory.create_batch(10, integration=integration, status="failed")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {RecoveryItem._meta.db_table}")
    monkeypatch.setattr(queue_depth, "ESTIMATE_ABOVE_ROWS", 1)
    counts, estimated = status_counts(RecoveryItem)
    assert estimated and counts == {"dlq": 30, "failed": 10}


@pytest.mark.django_db
def test_a_big_tables_groups_are_counted_from_the_planners_statistics(monkeypatch):
    from opsconsole.monitoring.metrics import registered_queues
    from opsconsole.monitoring.queue_depth import group_counts
    from tests.recovery.factories import IntegrationFactory

    crm, erp = IntegrationFactory(name="crm"), IntegrationFactory(name="erp")
    ParkedItemFactory.create_batch(30, integration=crm, status="dlq")
    ParkedItemFactory.create_batch(10, integration=erp, status="failed")
    ParkedItemFactory.create_batch(5, integration=erp, status="succeeded")  # not a group's
    queue = registered_queues()["integration_deliveries"]
    exact = group_counts(queue)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {RecoveryItem._meta.db_table}")
    monkeypatch.setattr(queue_depth, "ESTIMATE_ABOVE_ROWS", 1)
    with CaptureQueriesContext(connection) as queries:
        estimated = group_counts(queue)
    assert estimated == exact == {"crm": {"dlq": 30}, "erp": {"failed": 10}}
    assert not any("GROUP BY" in q["sql"] for q in queries)  # no count of the table


@pytest.mark.django_db
def test_staff_land_on_the_overview_and_the_app_list_is_one_click_away(client):
    viewer = UserFactory(username="staff-viewer", groups=["Support viewer"])
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    home = client.get("/admin/").content.decode()
    assert 'data-testid="console-overview"' in home and 'href="/admin/apps/"' in home
    assert "app-recovery" in client.get("/admin/apps/").content.decode()
    plain = UserFactory(username="staff-no-console")
    plain.is_staff = True
    plain.save()
    client.force_login(plain)
    assert 'data-testid="console-overview"' not in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_a_days_sparkline_reads_one_sample_in_ten_minutes_and_the_newest():
    from opsconsole.monitoring.queue_depth import depth_series

    newest = timezone.now().replace(second=0, microsecond=0)
    if newest.minute % 10 == 0:
        newest -= timedelta(minutes=1)
    QueueDepthSample.objects.bulk_create(
        QueueDepthSample(
            queue="integration_deliveries",
            sampled_at=newest - timedelta(minutes=age),
            counts={"dlq": age, "succeeded": 1000},
        )
        for age in range(120)
    )
    series = depth_series("integration_deliveries", ("dlq",))
    assert [at.minute % 10 for at, _ in series[:-1]] == [0] * 12
    assert series[-1] == (newest, 0)  # the newest, whatever its minute
    assert all(value == int((newest - at).total_seconds() // 60) for at, value in series)
