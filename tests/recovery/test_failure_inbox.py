from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from bookings.models import Booking
from bookings.services import booking_cancel
from notifications.models import Notification
from notifications.services import notification_enqueue
from opsconsole import failure_sources, fingerprints
from opsconsole.models import AuditEvent
from payments.models import Payment, Refund
from payments.refunds import payment_record
from recovery import inbox
from recovery.adapters import HttpDeliveryAdapter
from recovery.bulk_actions import bulk_action_create, bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, BulkActionItem, FailureResolution, RecoveryItem
from recovery.workers import IntegrationDeliveryWorker
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import error_of
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory, QueuedItemFactory
from tests.workers import run_as

FAILURES = "/api/v1/failures"


def dead_email(error: str) -> Notification:
    notification = notification_enqueue(channel="email", to="a@b.test", template="t", context={})
    Notification.objects.filter(pk=notification.pk).update(status="DEAD", last_error=error)
    return notification


def failed_refund(amount: str = "150.00") -> Refund:
    payment = payment_record(
        reference=f"pay-{amount}-{timezone.now().timestamp()}",
        subject="booking:1",
        amount=Decimal(amount),
        currency="EUR",
        method="card",
        provider_payment_id="pi_x",
    )
    refund = Refund.objects.create(payment=payment, amount=payment.amount, reason="x")
    Refund.objects.filter(pk=refund.pk).update(
        status="FAILED", attempts=3, last_error="http_503: Stripe is down"
    )
    return Refund.objects.get(pk=refund.pk)


def test_normalised_errors_group_one_cause_as_one_fingerprint():
    first = fingerprints.normalise_error(
        "HTTP 503: upstream 10.0.0.7 timed out after 3000ms req=ab12cd34ef"
    )
    second = fingerprints.normalise_error(
        "HTTP 503: upstream 10.0.0.9 timed out after 2950ms req=99ffee0011"
    )
    assert first == second
    assert fingerprints.normalise_error("mail to ana@x.test failed") == "mail to <email> failed"


@pytest.mark.django_db
def test_one_inbox_groups_every_apps_failures_sorted_by_impact(integration, viewer_client):
    for _ in range(3):
        ParkedItemFactory(
            integration=integration,
            status="dlq",
            failure_code="HTTP_503",
            failure_detail="HTTP 503: down",
        )
    ParkedItemFactory(
        integration=integration,
        status="failed",
        failure_code="HTTP_400",
        failure_detail="HTTP 400: bad field",
    )
    dead_email("http_503: provider down 17")
    dead_email("http_503: provider down 18")
    failed_refund()
    body = viewer_client.get(FAILURES).json()
    groups = body["groups"]
    assert body["total_items"] == 7
    sources = [(g["source"], g["failure_code"], g["count"]) for g in groups]
    assert sources[0] == ("refund", "http_503", 1)  # money owed: highest impact
    assert ("integration_delivery", "HTTP_503", 3) in sources
    assert ("integration_delivery", "HTTP_400", 1) in sources
    assert ("notification", "http_503", 2) in sources
    assert [g["impact"] for g in groups] == sorted((g["impact"] for g in groups), reverse=True)
    assert all(g["first_seen"] <= g["last_seen"] for g in groups)
    delivery = next(g for g in groups if g["failure_code"] == "HTTP_503" and g["count"] == 3)
    detail = viewer_client.get(FAILURES, {"fingerprint": delivery["fingerprint"]}).json()
    assert len(detail["items"]) == 3
    assert detail["items"][0]["admin_url"].startswith("/admin/recovery/recoveryitem/")


@pytest.mark.django_db
def test_a_booking_starting_within_24_hours_ranks_first(integration, viewer_client):
    customer = UserFactory(username="soon")
    soon = BookingFactory(customer=customer, resource=ResourceFactory(), hour=10)
    Booking.objects.filter(pk=soon.pk).update(start_time=timezone.now() + timedelta(hours=3))
    failed_refund("500.00")
    ParkedItemFactory(
        integration=integration,
        status="dlq",
        payload={"booking_id": soon.pk},
        failure_code="HTTP_502",
    )
    top = viewer_client.get(FAILURES).json()["groups"][0]
    assert (top["source"], top["impact"]) == ("integration_delivery", 100)
    assert "starts within 24 hours" in top["impact_reason"]


