"""docs/runbooks/bookings-payments-notifications.md, the sections that need a decision,
walked in the browser: a cancellation stuck in CANCELLING completed or restored on the
booking's page; a refund that failed at Stripe and a payment received for nothing, each
replayed from its failure inbox group by one operator and approved by a second."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from bookings.errors import CancellationFailed
from bookings.models import Booking, BookingHold, RefundFailure
from bookings.services.cancellation import booking_cancel
from opsconsole.models import AuditEvent
from payments.models import Payment, Refund
from payments.refunds import payment_record, refund_request
from payments.webhooks import stripe_event_process
from recovery.models import BulkAction
from recovery.workers import BulkActionWorker
from tests.bookings.factories import BookingFactory
from tests.opsconsole.factories import UserFactory
from tests.runbooks.walk import (
    OPERATOR,
    Walk,
    staff,
    support_staff,
    viewer_reads_but_acts_on_nothing,
)
from tests.workers import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The second operator, who approves what the first one asked for when money moves.
APPROVER = "otto"


@pytest.fixture
def stripe(httpserver, settings):
    """Stripe's refund API stood in for by a local HTTP server (down until told otherwise)."""
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    return httpserver


def stripe_down(stripe) -> None:
    stripe.clear_all_handlers()
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is down"}}, status=500
    )


def stripe_up(stripe, refund_id: str) -> None:
    stripe.clear_all_handlers()
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"id": refund_id, "object": "refund", "status": "succeeded"}
    )


def customer() -> User:
    return UserFactory(username="carla", groups=["Booking client"])


def stuck_cancellation(carla: User, hour: int) -> Booking:
    """A card-paid booking whose cancellation failed at the refund step (Stripe down)."""
    booking = BookingFactory(customer=carla, hour=hour, paid=Decimal("60.00"))
    with pytest.raises(CancellationFailed):
        booking_cancel(booking_id=booking.pk, actor=carla, reason="ill")
    booking.refresh_from_db()
    assert (booking.status, booking.cancellation_step) == ("CANCELLING", "process_refund")
    return booking


def test_a_stuck_cancellation_is_completed_or_restored_on_the_bookings_page(
    page, live_server, stripe
):
    support_staff()
    stripe_down(stripe)
    carla = customer()
    to_complete = stuck_cancellation(carla, hour=9)
    to_restore = stuck_cancellation(carla, hour=11)
    still_stuck = stuck_cancellation(carla, hour=15)  # for the viewer to read
    walk = Walk(page, live_server.url, "bookings-payments-notifications-stuck-cancellation")

    # Admin → Bookings → By needs review: Stuck in CANCELLING → the booking.
    walk.log_in(OPERATOR)
    walk.link("Bookings", within=page.locator("#nav-sidebar tr.model-booking"))
    walk.link("Stuck in CANCELLING")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    walk.shot("stuck-bookings")
    walk.link(str(to_complete.pk), within=page.locator("#result_list"))
    expect(page.locator(".field-cancellation_step")).to_contain_text("process_refund")
    expect(page.locator(".field-cancellation_error")).to_contain_text("Stripe is down")
    failures = page.locator("#refund_failures-group")
    expect(failures).to_contain_text("Pending Manual")
    walk.shot("stuck-booking")
    expect(page.get_by_test_id("object-tool-resolve_complete")).to_have_text(
        "Complete cancellations…"
    )
    walk.tool("resolve_complete")
    walk.shot("complete-confirmation")
    done = walk.confirm("Customer ill; refund paid by hand at the desk")
    assert "Complete cancellations: 1 row done." in done
    walk.shot("completed")
    expect(page.locator("div.form-row.field-status")).to_contain_text("Cancelled")
    expect(failures).to_contain_text("Resolved")

    # The other one: restored, keeping its slot.
    walk.link("Bookings", within=page.locator("#nav-sidebar tr.model-booking"))
    walk.link("Stuck in CANCELLING")
    walk.link(str(to_restore.pk), within=page.locator("#result_list"))
    expect(page.get_by_test_id("object-tool-resolve_restore")).to_have_text("Restore bookings…")
    walk.tool("resolve_restore")
    done = walk.confirm("Customer changed their mind; keep the booking")
    assert "Restore bookings: 1 row done." in done
    expect(page.locator("div.form-row.field-status")).to_contain_text("Confirmed")
    walk.shot("restored")

    to_complete.refresh_from_db()
    to_restore.refresh_from_db()
    assert (to_complete.status, to_restore.status) == ("CANCELLED", "CONFIRMED")
    assert not BookingHold.objects.get(pk=to_complete.hold_id).occupies_slot
    assert BookingHold.objects.get(pk=to_restore.hold_id).occupies_slot
    resolved = RefundFailure.objects.get(booking=to_complete)
    assert (resolved.status, resolved.resolved_by) == (RefundFailure.Status.RESOLVED, OPERATOR)
    events = {
        event.object_id: event
        for event in AuditEvent.objects.filter(event="booking.cancellation_resolved")
    }
    assert (events[str(to_complete.pk)].actor, events[str(to_complete.pk)].metadata) == (
        OPERATOR,
        {"resolution": "complete"},
    )
    assert events[str(to_restore.pk)].reason == "Customer changed their mind; keep the booking"
    assert events[str(to_restore.pk)].metadata == {"resolution": "restore"}

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/bookings/booking/?review=cancelling",
            f"/admin/bookings/booking/{still_stuck.pk}/change/",
        ],
        refused=[
            f"/admin/bookings/booking/{still_stuck.pk}/act/resolve_complete/",
            f"/admin/bookings/booking/{still_stuck.pk}/act/resolve_restore/",
            f"/admin/bookings/booking/{to_restore.pk}/act/cancel/",
        ],
    )
    # The viewer reads the refund failures below the booking too, and can change none.
    walk.open(f"/admin/bookings/booking/{still_stuck.pk}/change/")
    expect(failures).to_contain_text("Stripe is down")
    expect(failures.locator("input:not([type=hidden]), textarea, select")).to_have_count(0)
    walk.shot("viewer-refund-failures")


