"""docs/runbooks/station-redeem-anomalies.md, walked in the browser: a station refused a
valid voucher because of its scope; the operator finds the refusal in the failure inbox,
widens the voucher's station scope on its page with a reason, and replays the redemption;
and a voucher replaced for a customer, its new code reached from the message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from opsconsole.models import AuditEvent
from payments.models import Voucher, VoucherRedemptionFailure
from payments.vouchers import StationScopeMismatch, voucher_issue, voucher_redeem
from recovery.models import BulkAction
from recovery.workers import BulkActionWorker
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_scope_refusal_is_fixed_on_the_vouchers_page_and_replayed(page, live_server):
    support_staff()
    # Issued for the Lisbon stations only; the customer came to Porto's, which was opened
    # after the voucher was scoped.
    voucher = voucher_issue(description="Spa day", value=Decimal("40"), station_scope="lis-1")
    with pytest.raises(StationScopeMismatch):
        voucher_redeem(code=voucher.code, station_id="opo-1", actor="station:opo-1")
    refusal = VoucherRedemptionFailure.objects.get()
    walk = Walk(page, live_server.url, "station-redeem-anomalies")

    walk.log_in(OPERATOR)
    walk.link("Failure inbox")
    group = page.get_by_test_id("failure-group")
    expect(group).to_contain_text("station opo-1")
    walk.shot("failure-inbox")
    walk.link("PAY-403-STATION-SCOPE-MISMATCH")
    walk.shot("group")
    walk.link(f"#{refusal.pk}")
    walk.shot("refusal-page")
    # The refusal's page links its voucher (shown by its code to an operator).
    walk.link(str(voucher))
    scope = page.get_by_label("Station scope:")
    expect(scope).to_have_value("lis-1")
    scope.fill("lis-1,opo-1")
    page.get_by_label("Reason:").fill("Porto station opened after the voucher was scoped")
    walk.shot("voucher-rescope")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "was changed successfully" in walk.message()
    walk.shot("rescoped")

    walk.link("Failure inbox")
    walk.link("PAY-403-STATION-SCOPE-MISMATCH")
    form = page.get_by_test_id("bulk-replay-form")
    form.get_by_label("Reason:").fill("Scope fixed; redeem as the station asked")
    form.get_by_role("button", name="Dry run a bulk replay of this item").click()
    assert "1 item would be replayed" in walk.message()
    walk.shot("dry-run")
    walk.tool("start")
    assert "Start bulk actions: 1 row done." in walk.confirm("Redeem at opo-1")
    walk.shot("started")
    run_worker(BulkActionWorker, max_seconds=5)
    page.reload()
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "completed")
    walk.shot("replayed")

    voucher.refresh_from_db()
    assert (voucher.status, voucher.redeemed_station) == (Voucher.Status.REDEEMED, "opo-1")
    assert BulkAction.objects.get().replayed == 1
    rescoped = AuditEvent.objects.get(event="payments.voucher.rescoped")
    assert (rescoped.actor, rescoped.reason) == (
        OPERATOR,
        "Porto station opened after the voucher was scoped",
    )
    assert (rescoped.before_state["station_scope"], rescoped.after_state["station_scope"]) == (
        "lis-1",
        "lis-1,opo-1",
    )
    redeemed = AuditEvent.objects.get(event="payments.voucher.redeemed")
    assert redeemed.metadata == {"station_id": "opo-1"}
    walk.link("Failure inbox")
    expect(page.get_by_test_id("failure-group")).to_have_count(0)

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/failures/",
            f"/admin/payments/voucherredemptionfailure/{refusal.pk}/change/",
            f"/admin/payments/voucher/{voucher.pk}/change/",
        ],
        refused=[
            f"/admin/payments/voucher/{voucher.pk}/act/void_vouchers/",
            f"/admin/payments/voucher/{voucher.pk}/act/replace_vouchers/",
        ],
    )


def test_a_customer_owed_a_voucher_gets_a_replacement_whose_page_the_message_links(
    page, live_server
):
    support_staff()
    voucher = voucher_issue(description="Spa day", value=Decimal("40"), station_scope="lis-1")
    walk = Walk(page, live_server.url, "station-redeem-anomalies-replacement")

    walk.log_in(OPERATOR)
    walk.open(f"/admin/payments/voucher/{voucher.pk}/change/")
    walk.tool("replace_vouchers")
    message = walk.confirm("Customer's voucher was taken by a wrong redemption")
    replacement = Voucher.objects.get(replaces=voucher)
    assert f"#{voucher.pk}: replaced by voucher #{replacement.pk} (40.00 EUR)" in message
    walk.shot("replaced")
    walk.link(f"voucher #{replacement.pk}", within=page.locator("ul.messagelist"))
    expect(page).to_have_url(f"{live_server.url}/admin/payments/voucher/{replacement.pk}/change/")
    expect(page.locator("#content")).to_contain_text(replacement.code)
    walk.shot("replacement-page")
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.VOID