@pytest.mark.django_db
def test_bad_filters_and_unknown_fingerprints(viewer_client, anonymous_client):
    bad = viewer_client.get(FAILURES, {"source": "nope"})
    assert (bad.status_code, error_of(bad)["code"]) == (400, "OPS-400-INVALID-PAYLOAD")
    missing = viewer_client.get(FAILURES, {"fingerprint": "0" * 16})
    assert (missing.status_code, error_of(missing)["code"]) == (404, "OPS-404-NOT-FOUND")
    assert anonymous_client.get(FAILURES).status_code == 401


@pytest.mark.django_db
def test_a_bulk_replay_is_a_dry_run_first_then_paced_and_each_item_once(integration, operator):
    items = [
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
        for _ in range(4)
    ]
    group = next(g for g in inbox.failure_groups() if g.source == "integration_delivery")
    action = bulk_action_create(
        actor=operator, reason="provider back", fingerprint=group.fingerprint, rate_per_second=4
    )
    assert action.status == "ready" and not action.moves_money
    assert action.preview["count"] == 4
    assert action.preview["sample"][0]["predicted"] == "dlq → replayed"
    assert RecoveryItem.objects.filter(status="replayed").count() == 0  # a dry run only
    # An item that fails later is not swept in: the id set is frozen.
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    started = timezone.now()
    assert bulk_action_run(action_id=action.pk, max_seconds=10) == 4
    elapsed = (timezone.now() - started).total_seconds()
    assert elapsed >= 0.74  # 4 items at 4 per second: paced, not flooded
    action.refresh_from_db()
    assert (action.status, action.replayed, action.processed) == ("completed", 4, 4)
    assert {i.pk for i in items} == set(
        RecoveryItem.objects.filter(status="replayed").values_list("pk", flat=True)
    )
    assert bulk_action_run(action_id=action.pk, max_seconds=1) == 0  # done is done
    events = AuditEvent.objects.filter(event="platform.integration.recovery.replayed")
    assert events.count() == 4