def dry_run_from_the_inbox(walk: Walk, failure_code: str, reason: str) -> BulkAction:
    """Failure inbox → the group → Reason → Dry run: the bulk action's page, awaiting a
    second operator because money moves."""
    page = walk.page
    walk.link("Failure inbox")
    walk.shot("failure-inbox")
    walk.link(failure_code)
    walk.shot("group")
    form = page.get_by_test_id("bulk-replay-form")
    form.get_by_label("Reason:").fill(reason)
    form.get_by_role("button", name="Dry run a bulk replay of this item").click()
    answer = walk.message()
    assert "1 item would be replayed" in answer
    assert "a second operator presses Approve, and Start runs it." in answer
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "awaiting_approval")
    walk.shot("dry-run")
    action = BulkAction.objects.get()
    assert (action.moves_money, action.created_by) == (True, OPERATOR)
    # The one who asked cannot approve it.
    walk.tool("approve")
    refused = walk.confirm("I approve my own")
    assert "must be approved by a different operator" in refused
    assert "Approve bulk actions: nothing was done, for the reason said above." in refused
    walk.shot("own-approval-refused")
    return action


def approved_and_started(walk: Walk, action: BulkAction) -> None:
    """A second operator: Admin → Bulk actions → the action → Approve… → Start…, and the
    worker runs it."""
    page = walk.page
    walk.log_in(APPROVER)
    walk.link("Bulk actions")
    walk.link(str(action.pk), within=page.locator("#result_list"))
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "awaiting_approval")
    walk.shot("approver-opens")
    walk.tool("approve")
    assert "Approve bulk actions: 1 row done." in walk.confirm("Checked the dry run: refund it")
    walk.shot("approved")
    walk.tool("start")
    assert "Start bulk actions: 1 row done." in walk.confirm("Stripe answers again")
    run_worker(BulkActionWorker, max_seconds=5)
    page.reload()
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "completed")
    walk.shot("replayed")
    action.refresh_from_db()
    assert (action.approved_by, action.replayed) == (APPROVER, 1)
    approve = AuditEvent.objects.get(event="recovery.bulk_action.approve")
    assert (approve.actor, approve.reason) == (APPROVER, "Checked the dry run: refund it")
    start = AuditEvent.objects.get(event="recovery.bulk_action.start")
    assert (start.actor, start.reason) == (APPROVER, "Stripe answers again")
    walk.link("Failure inbox")
    expect(page.get_by_test_id("failure-group")).to_have_count(0)
    walk.shot("inbox-empty")


