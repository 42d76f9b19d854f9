from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.services import booking_cancel
from opsconsole.failures import failure_sources, fingerprints
from opsconsole.models import AuditEvent
from payments.models import Payment
from recovery.inbox import groups as inbox
from recovery.inbox.bulk_actions import bulk_action_create, bulk_action_run, bulk_action_transition
from recovery.models import BulkAction, BulkActionItem, FailureResolution, RecoveryItem
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import error_of
from tests.notifications.factories import dead_email
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import failed_refund
from tests.recovery.factories import ParkedItemFactory, QueuedItemFactory
from tests.workers import deliver

FAILURES = "/api/v1/failures"


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
    assert "Dry run a bulk replay of these 2 items" in detail.content.decode()
    # Titled by what failed, with counts that read right.
    assert detail.context["title"].startswith("recovery · integration_delivery: ")
    assert "HTTP_503" in detail.context["title"]
    assert "2 open integration_delivery failures" in detail.content.decode()
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
    assert "1 open integration_delivery failure</strong>" in detail.content.decode()
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


@pytest.mark.django_db
def test_the_worker_stores_the_fingerprint_the_inbox_groups_by(integration, httpserver):
    httpserver.expect_request("/hooks/crm").respond_with_data("bad field 4411", status=400)
    item = QueuedItemFactory(integration=integration, payload={"booking": 3})
    deliver()
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
def test_the_inbox_groups_stored_fingerprints_in_sql_not_row_by_row(integration):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def park(rows: int) -> None:
        for n in range(rows):
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

    def read() -> tuple[list[dict], int]:
        with CaptureQueriesContext(connection) as queries:
            listed = [group.as_dict() for group in inbox.failure_groups()]
        return listed, len(queries)

    park(30)
    listed, queries_at_30 = read()
    assert sorted(g["count"] for g in listed) == [30, 30]
    park(30)
    listed, queries_at_60 = read()
    assert sorted(g["count"] for g in listed) == [60, 60]
    assert all(len(g["sample_ids"]) == 5 for g in listed)
    assert queries_at_60 == queries_at_30 <= 30  # a few per group, none per row


@pytest.mark.django_db
def test_one_group_is_read_alone_with_its_own_counts(integration):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recovery.inbox.groups import failure_group, failure_groups

    for code in ("HTTP_503", "HTTP_503", "HTTP_400"):
        ParkedItemFactory(integration=integration, status="dlq", failure_code=code)
    by_code = {group.failure_code: group for group in failure_groups()}
    with CaptureQueriesContext(connection) as queries:
        busy = failure_group(by_code["HTTP_503"].fingerprint)
    assert (busy.failure_code, busy.count) == ("HTTP_503", 2)
    counted = [q["sql"] for q in queries if "COUNT(" in q["sql"] and "recoveryitem" in q["sql"]]
    assert counted and all(by_code["HTTP_503"].fingerprint in sql for sql in counted)
    assert failure_group(by_code["HTTP_400"].fingerprint).count == 1
    assert failure_group("0" * 64) is None


@pytest.mark.django_db
def test_the_dry_runs_page_offers_start_and_starting_runs_it(integration, admin_client):
    """The dry run says "press Start", and the bulk action's page has that button."""
    import re

    from tests.admin_forms.form_filler import filled, form_controls

    for _ in range(2):
        ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    [group] = admin_client.get("/admin/failures/").context["groups"]
    detail = admin_client.get(f"/admin/failures/{group['fingerprint']}/").content.decode()
    form = filled(
        form_controls(detail, "bulk-replay"), {"reason": "provider fixed", "rate_per_second": "5"}
    )
    page = admin_client.post(f"/admin/failures/{group['fingerprint']}/", form, follow=True)
    said = [m.message for m in page.context["messages"]]
    action_id = BulkAction.objects.get().pk
    assert said == [
        f"Dry run #{action_id}: 2 items would be replayed, 0 items resolved. Review it below, "
        "then press Start."
    ]
    html = page.content.decode()
    assert "object-tool-approve" not in html  # no money moves: nobody needs to approve
    start = re.search(r'href="([^"]+)" data-testid="object-tool-start">Start…<', html).group(1)
    confirm = admin_client.get(start).content.decode()
    data = filled(form_controls(confirm, "confirm-with-reason"), {"reason": "go"})
    admin_client.post(start, data)
    assert BulkAction.objects.get().status == "running"