@pytest.mark.django_db
def test_pause_resume_and_abort(integration, operator):
    for _ in range(3):
        ParkedItemFactory(integration=integration, status="dlq")
    action = bulk_action_create(
        actor=operator,
        reason="r",
        source="integration_delivery",
        ids=list(RecoveryItem.objects.values_list("pk", flat=True)),
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_transition(action_id=action.pk, verb="pause", actor=operator, reason="hold on")
    assert bulk_action_run(action_id=action.pk, max_seconds=2) == 0
    bulk_action_transition(action_id=action.pk, verb="resume", actor=operator, reason="ok")
    bulk_action_transition(action_id=action.pk, verb="abort", actor=operator, reason="stop")
    assert bulk_action_run(action_id=action.pk, max_seconds=2) == 0
    assert BulkAction.objects.get(pk=action.pk).status == "aborted"
    verbs = list(
        AuditEvent.objects.filter(
            object_id=str(action.pk), event__startswith="recovery.bulk_action"
        )
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert verbs[-4:] == [
        "recovery.bulk_action.start",
        "recovery.bulk_action.pause",
        "recovery.bulk_action.resume",
        "recovery.bulk_action.abort",
    ]


@pytest.mark.django_db
def test_money_moving_actions_need_a_second_operator(operator, stripe_ok):
    refund = failed_refund()
    action = bulk_action_create(actor=operator, reason="r", source="refund", ids=[refund.pk])
    assert (action.status, action.moves_money) == ("awaiting_approval", True)
    from recovery.bulk_actions import SecondOperatorRequired

    with pytest.raises(SecondOperatorRequired):
        bulk_action_transition(action_id=action.pk, verb="approve", actor=operator, reason="me")
    other = UserFactory(username="second-op", groups=["Support operator"])
    bulk_action_transition(action_id=action.pk, verb="approve", actor=other, reason="checked")
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=action.pk, max_seconds=5)
    refund.refresh_from_db()
    assert refund.status == "COMPLETED"
    assert BulkActionItem.objects.get(action=action).detail == "FAILED → COMPLETED"


@pytest.fixture
def stripe_ok(httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test"
    httpserver.expect_request("/v1/refunds").respond_with_json({"id": "re_ok"})
    return httpserver


@pytest.mark.django_db
def test_replay_guards_resolve_instead_of_replaying(integration, operator):
    customer = UserFactory(username="cancelled-customer")
    booking = BookingFactory(customer=customer, resource=ResourceFactory())
    booking_cancel(booking_id=booking.pk, actor=customer, reason="x")
    moot = ParkedItemFactory(
        integration=integration, status="dlq", payload={"booking_id": booking.pk}
    )
    refund = failed_refund()
    Payment.objects.filter(pk=refund.payment_id).update(status="refunded")
    delivery = bulk_action_create(
        actor=operator, reason="r", source="integration_delivery", ids=[moot.pk], rate_per_second=50
    )
    assert delivery.preview["would_resolve"] == 1
    assert "was cancelled" in delivery.preview["sample"][0]["predicted"]
    bulk_action_transition(action_id=delivery.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=delivery.pk, max_seconds=2)
    item = BulkActionItem.objects.get(action=delivery)
    assert item.outcome == "resolved" and "was cancelled" in item.detail
    assert RecoveryItem.objects.get(pk=moot.pk).status == "dlq"  # not replayed
    assert FailureResolution.objects.filter(
        source="integration_delivery", source_id=moot.pk
    ).exists()
    assert moot.pk not in [pk for g in inbox.failure_groups() for pk in g.source_ids()]
    assert failure_sources.get("refund").guard(refund) == (
        "the refund already completed at the provider (charge.refunded received)"
    )


@pytest.mark.django_db
def test_bulk_actions_through_the_api(integration, operator_client, viewer_client):
    ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    fingerprint = viewer_client.get(FAILURES).json()["groups"][0]["fingerprint"]
    created = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": fingerprint, "reason": "recovered", "rate_per_second": 10},
        format="json",
        HTTP_IDEMPOTENCY_KEY="bulk-1",
    )
    assert created.status_code == 201, created.content
    again = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"fingerprint": fingerprint, "reason": "recovered", "rate_per_second": 10},
        format="json",
        HTTP_IDEMPOTENCY_KEY="bulk-1",
    )
    assert again.json()["id"] == created.json()["id"]  # a double click makes one action
    assert BulkAction.objects.count() == 1
    action_id = created.json()["id"]
    started = operator_client.post(
        f"{FAILURES}/bulk-actions/{action_id}/start", {"reason": "go"}, format="json"
    )
    assert started.json()["status"] == "running"
    conflict = operator_client.post(
        f"{FAILURES}/bulk-actions/{action_id}/approve", {"reason": "x"}, format="json"
    )
    assert (conflict.status_code, error_of(conflict)["code"]) == (
        409,
        "OPS-409-BULK-ACTION-CONFLICT",
    )
    bad = operator_client.post(
        f"{FAILURES}/bulk-actions",
        {"reason": "x", "rate_per_second": 0, "fingerprint": fingerprint},
        format="json",
    )
    assert bad.status_code == 400
    assert viewer_client.get(f"{FAILURES}/bulk-actions/{action_id}").json()["total"] == 1


@pytest.mark.django_db
def test_resolving_a_failure_by_hand(integration, operator_client):
    item = ParkedItemFactory(integration=integration, status="failed")
    response = operator_client.post(
        f"{FAILURES}/integration_delivery/{item.pk}/resolve",
        {"reason": "sent by hand"},
        format="json",
    )
    assert response.status_code == 200
    assert AuditEvent.objects.get(event="recovery.failure.resolved").reason == "sent by hand"
    assert operator_client.get(FAILURES).json()["total_items"] == 0


