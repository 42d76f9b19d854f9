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
    BulkAction.objects.filter(pk=action.pk).update(status="running", processed=40)
    page = admin_client.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
    assert 'data-testid="bulk-processed">40<' in page
    assert 'data-testid="bulk-rate">0.5<' in page  # 30 in the last minute
    assert 'data-testid="bulk-eta">120 s<' in page  # 60 left at 0.5 a second
    assert 'data-live-refresh="5"' in page and "console/live_refresh" in page
    BulkAction.objects.filter(pk=action.pk).update(status="completed", processed=100)
    done = admin_client.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
    assert "data-live-refresh" not in done and 'data-testid="bulk-eta">none<' in done