def viewer_reads_the_replay(walk: Walk, action: BulkAction, record_page: str) -> None:
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=["/admin/failures/", record_page, f"/admin/recovery/bulkaction/{action.pk}/change/"],
        refused=[
            f"/admin/recovery/bulkaction/{action.pk}/act/approve/",
            f"/admin/recovery/bulkaction/{action.pk}/act/start/",
        ],
    )


def test_a_refund_that_failed_at_stripe_is_replayed_with_a_second_operators_approval(
    page, live_server, stripe, settings
):
    support_staff()
    staff(APPROVER, "Support operator")
    # A goodwill refund of a card payment; Stripe is down and the retries are spent (one
    # attempt allowed here, so the first failure is the last).
    settings.REFUND_MAX_ATTEMPTS = 1
    stripe_down(stripe)
    payment = payment_record(
        reference="pay_gift_7",
        subject="gift:7",
        amount=Decimal("45.00"),
        currency="EUR",
        method="card",
        provider_payment_id="pi_gift_7",
    )
    refund = refund_request(
        payment_id=payment.pk, amount=Decimal("45.00"), reason="gift returned", actor="carla"
    )
    assert (refund.status, refund.next_retry_at) == (Refund.Status.FAILED, None)
    walk = Walk(page, live_server.url, "bookings-payments-notifications-refund-failed")

    # When: Admin → Refunds, status FAILED, the last error.
    walk.log_in(OPERATOR)
    walk.link("Refunds")
    walk.link("Failed")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".field-last_error")).to_contain_text("http_500")
    walk.shot("failed-refunds")

    action = dry_run_from_the_inbox(walk, "http_500", "Stripe is back; refund the gift")
    stripe_up(stripe, "re_gift_7")
    approved_and_started(walk, action)

    refund.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == (Refund.Status.COMPLETED, "re_gift_7")
    request, _ = stripe.log[-1]
    assert request.headers["Idempotency-Key"] == f"refund:{refund.pk}"  # the same key
    walk.link("Refunds")
    walk.link("Completed")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    walk.shot("refund-completed")

    viewer_reads_the_replay(walk, action, f"/admin/payments/refund/{refund.pk}/change/")


def payment_intent_succeeded(booking: Booking) -> dict:
    return {
        "id": "evt_pi_late",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_late",
                "object": "payment_intent",
                "amount": 3000,
                "amount_received": 3000,
                "currency": "eur",
                "metadata": {"booking_id": str(booking.pk)},
            }
        },
    }


def test_a_payment_received_for_nothing_is_refunded_with_a_second_operators_approval(
    page, live_server, stripe
):
    support_staff()
    staff(APPROVER, "Support operator")
    # The customer cancelled the unpaid booking; the card payment for it arrived after.
    carla = customer()
    booking = BookingFactory(customer=carla, hour=10)
    booking_cancel(booking_id=booking.pk, actor=carla, reason="plans changed")
    stripe_event_process(event=payment_intent_succeeded(booking))
    payment = Payment.objects.get(provider_payment_id="pi_late")
    assert payment.unapplied_reason == f"booking {booking.pk} is CANCELLED"
    walk = Walk(page, live_server.url, "bookings-payments-notifications-unapplied-payment")

    walk.log_in(OPERATOR)
    action = dry_run_from_the_inbox(
        walk, "payment_unapplied", "Booking was cancelled; refund the card"
    )
    stripe_up(stripe, "re_late")
    approved_and_started(walk, action)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    refund = Refund.objects.get(payment=payment)
    assert (refund.status, refund.provider_refund_id) == (Refund.Status.COMPLETED, "re_late")
    walk.link("Payments", within=page.locator("#nav-sidebar tr.model-payment"))
    walk.link(payment.reference)
    expect(page.locator(".field-status")).to_contain_text("Refunded")
    walk.shot("payment-refunded")

    viewer_reads_the_replay(walk, action, f"/admin/payments/payment/{payment.pk}/change/")