@pytest.mark.django_db
def test_the_admin_inbox_lists_groups_and_dry_runs_a_bulk_replay(integration, admin_client):
    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    page = admin_client.get("/admin/failures/")
    assert page.status_code == 200
    [group] = page.context["groups"]
    assert (group["count"], group["circuit"]) == (2, "closed")
    detail = admin_client.get(f"/admin/failures/{group['fingerprint']}/")
    assert "Dry run a bulk replay" in detail.content.decode()
    token = detail.context["action_token"]
    form = {"reason": "provider fixed", "rate_per_second": "5", "action_token": token}
    response = admin_client.post(f"/admin/failures/{group['fingerprint']}/", form)
    admin_client.post(f"/admin/failures/{group['fingerprint']}/", form)  # double click
    action = BulkAction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/recovery/bulkaction/{action.pk}/change/"
    assert (action.total, action.rate_per_second, action.status) == (2, 5.0, "ready")


@pytest.mark.django_db
def test_a_support_viewer_sees_the_inbox_but_cannot_act(integration, client):
    viewer = UserFactory(username="viewer-staff", groups=["Support viewer"])
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    ParkedItemFactory(integration=integration, status="dlq")
    [group] = client.get("/admin/failures/").context["groups"]
    detail = client.get(f"/admin/failures/{group['fingerprint']}/")
    assert "Dry run a bulk replay" not in detail.content.decode()
    refused = client.post(f"/admin/failures/{group['fingerprint']}/", {"reason": "x"})
    assert refused.status_code == 403
    assert not BulkAction.objects.exists()


@pytest.mark.django_db
def test_refused_redemptions_are_in_the_inbox_and_replayed_once_the_scope_is_fixed(operator):
    from payments import vouchers
    from payments.models import Voucher, VoucherRedemptionFailure

    voucher = vouchers.voucher_issue(description="Ticket", value=Decimal("5"), station_scope="s1")
    station = UserFactory(username="station-s2")
    with pytest.raises(vouchers.StationScopeMismatch):
        vouchers.voucher_redeem(code=voucher.code, station_id="s2", actor=station)
    refusal = VoucherRedemptionFailure.objects.get()
    assert (refusal.error_code, refusal.station_id) == ("PAY-403-STATION-SCOPE-MISMATCH", "s2")
    group = next(g for g in inbox.failure_groups() if g.source == "redemption")
    assert group.provider == "station s2"
    still_out = bulk_action_create(
        actor=operator, reason="r", source="redemption", ids=[refusal.pk], rate_per_second=50
    )
    assert "still outside" in still_out.preview["sample"][0]["predicted"]
    # Data Ops fixes the scope (the runbook), then the refused redemption is replayed.
    Voucher.objects.filter(pk=voucher.pk).update(station_scope="s1,s2")
    action = bulk_action_create(
        actor=operator,
        reason="scope fixed",
        source="redemption",
        ids=[refusal.pk],
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=action.pk, max_seconds=2)
    voucher.refresh_from_db()
    assert (voucher.status, voucher.redeemed_station) == ("redeemed", "s2")
    assert not [g for g in inbox.failure_groups() if g.source == "redemption"]


@pytest.mark.django_db
def test_a_double_redemption_attempt_is_resolved_by_its_guard(operator):
    from payments import vouchers
    from payments.models import VoucherRedemptionFailure

    voucher = vouchers.voucher_issue(description="Ticket", value=Decimal("5"))
    vouchers.voucher_redeem(code=voucher.code, station_id="s1", actor="s1")
    with pytest.raises(vouchers.VoucherAlreadyRedeemed):
        vouchers.voucher_redeem(code=voucher.code, station_id="s9", actor="s9")
    refusal = VoucherRedemptionFailure.objects.get()
    assert failure_sources.get("redemption").guard(refusal) == "the voucher was redeemed at s1"


