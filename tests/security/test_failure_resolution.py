"""Resolving a failure closes the occurrence it saw; money needs a second operator."""

from __future__ import annotations

import pytest
from django.utils import timezone

from opsconsole.failures import failure_sources
from opsconsole.models import AuditEvent
from recovery.inbox import groups as inbox
from recovery.models import FailureResolution, FailureResolutionRequest, RecoveryItem
from recovery.workers import DlqSweeper
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import failed_refund
from tests.recovery.factories import ParkedItemFactory
from tests.workers import run_as


def open_ids(source: str) -> set[int]:
    return set(inbox.open_rows(failure_sources.get(source)).values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_resolved_failure_that_fails_again_is_open_again(integration, operator_client):
    item = ParkedItemFactory(integration=integration, status="dlq")
    url = f"/api/v1/failures/integration_delivery/{item.pk}/resolve"
    response = operator_client.post(url, {"reason": "partner fixed it by hand"}, format="json")
    assert response.status_code == 200 and response.json()["resolved"] is True
    assert item.pk not in open_ids("integration_delivery")
    # A replay later fails again: the row moves on, and the failure is back.
    RecoveryItem.objects.filter(pk=item.pk).update(
        updated_at=timezone.now(), failure_code="HTTP_502"
    )
    assert item.pk in open_ids("integration_delivery")
    assert item.pk in {pk for g in inbox.failure_groups() for pk in g.source_ids()}
    # ... and the DLQ sweeper claims it again.
    claimed = DlqSweeper().claim(run_as(DlqSweeper(), "test"), limit=100)
    assert ("integration_delivery", item.pk) in claimed
    # Resolving the new occurrence works, and is a second, separate record.
    again = operator_client.post(url, {"reason": "again"}, format="json")
    assert again.status_code == 200
    assert FailureResolution.objects.filter(source_id=item.pk).count() == 2


@pytest.mark.django_db
def test_resolving_money_needs_a_second_operator(operator):
    refund = failed_refund()
    url = f"/api/v1/failures/refund/{refund.pk}/resolve"
    first = token_client(operator)
    asked = first.post(url, {"reason": "refunded by bank transfer"}, format="json")
    assert asked.status_code == 202
    assert asked.json() == {
        "source": "refund",
        "source_id": refund.pk,
        "resolved": False,
        "awaiting_second_operator": True,
        "requested_by": "operator",
    }
    assert refund.pk in open_ids("refund")
    same = first.post(url, {"reason": "really"}, format="json")
    assert (same.status_code, error_of(same)["code"]) == (409, "OPS-409-SECOND-OPERATOR-REQUIRED")
    assert refund.pk in open_ids("refund")
    second = token_client(UserFactory(username="second", groups=["Support operator"]))
    done = second.post(url, {"reason": "checked the bank statement"}, format="json")
    assert done.status_code == 200
    assert done.json()["resolved"] is True and done.json()["requested_by"] == "operator"
    assert refund.pk not in open_ids("refund")
    resolution = FailureResolution.objects.get(source="refund", source_id=refund.pk)
    assert (resolution.requested_by, resolution.resolved_by) == ("operator", "second")
    assert not FailureResolutionRequest.objects.exists()
    assert list(
        AuditEvent.objects.filter(event__startswith="recovery.failure.")
        .order_by("id")
        .values_list("event", "actor")
    ) == [
        ("recovery.failure.resolution_requested", "operator"),
        ("recovery.failure.resolved", "second"),
    ]


@pytest.mark.django_db
def test_a_viewer_cannot_resolve(viewer_client, integration):
    item = ParkedItemFactory(integration=integration, status="dlq")
    response = viewer_client.post(
        f"/api/v1/failures/integration_delivery/{item.pk}/resolve", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert not FailureResolution.objects.exists()
