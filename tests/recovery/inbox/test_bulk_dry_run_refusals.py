"""A dry run says what a run would refuse, instead of promising a replay: deliveries to a
paused integration are counted apart, with what to do first, on the failure inbox's page."""

from __future__ import annotations

import pytest

from recovery import services
from recovery.inbox import bulk_actions
from recovery.inbox.groups import failure_groups
from tests.recovery.factories import ParkedItemFactory


@pytest.mark.django_db
def test_a_dry_run_over_a_paused_integration_counts_its_items_as_refused(integration, operator):
    items = ParkedItemFactory.create_batch(3, integration=integration, status="dlq")
    services.integration_set_paused(
        integration_id=integration.pk, paused=True, actor=operator, reason="maintenance"
    )
    action = bulk_actions.bulk_action_create(
        actor=operator,
        reason="provider fixed",
        source="integration_delivery",
        ids=[item.pk for item in items],
    )
    why = "integration crm is paused; resume it first"
    assert action.preview["would_replay"] == 0
    assert action.preview["would_be_refused"] == {why: 3}
    assert {s["predicted"] for s in action.preview["sample"]} == {f"refused: {why}"}

    services.integration_set_paused(
        integration_id=integration.pk, paused=False, actor=operator, reason="back"
    )
    resumed = bulk_actions.bulk_action_create(
        actor=operator,
        reason="provider fixed",
        source="integration_delivery",
        ids=[item.pk for item in items],
    )
    assert (resumed.preview["would_replay"], resumed.preview["would_be_refused"]) == (3, {})


@pytest.mark.django_db
def test_the_inbox_dry_run_warns_of_the_refusals(integration, operator, admin_client):
    ParkedItemFactory.create_batch(2, integration=integration, status="dlq")
    services.integration_set_paused(
        integration_id=integration.pk, paused=True, actor=operator, reason="maintenance"
    )
    (group,) = failure_groups(source="integration_delivery")
    page = admin_client.post(
        f"/admin/failures/{group.fingerprint}/",
        {"reason": "provider fixed", "rate_per_second": "1", "mode": "replay"},
        follow=True,
    ).content.decode()
    assert "0 items would be replayed" in page
    assert "2 items would be refused: integration crm is paused; resume it first." in page
