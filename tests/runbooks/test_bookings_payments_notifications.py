"""docs/runbooks/bookings-payments-notifications.md, walked in the browser: a refund owed
offline settled on its page, a failed Stripe webhook reprocessed from its page, and a
dead-lettered email replayed from its failure inbox group."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from bookings.services import booking_offline_payment_record
from bookings.services.cancellation import booking_cancel
from notifications.models import Notification, NotificationAttempt
from notifications.workers import NotificationDeliveryWorker
from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession, Payment, Refund, WebhookFailure
from payments.webhooks import stripe_event_process
from payments.workers import StripeEventRetryWorker
from recovery.models import BulkAction
from recovery.workers import BulkActionWorker
from tests.bookings.factories import BookingFactory
from tests.notifications.factories import dead_email
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def owed_refund(customer, operator, hour: int) -> Refund:
    """A booking paid in cash at the desk, then cancelled by the customer: its refund is
    owed until staff pay it out."""
    booking = BookingFactory(customer=customer, hour=hour)
    booking_offline_payment_record(
        booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=operator
    )
    assert booking_cancel(booking_id=booking.pk, actor=customer, reason="ill").refund_owed
    return Refund.objects.get(payment__subject=f"booking:{booking.pk}")


def test_a_refund_owed_offline_is_settled_on_its_page(page, live_server):
    operator, _ = support_staff()
    customer = UserFactory(username="carla", groups=["Booking client"])
    refund = owed_refund(customer, operator, hour=10)
    other = owed_refund(customer, operator, hour=14)  # still owed, for the viewer to read
    paid = timezone.localtime(timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    walk = Walk(page, live_server.url, "bookings-payments-notifications-offline-refund")

    # Admin → Refunds → filter Owed → the refund.
    walk.log_in(OPERATOR)
    walk.link("Refunds")
    walk.link("Owed")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    walk.shot("owed-refunds")
    walk.link(str(refund.pk), within=page.locator("#result_list"))
    walk.shot("refund-page")
    # The customer's reason is named apart from the operator's reason for the change.
    expect(page.locator(".field-refund_reason label")).to_have_text("Why the refund was requested:")
    # An incomplete payout shows its error on the field, and nothing is written.
    page.get_by_label("Payout reference:").fill("till 2, receipt 881")
    page.get_by_label("Reason:").fill("Paid back at the desk")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator("#id_payout_method_error")).to_contain_text("One of cash")
    expect(page.locator("#id_paid_out_at_error")).to_contain_text("When was it paid out?")
    walk.shot("payout-incomplete")
    page.get_by_label("Payout method:").select_option(label="Cash")
    page.get_by_label("Paid out at:").fill(f"{paid:%Y-%m-%d %H:%M}")
    walk.shot("payout-form")
    page.get_by_role("button", name="Save and continue editing").click()
    saved = walk.message()
    assert "was changed successfully" in saved
    assert "(COMPLETED)" in saved and "(OWED)" not in saved
    walk.shot("settled")

    refund.refresh_from_db()
    assert (refund.status, refund.payout_method, refund.payout_reference) == (
        Refund.Status.COMPLETED,
        "cash",
        "till 2, receipt 881",
    )
    assert (refund.paid_out_by, refund.paid_out_at) == (OPERATOR, paid)
    assert refund.payment.amount_refunded == Decimal("25.00")
    settled = AuditEvent.objects.get(event="payments.refund.settled_offline")
    assert (settled.actor, settled.reason) == (OPERATOR, "Paid back at the desk")
    assert (settled.before_state["status"], settled.after_state["status"]) == ("OWED", "COMPLETED")
    # The settled refund's page has no form left to fill, and the customer's reason is
    # named as theirs (no bare "Reason" beside the payout).
    expect(page.get_by_label("Payout method:")).to_have_count(0)
    expect(page.locator(".field-reason")).to_have_count(0)
    expect(page.locator(".field-refund_reason")).to_contain_text("Why the refund was requested")

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/payments/refund/?status__exact=OWED",
            f"/admin/payments/refund/{other.pk}/change/",
            f"/admin/payments/refund/{refund.pk}/change/",
        ],
        refused=[],
    )
    # The viewer's owed refund offers no payout form.
    walk.open(f"/admin/payments/refund/{other.pk}/change/")
    expect(page.get_by_label("Payout method:")).to_have_count(0)


def checkout_completed(event_id: str, reference: str) -> dict:
    return {
        "id": event_id,
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_9", "client_reference_id": reference}},
    }


def test_a_failed_stripe_webhook_is_reprocessed_from_its_page(page, live_server):
    support_staff()
    # Stripe's checkout.session.completed arrived before the console knew the session, and
    # the retry worker's hour of retries passed without it: kept for a person. The session
    # is there now.
    stripe_event_process(event=checkout_completed("evt_late_1", "hcs_late"))
    for minutes in (2, 5, 10, 20, 40, 80, 160):
        with time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False):
            run_worker(StripeEventRetryWorker)
    failure = WebhookFailure.objects.get()
    assert failure.status == WebhookFailure.Status.PENDING_MANUAL
    session = HostedSessionFactory(reference="hcs_late")
    walk = Walk(page, live_server.url, "bookings-payments-notifications-webhook")

    walk.log_in(OPERATOR)
    walk.link("Webhook failures")
    walk.shot("webhook-failures")
    walk.link("evt_late_1")
    expect(page.get_by_test_id("object-tool-reprocess_failures")).to_have_text(
        "Reprocess webhook events…"
    )
    walk.shot("failure-page")
    walk.tool("reprocess_failures")
    walk.shot("reprocess-confirmation")
    done = walk.confirm("Session hcs_late created since; process the payment")
    assert "Reprocess webhook events: 1 row done." in done
    walk.shot("reprocessed")

    failure.refresh_from_db()
    assert (failure.status, failure.resolved_by) == (WebhookFailure.Status.REPROCESSED, OPERATOR)
    session.refresh_from_db()
    assert session.status == HostedCheckoutSession.Status.COMPLETED
    event = AuditEvent.objects.get(event="payments.webhook_failure.reprocessed")
    assert (event.actor, event.reason) == (
        OPERATOR,
        "Session hcs_late created since; process the payment",
    )
    assert not Payment.objects.exists()  # a checkout's completion, not a new payment

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/payments/webhookfailure/",
            f"/admin/payments/webhookfailure/{failure.pk}/change/",
        ],
        refused=[f"/admin/payments/webhookfailure/{failure.pk}/act/reprocess_failures/"],
    )


def test_a_dead_email_is_replayed_from_its_failure_inbox_group(page, live_server):
    support_staff()
    email = dead_email("http_503: Resend is down")
    NotificationAttempt.objects.create(
        notification=email,
        attempt_number=1,
        succeeded=False,
        http_status=503,
        error="http_503: Resend is down",
        response_body="service unavailable",
    )
    walk = Walk(page, live_server.url, "bookings-payments-notifications-email")

    # Notifications → By status: Dead → the notification, its attempts and error.
    walk.log_in(OPERATOR)
    # The sidebar's model link (the app's caption reads "Notifications" too).
    walk.link("Notifications", within=page.locator("#nav-sidebar tr.model-notification"))
    walk.link("Dead")
    walk.link(str(email.pk), within=page.locator("#result_list"))
    expect(page.locator(".field-last_error")).to_contain_text("http_503")
    # Every attempt, with its HTTP status, error and response.
    attempt = page.locator("#attempt_log-group tbody tr.has_original")
    expect(attempt.locator(".field-http_status")).to_have_text("503")
    expect(attempt).to_contain_text("service unavailable")
    walk.shot("dead-notification")
    notification_page = page.url

    # The group: Failure inbox → its group → a dry run → Start on the bulk action's page.
    walk.link("Failure inbox")
    expect(page.get_by_test_id("failure-group")).to_contain_text("a customer message")
    walk.shot("failure-inbox")
    walk.link("http_503")
    walk.shot("group")
    form = page.get_by_test_id("bulk-replay-form")
    form.get_by_label("Reason:").fill("Resend is back (status page green)")
    form.get_by_role("button", name="Dry run a bulk replay of this item").click()
    assert "1 item would be replayed" in walk.message()
    walk.shot("dry-run")
    walk.tool("start")
    assert "Start bulk actions: 1 row done." in walk.confirm("Send the receipt again")
    run_worker(BulkActionWorker, max_seconds=5)
    page.reload()
    expect(page.get_by_test_id("bulk-live")).to_have_attribute("data-status", "completed")
    walk.shot("replayed")
    email.refresh_from_db()
    assert email.status == Notification.Status.PENDING
    assert run_worker(NotificationDeliveryWorker).outcomes == {"sent": 1}
    page.goto(notification_page)
    expect(page.locator(".field-status")).to_contain_text("Sent")
    walk.shot("sent")

    email.refresh_from_db()
    assert email.status == Notification.Status.SENT
    requeued = AuditEvent.objects.get(event="notifications.notification.requeued")
    assert (requeued.actor, requeued.reason) == (
        f"bulk_action:{BulkAction.objects.get().pk} ({OPERATOR})",
        "Resend is back (status page green)",
    )
    started = AuditEvent.objects.get(event="recovery.bulk_action.start")
    assert (started.actor, started.reason) == (OPERATOR, "Send the receipt again")
    walk.link("Failure inbox")
    expect(page.get_by_test_id("failure-group")).to_have_count(0)

    action = BulkAction.objects.get()
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/failures/",
            f"/admin/notifications/notification/{email.pk}/change/",
            f"/admin/recovery/bulkaction/{action.pk}/change/",
        ],
        refused=[
            f"/admin/notifications/notification/{email.pk}/act/requeue_dead/",
            f"/admin/recovery/bulkaction/{action.pk}/act/abort/",
        ],
    )
