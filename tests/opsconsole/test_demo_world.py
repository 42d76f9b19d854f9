"""The demo world's practice cases stay broken for an operator: every scheduled worker run
once leaves them as they were, and the runbook's fix (here: a new endpoint, then a replay)
heals them."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from notifications.models import Campaign, CampaignTarget, Notification
from opsconsole.models import Incident
from opsconsole.workers.registry import registered_workers
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    VoucherRedemptionFailure,
    WebhookFailure,
)
from recovery import services
from recovery.cases.refs import user_ref
from recovery.cases.search import find as find_customer
from recovery.inbox.groups import failure_groups, failure_resolve_by_operator
from recovery.models import Integration, ManualReviewItem, RecoveryItem
from tests.workers import deliver, run_worker


@pytest.fixture
def demo_world(db, settings) -> None:
    settings.PROVIDERS_SANDBOX = True
    call_command("demo_data", stdout=io.StringIO())


def dlq_group(name: str) -> RecoveryItem:
    return RecoveryItem.objects.filter(integration__name=name, status="dlq")


def groups_of(source: str) -> list:
    return failure_groups(source=source)


@pytest.mark.django_db
def test_the_demo_world_holds_every_practice_case(demo_world):
    assert Integration.objects.get(name="accounting-export").paused
    assert dlq_group("crm-sync").count() == 3
    # Each parked item reads as the worker left it: what was sent, what came back, and
    # every attempt.
    for parked in RecoveryItem.objects.filter(integration__name="crm-sync").exclude(
        status="pending"
    ):
        assert parked.request_snapshot["url"] == parked.integration.endpoint_url
        assert parked.request_snapshot["body"] == parked.payload
        assert parked.request_snapshot["headers"]["X-Ops-Attempt"] == str(parked.attempt_count)
        assert parked.response_snapshot
        assert parked.attempts.count() == parked.attempt_count > 0
    refused = RecoveryItem.objects.get(integration__name="crm-sync", status="failed")
    assert refused.response_snapshot["status"] == 400
    assert HostedCheckoutSession.objects.get(reference="hcs_demo_3").stalled
    (money,) = groups_of("refund")
    assert money.count == 2
    campaign = Campaign.objects.get(name="Spring courts promo")
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.throttled_until > timezone.now()
    assert CampaignTarget.objects.filter(campaign=campaign, error_code="rate_limited").count() == 1
    (refusal,) = VoucherRedemptionFailure.objects.all()
    assert refusal.station_id == "porto-2"
    assert refusal.error_code == "PAY-409-VOUCHER-ALREADY-REDEEMED"
    assert Incident.objects.filter(status=Incident.Status.OPEN).count() == 1
    # Maria's story: two bookings paid by card, one cancelled and refunded, a webhook about
    # a refund the console did not make, and a confirmation email per booking.
    maria = User.objects.get(username="maria")
    assert sorted(maria.bookings.values_list("status", flat=True)) == ["CANCELLED", "CONFIRMED"]
    assert Payment.objects.filter(provider_payment_id__startswith="pi_demo_maria_").count() == 2
    assert Refund.objects.filter(
        payment__provider_payment_id__startswith="pi_demo_maria_", status="COMPLETED"
    ).exists()
    assert WebhookFailure.objects.filter(event_type="refund.updated").count() == 1
    # Its event id and the dashboard refund's id both lead to Maria's case.
    for term in ("evt_demo_refund_updated", "re_demo_dashboard_goodwill"):
        assert [match.ref for match in find_customer(term)] == [user_ref(maria.pk)], term
    # And the entry code of the booking she kept (the cancelled one was not fulfilled).
    assert Notification.objects.filter(recipient=maria.email).count() == 3
    assert Notification.objects.filter(recipient=maria.email, template="booking_fulfilled")
    # Joao paid cash at the desk and cancelled: a refund owed until staff pay it back.
    assert Refund.objects.get(payment__method="cash").status == Refund.Status.OWED


@pytest.mark.django_db
def test_every_worker_run_once_leaves_the_practice_cases_for_an_operator(
    demo_world, httpserver, settings
):
    for worker_class in registered_workers().values():
        run_worker(worker_class)

    # The DLQ group: past the sweeper's retry, handed to manual review, still in the DLQ.
    crm = Integration.objects.get(name="crm-sync")
    dlq = list(dlq_group("crm-sync").values_list("pk", flat=True))
    assert len(dlq) == 3
    crm_groups = [g for g in groups_of("integration_delivery") if g.provider == "crm-sync"]
    assert sorted(g.count for g in crm_groups) == [1, 3]  # the DLQ group, the refused payload
    reviews = ManualReviewItem.objects.filter(source="integration_delivery", source_id__in=dlq)
    assert reviews.filter(status=ManualReviewItem.Status.OPEN).count() == 3
    # The failing partner: every delivery refused; the paused one delivers nothing.
    assert not RecoveryItem.objects.filter(integration=crm, status="succeeded").exists()
    assert RecoveryItem.objects.filter(
        integration=crm, status="retrying", failure_code="NETWORK_CONNECTION_REFUSED"
    ).exists()
    accounting = Integration.objects.get(name="accounting-export")
    assert accounting.paused
    assert not accounting.items.filter(attempt_count__gt=0, status="pending").exists()
    # The stalled session: not reminded, not abandoned.
    session = HostedCheckoutSession.objects.get(reference="hcs_demo_3")
    assert session.stalled and session.attempt_count == 4 and session.last_notified_at is None
    # The money group: still open, and one operator cannot close it alone.
    (money,) = groups_of("refund")
    assert money.count == 2
    operator = User.objects.get(username="operator")
    refund = Refund.objects.filter(status=Refund.Status.FAILED).first()
    first = failure_resolve_by_operator(
        source="refund", source_id=refund.pk, actor=operator, reason="paid back by transfer"
    )
    assert first.awaiting_second_operator

    # The runbook: the partner's new endpoint, then a replay of the DLQ group, heals it.
    httpserver.expect_request("/webhooks/crm").respond_with_json({"ok": True})
    services.integration_update(
        integration_id=crm.pk,
        changes={"endpoint_url": httpserver.url_for("/webhooks/crm")},
        actor=operator,
        reason="the partner's new endpoint",
    )
    for item_id in dlq:
        services.recovery_item_replay(
            integration_id=crm.pk, item_id=item_id, actor=operator, reason="endpoint fixed"
        )
    # The partner's circuit opened on the refusals: a probe after CIRCUIT_PROBE_SECONDS
    # succeeds, then the backlog drains CIRCUIT_DRAIN_PER_RUN a run.
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.CIRCUIT_PROBE_SECONDS)):
        for _ in range(3):
            deliver()
    assert set(RecoveryItem.objects.filter(pk__in=dlq).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert not dlq_group("crm-sync").exists()
