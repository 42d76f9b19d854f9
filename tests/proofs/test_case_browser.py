"""A real incident, worked from the customer's case in a real browser."""

from __future__ import annotations

import pytest

from bookings.models import Booking
from opsconsole.models import AuditEvent
from payments.models import WebhookFailure
from tests.bookings.factories import BookingFactory
from tests.opsconsole.factories import UserFactory
from tests.payments.providers import SECRET
from tests.proofs.test_browser import log_in, staff
from tests.recovery.case_world import webhook_fails_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_paid_customer_without_a_booking_is_fixed_from_their_case(
    page, live_server, client, settings
):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    customer = UserFactory(username="maria", email="maria@example.test", groups=["Booking client"])
    booking = BookingFactory(customer=customer)
    # The card payment succeeds at Stripe; its webhook fails (the booking's row was locked).
    webhook_fails_for(client, booking)
    failure = WebhookFailure.objects.get()
    assert Booking.objects.get(pk=booking.pk).payment_status == "UNPAID"

    # The customer complains: "I was charged but have no booking".
    staff("opal", "Support operator")
    log_in(page, live_server, "opal")
    page.goto(f"{live_server.url}/admin/cases/")
    page.fill("#id_q", "Maria@Example.test")
    page.click("input[type=submit][value=Search]")
    page.locator("[data-testid=case-matches] a").first.click()
    page.wait_for_selector("[data-testid=case-timeline]")
    assert "webhook failed" in page.locator("[data-testid=case-warning]").inner_text()
    row = page.locator(f"[data-testid=case-failure-webhook_failure-{failure.pk}]")
    assert "payment_intent.succeeded" in row.inner_text()

    replay = row.locator("form", has=page.locator("input[value=replay]"))
    replay.get_by_label("Reason (recorded in the audit log):").fill(
        "Customer called: charged, no booking"
    )
    replay.locator("input[type=submit]").click()
    page.wait_for_selector(".messagelist")
    assert "reprocessed" in page.locator(".messagelist").inner_text()

    assert Booking.objects.get(pk=booking.pk).payment_status == "PAID"
    assert page.locator("[data-testid=case-warning]").count() == 0
    assert page.locator(f"[data-testid=case-failure-webhook_failure-{failure.pk}]").count() == 0
    replayed = AuditEvent.objects.get(event="case.failure.replayed")
    assert (replayed.actor, replayed.reason) == ("opal", "Customer called: charged, no booking")
    assert AuditEvent.objects.filter(event="case.opened", actor="opal").count() == 2