@pytest.mark.django_db(transaction=True)
def test_one_pacer_per_provider_across_worker_processes(integration):
    from recovery.bulk_actions import BulkActionWorker, provider_pacing_lock

    operator = UserFactory(username="pacer", groups=["Support operator"])
    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq")
    ids = list(RecoveryItem.objects.values_list("pk", flat=True))
    first = bulk_action_create(
        actor=operator, reason="a", source="integration_delivery", ids=ids[:1], rate_per_second=50
    )
    second = bulk_action_create(
        actor=operator, reason="b", source="integration_delivery", ids=ids[1:], rate_per_second=50
    )
    BulkAction.objects.filter(pk__in=[first.pk, second.pk]).update(provider="crm")
    for action in (first, second):
        bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    worker = BulkActionWorker(max_seconds=2)
    # One action per provider at a time.
    assert worker.claim(run_as(worker, "w"), limit=10) == [first.pk]
    held = threading.Event()
    release = threading.Event()

    def other_process_pacing() -> None:
        with provider_pacing_lock("crm"):
            held.set()
            release.wait(10)
        connections.close_all()

    other = threading.Thread(target=other_process_pacing)
    other.start()
    held.wait(5)
    assert worker.process(first.pk, run_as(worker, "w")) == "provider_busy"
    release.set()
    other.join()
    assert worker.process(first.pk, run_as(worker, "w")) == "items_done"
    assert BulkAction.objects.get(pk=first.pk).status == "completed"
    assert worker.claim(run_as(worker, "w"), limit=10) == [second.pk]


@pytest.mark.django_db
def test_the_worker_stores_the_fingerprint_the_inbox_groups_by(integration, httpserver):
    httpserver.expect_request("/hooks/crm").respond_with_data("bad field 4411", status=400)
    item = QueuedItemFactory(integration=integration, payload={"booking": 3})
    IntegrationDeliveryWorker(adapter=HttpDeliveryAdapter(timeout_seconds=2)).run_once(
        triggered_by="test"
    )
    item.refresh_from_db()
    assert item.status == "failed"
    (group,) = inbox.failure_groups(source="integration_delivery")
    assert item.failure_fingerprint == group.fingerprint
    assert (group.stored_count, group.entries, group.count) == (1, [], 1)
    assert group.normalised_error == "http <n>: bad field <n>"
    assert group.source_ids() == [item.pk]


@pytest.mark.django_db
def test_stored_and_older_rows_of_one_cause_are_one_group_ranked_by_impact(
    integration, viewer_client
):
    customer = UserFactory(username="soon")
    soon = BookingFactory(customer=customer, resource=ResourceFactory(), hour=10)
    Booking.objects.filter(pk=soon.pk).update(start_time=timezone.now() + timedelta(hours=2))
    detail = "HTTP 503: upstream 7 down"
    cause = {"failure_code": "HTTP_503", "failure_detail": detail}
    stored = [ParkedItemFactory(integration=integration, status="dlq", **cause) for _ in range(3)]
    older = [
        ParkedItemFactory(
            integration=integration, status="failed", stored_fingerprint=False, **cause
        )
        for _ in range(2)
    ]
    urgent = ParkedItemFactory(
        integration=integration, status="dlq", payload={"booking_id": soon.pk}, **cause
    )

    groups = inbox.failure_groups()
    assert len(groups) == 1
    group = groups[0]
    assert (group.count, group.stored_count, len(group.entries)) == (6, 4, 2)
    assert (group.impact.score, group.impact.reason) == (
        100,
        f"booking {soon.pk} starts within 24 hours",
    )
    assert sorted(group.source_ids()) == sorted(i.pk for i in [*stored, *older, urgent])
    body = viewer_client.get(FAILURES, {"fingerprint": group.fingerprint}).json()
    assert body["count"] == 6
    assert body["items"][0]["source_id"] == urgent.pk
    assert {i["source_id"] for i in body["items"]} == set(group.source_ids())
    assert body["sample_ids"][0] == urgent.pk


@pytest.mark.django_db
def test_the_inbox_groups_stored_fingerprints_in_sql_not_row_by_row(
    integration, django_assert_max_num_queries
):
    for n in range(60):
        ParkedItemFactory(
            integration=integration,
            status="dlq",
            failure_code="HTTP_503",
            failure_detail=f"HTTP 503: try {n}",
        )
        ParkedItemFactory(
            integration=integration,
            status="failed",
            failure_code="HTTP_400",
            failure_detail=f"bad field {n}",
        )
    with django_assert_max_num_queries(20):
        groups = inbox.failure_groups()
        listed = [group.as_dict() for group in groups]
    assert sorted(g["count"] for g in listed) == [60, 60]
    assert all(len(g["sample_ids"]) == 5 for g in listed)
