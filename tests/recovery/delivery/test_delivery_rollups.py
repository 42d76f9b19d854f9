"""Each delivery outcome adds to its integration's minute rollup in the statement that
records it; the console reads success rates, latency percentiles and the last day's
outcomes from the rollups, never from the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from recovery import services
from recovery.errors import LeaseLost
from recovery.integrations.delivery.request import DeliveryResult
from recovery.integrations.stats import delivery_stats
from recovery.models import DeliveryAttempt, DeliveryRollup, RecoveryItem
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver


@pytest.mark.django_db
def test_outcomes_are_counted_per_minute_with_their_latency(integration, httpserver):
    httpserver.expect_oneshot_request("/hooks/crm").respond_with_data("no", 503)
    httpserver.expect_request("/hooks/crm").respond_with_json({"ok": True})
    for n in range(3):
        QueuedItemFactory(integration=integration, payload={"n": n})
    deliver()
    rows = DeliveryRollup.objects.filter(integration=integration)  # one per processor
    assert {row.minute for row in rows} == {timezone.now().replace(second=0, microsecond=0)}
    counts = {name: sum(getattr(row, name) for row in rows) for name in DeliveryRollup.OUTCOMES}
    assert counts == {"succeeded": 2, "retry_scheduled": 1, "failed": 0, "dlq": 0}
    assert sum(getattr(row, name) for row in rows for name in DeliveryRollup.BUCKETS) == 3

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        deliver()  # the retry, two minutes later: a new minute's row
        stats = delivery_stats(integration.pk)
    minutes = DeliveryRollup.objects.filter(integration=integration).values("minute")
    assert minutes.distinct().count() == 2
    assert stats.attempts == 4
    assert stats.success_rate == 0.75
    assert stats.percentile_ms(0.5) == "<=100"  # a local endpoint answers fast
    assert len(stats.hours) == 24


@pytest.mark.django_db
def test_the_rollup_counts_only_outcomes_that_were_written(integration):
    """The count rides in the outcome's compare-and-set: when the worker lost its lease
    meanwhile, neither the outcome nor its count is written."""
    QueuedItemFactory(integration=integration)
    (claimed,) = services.recovery_items_claim_due(owner="t", limit=1, lease_seconds=60)
    item = claimed.item
    RecoveryItem.objects.filter(pk=item.pk).update(lease_owner="another-worker")
    request = services.delivery_request(item)
    result = DeliveryResult(duration_ms=12, http_status=200)
    with pytest.raises(LeaseLost):
        services.recovery_item_record_outcome(
            item_id=item.pk,
            lease_owner="t",
            request=request,
            result=result,
            started_at=timezone.now(),
            item=item,
        )
    assert not DeliveryRollup.objects.exists()
    assert not DeliveryAttempt.objects.exists()
    RecoveryItem.objects.filter(pk=item.pk).update(lease_owner="t")
    item = RecoveryItem.objects.select_related("integration").get(pk=item.pk)
    services.recovery_item_record_outcome(
        item_id=item.pk,
        lease_owner="t",
        request=request,
        result=result,
        started_at=timezone.now(),
        item=item,
    )
    assert DeliveryRollup.objects.get().succeeded == DeliveryAttempt.objects.count() == 1


@pytest.mark.django_db
def test_the_console_shows_success_rate_and_the_last_day(
    integration, httpserver, admin_client, operator_client
):
    httpserver.expect_request("/hooks/crm").respond_with_json({"ok": True})
    QueuedItemFactory(integration=integration)
    deliver()
    page = admin_client.get(
        f"/admin/recovery/integration/{integration.pk}/change/"
    ).content.decode()
    assert 'data-testid="delivery-chart"' in page
    assert "Success rate <strong>100.0%</strong> over 1 attempt" in page
    listing = admin_client.get("/admin/recovery/integration/").content.decode()
    assert "100.0%" in listing
    # Every row's rate in one query, however many integrations the page lists.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.recovery.factories import IntegrationFactory

    with CaptureQueriesContext(connection) as one_row:
        admin_client.get("/admin/recovery/integration/")
    IntegrationFactory.create_batch(5)
    with CaptureQueriesContext(connection) as six_rows:
        listing = admin_client.get("/admin/recovery/integration/").content.decode()
    assert listing.count("no attempts") == 5
    rollup_reads = [q for q in six_rows if "recovery_deliveryrollup" in q["sql"]]
    assert len(rollup_reads) == 1 and len(six_rows) == len(one_row)
    body = operator_client.get(f"/platform/integrations/{integration.pk}").json()
    assert body["last_24h"]["attempts"] == 1
    assert body["last_24h"]["success_rate"] == 1.0
    assert body["last_24h"]["hours"][-1]["succeeded"] == 1
