"""A bulk-action item a killed worker left `processing` is recovered, never replayed blind."""

from __future__ import annotations

import pytest

from recovery.inbox.bulk_actions import bulk_action_create, bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, BulkActionItem, RecoveryItem
from tests.recovery.factories import ParkedItemFactory


@pytest.mark.django_db
def test_an_item_left_processing_is_failed_with_a_note_and_the_action_completes(
    integration, operator, httpserver
):
    first, second, third = (
        ParkedItemFactory(integration=integration, status="dlq") for _ in range(3)
    )
    action = bulk_action_create(
        actor=operator,
        reason="r",
        source="integration_delivery",
        ids=[first.pk, second.pk, third.pk],
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    # A run died after marking the first two items: one was replayed (no longer failing),
    # the other's replay never happened.
    BulkActionItem.objects.filter(action=action, source_id__in=[first.pk, second.pk]).update(
        outcome="processing"
    )
    RecoveryItem.objects.filter(pk=first.pk).update(status="succeeded")
    httpserver.expect_request("/hooks/crm").respond_with_json({"ok": True})
    bulk_action_run(action_id=action.pk, max_seconds=5)
    outcomes = dict(
        BulkActionItem.objects.filter(action=action).values_list("source_id", "outcome")
    )
    assert outcomes == {first.pk: "resolved", second.pk: "failed", third.pk: "replayed"}
    assert "interrupted" in BulkActionItem.objects.get(action=action, source_id=second.pk).detail
    # The interrupted one was not replayed blind: it is still in the DLQ for an operator.
    assert RecoveryItem.objects.get(pk=second.pk).status == "dlq"
    action.refresh_from_db()
    assert action.status == BulkAction.Status.COMPLETED
    assert action.processed == 3
