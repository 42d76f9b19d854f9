"""A running bulk action's page shows its progress, its rate over the last minute and the
ETA at that rate, and refreshes that block every 5 seconds without a reload."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recovery.inbox import bulk_actions
from recovery.models import BulkAction, BulkActionItem
from tests.recovery.factories import ParkedItemFactory


@pytest.mark.django_db
def test_a_running_action_shows_rate_and_eta(admin_client, integration):
    items = ParkedItemFactory.create_batch(100, integration=integration, status="dlq")
    action = bulk_actions.bulk_action_create(
        actor="oncall",
        reason="provider fixed",
        source="integration_delivery",
        ids=[item.pk for item in items],
    )
    assert action.total == 100
    now = timezone.now()
    first = list(action.items.order_by("id").values_list("pk", flat=True)[:40])
    BulkActionItem.objects.filter(pk__in=first[:30]).update(
        outcome="replayed", processed_at=now - timedelta(seconds=20)
    )
    BulkActionItem.objects.filter(pk__in=first[30:]).update(
        outcome="replayed", processed_at=now - timedelta(minutes=5)
    )
    BulkAction.objects.filter(pk=action.pk).update(
        status="running", processed=40, started_at=now - timedelta(minutes=6)
    )
    page = admin_client.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
    assert 'data-testid="bulk-processed">40<' in page
    assert "rate over the last 60 s" in page
    assert 'data-testid="bulk-rate">0.50/s<' in page  # 30 in the last minute
    assert 'data-testid="bulk-eta">120 s<' in page  # 60 left at 0.5 a second
    assert 'data-live-refresh="5"' in page and "console/live_refresh" in page
    BulkAction.objects.filter(pk=action.pk).update(
        status="completed", processed=100, finished_at=now + timedelta(seconds=40)
    )
    done = admin_client.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
    assert "data-live-refresh" not in done and 'data-testid="bulk-eta">none<' in done
    # Done: the average over the run, 100 in 400 s.
    assert 'average rate <strong data-testid="bulk-rate">0.25/s<' in done


@pytest.mark.django_db
def test_an_action_started_seconds_ago_shows_its_rate_since_the_start(admin_client, integration):
    items = ParkedItemFactory.create_batch(10, integration=integration, status="dlq")
    action = bulk_actions.bulk_action_create(
        actor="oncall",
        reason="provider fixed",
        source="integration_delivery",
        ids=[item.pk for item in items],
    )
    now = timezone.now()
    BulkActionItem.objects.filter(
        pk__in=list(action.items.values_list("pk", flat=True)[:4])
    ).update(outcome="replayed", processed_at=now - timedelta(seconds=1))
    BulkAction.objects.filter(pk=action.pk).update(
        status="running", processed=4, started_at=now - timedelta(seconds=4)
    )
    page = admin_client.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
    # Not 4 a minute (0.07/s): 4 in the 4 s since it started.
    assert "rate over the last 4 s" in page or "rate over the last 5 s" in page
    assert 'data-testid="bulk-rate">0.0' not in page
