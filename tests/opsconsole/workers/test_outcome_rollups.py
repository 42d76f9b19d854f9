"""Every queue's outcomes per minute: added as each worker run ends, charted on the overview
from those rows (never the queues), and kept a week."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import WorkerOutcomeMinute
from opsconsole.workers.outcome_rollups import worker_outcomes_add, worker_outcomes_purge
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver


@pytest.mark.django_db
def test_a_runs_outcomes_are_added_to_its_minute_by_class(integration, httpserver):
    httpserver.expect_oneshot_request("/hooks/crm").respond_with_data("no", 503)
    httpserver.expect_request("/hooks/crm").respond_with_json({"ok": True})
    for n in range(3):
        QueuedItemFactory(integration=integration, payload={"n": n})
    deliver()
    (row,) = WorkerOutcomeMinute.objects.filter(worker="integration_delivery_worker")
    assert row.minute == timezone.now().replace(second=0, microsecond=0)
    assert (row.succeeded, row.retried, row.failed, row.dead_lettered) == (2, 1, 0, 0)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        deliver()  # the retry succeeds in a later minute: a row of its own
    rows = WorkerOutcomeMinute.objects.filter(worker="integration_delivery_worker")
    assert sorted((r.succeeded, r.retried) for r in rows) == [(1, 0), (2, 1)]


@pytest.mark.django_db
def test_runs_in_one_minute_add_up_and_old_minutes_are_purged():
    now = timezone.now()
    worker_outcomes_add("refund_retry_worker", {"succeeded": 2, "dead_lettered": 1}, now)
    worker_outcomes_add("refund_retry_worker", {"succeeded": 3, "retried": 4}, now)
    worker_outcomes_add("refund_retry_worker", {}, now)  # nothing to add: no write
    (row,) = WorkerOutcomeMinute.objects.all()
    assert (row.succeeded, row.retried, row.failed, row.dead_lettered) == (5, 4, 0, 1)
    worker_outcomes_add("refund_retry_worker", {"failed": 1}, now - timedelta(days=9))
    assert worker_outcomes_purge() == 1
    assert WorkerOutcomeMinute.objects.count() == 1


@pytest.mark.django_db
def test_the_overview_charts_every_queue_from_its_rollups(admin_client):
    now = timezone.now()
    worker_outcomes_add("notification_delivery_worker", {"succeeded": 7, "retried": 2}, now)
    worker_outcomes_add(
        "notification_delivery_worker", {"dead_lettered": 3}, now - timedelta(hours=5)
    )
    page = admin_client.get("/admin/overview/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="queue-outcomes"' in html
    for worker in ("integration_delivery_worker", "refund_retry_worker"):
        assert f'data-testid="outcomes-{worker}-hour"' in html
    # The last hour's chart draws this minute's row; the day's also the one 5 hours ago.
    hour = html.split('data-testid="outcomes-notification_delivery_worker-hour"')[1]
    hour = hour.split("</svg>")[0]
    assert 'data-series="succeeded" data-count="7"' in hour
    assert 'data-series="dead_lettered"' not in hour
    day = html.split('data-testid="outcomes-notification_delivery_worker-day"')[1]
    assert 'data-series="dead_lettered" data-count="3"' in day.split("</svg>")[0]
