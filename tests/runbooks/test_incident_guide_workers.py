"""docs/runbooks/incident-response.md, the guide's workers walked in the browser: the worker
readyz names is found from the overview, what fails it is fixed, and only that worker is
run again until readyz reads ready; a failed job (a parked fulfilment) is re-run from its
page and goes out once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bookings.models import CatalogChange, Fulfillment
from bookings.services import fulfilment as fulfilment_services
from bookings.services.catalog import catalog_change_schedule
from bookings.workers import CatalogScheduler, FulfillmentProcessor
from notifications.models import Notification
from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.monitoring.health import readiness
from recovery.workers import DlqSweeper
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.opsconsole.factories import UserFactory
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.workers import run_queued_tasks, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_failing_catalog_scheduler_is_found_from_readyz_fixed_and_run_again(page, live_server):
    support_staff()
    run_worker(DlqSweeper)  # another worker, which the restart must leave alone
    court = ResourceFactory(name="Court 5")
    guest = UserFactory(username="guest", groups=["Booking client"])
    booking = BookingFactory(customer=guest, resource=court, hour=10)
    change = catalog_change_schedule(
        resource_id=court.pk,
        kind="close",
        apply_at=timezone.now(),
        actor="merchandising",
        reason="floor resurfacing",
    )
    for _ in range(3):  # the schedule's runs while the change cannot apply
        run_worker(CatalogScheduler)
    assert readiness()["components"]["catalog_scheduler"]["status"] == "error"
    sweeper_runs = WorkerStatus.objects.get(name="dlq_sweeper").runs_total
    walk = Walk(page, live_server.url, "incident-guide-workers")

    walk.log_in(OPERATOR)
    attention = page.get_by_test_id("attention-component-catalog_scheduler")
    expect(attention).to_contain_text("error")
    walk.shot("overview-names-the-worker")
    walk.link("catalog_scheduler", within=attention)
    expect(page.locator(".fieldBox.field-consecutive_failures")).to_contain_text("3")
    expect(
        page.locator(".form-row.field-last_error, .fieldBox.field-last_error").first
    ).to_contain_text("LIVE_BOOKINGS")
    walk.shot("worker-page")

    # What fails it: the change refused while a booking is still to come.
    walk.link("Catalog changes")
    row = page.locator("#result_list tbody tr", has_text="Court 5")
    expect(row).to_contain_text("LIVE_BOOKINGS")
    expect(row).to_contain_text(str(booking.pk))
    walk.link(str(change.pk), within=page.locator("#result_list"))
    walk.shot("failing-change")
    walk.tool("cancel")
    walk.shot("cancel-confirmation")
    assert "Cancel catalog changes: 1 row done." in walk.confirm("Resurfacing moved to March")

    # Only that worker runs again.
    walk.link("Worker statuses")
    walk.link("catalog_scheduler")
    walk.tool("run_workers_now")
    assert "Run workers now: 1 row done." in walk.confirm("The failing change is cancelled")
    run_queued_tasks("opsconsole.workers.run")
    walk.open("/admin/")
    expect(page.get_by_test_id("attention-component-catalog_scheduler")).to_have_count(0)
    page.get_by_test_id("readiness-details").locator("summary").click()
    expect(page.get_by_test_id("readiness-catalog_scheduler")).to_contain_text("ready")
    walk.shot("ready-again")

    assert readiness()["components"]["catalog_scheduler"]["status"] == "ready"
    assert WorkerStatus.objects.get(name="catalog_scheduler").consecutive_failures == 0
    assert WorkerStatus.objects.get(name="dlq_sweeper").runs_total == sweeper_runs
    change.refresh_from_db()
    assert change.status == CatalogChange.Status.CANCELLED
    cancelled = AuditEvent.objects.get(event="booking.catalog_change.cancelled")
    assert (cancelled.actor, cancelled.reason) == (OPERATOR, "Resurfacing moved to March")

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/bookings/catalogchange/",
            f"/admin/bookings/catalogchange/{change.pk}/change/",
        ],
        refused=[
            "/admin/bookings/catalogchange/add/",
            f"/admin/bookings/catalogchange/{change.pk}/act/retry/",
        ],
    )


def test_a_parked_fulfilment_is_re_run_from_its_page_and_goes_out_once(
    page, live_server, monkeypatch, settings
):
    support_staff()
    settings.FULFILLMENT_MAX_ATTEMPTS = 1
    customer = UserFactory(username="mia", groups=["Booking client"])
    booking = BookingFactory(customer=customer, resource=ResourceFactory(), paid=Decimal("30"))

    def mail_queue_down(**kwargs):
        raise ConnectionError("mail queue unavailable")

    monkeypatch.setattr(fulfilment_services, "notification_enqueue", mail_queue_down)
    run_worker(FulfillmentProcessor)
    monkeypatch.undo()
    fulfillment = Fulfillment.objects.get(booking=booking)
    assert fulfillment.status == Fulfillment.Status.PARKED
    walk = Walk(page, live_server.url, "incident-guide-rerun")

    walk.log_in(OPERATOR)
    walk.link("Fulfillments")
    walk.link("Parked")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("ConnectionError")
    walk.link(str(fulfillment.pk), within=page.locator("#result_list"))
    expect(page.locator(".field-last_error")).to_contain_text("mail queue unavailable")
    walk.shot("parked-fulfilment")
    walk.tool("retry")
    assert "Retry fulfilments: 1 row done." in walk.confirm("Mail queue back (INC-31)")
    run_worker(FulfillmentProcessor)  # the processor's next scheduled run
    page.reload()
    expect(page.locator(".field-status")).to_contain_text("Fulfilled")
    expect(page.get_by_test_id("object-tool-retry")).to_have_count(0)
    walk.shot("fulfilled")

    assert Notification.objects.filter(template="booking_fulfilled").count() == 1
    requeued = AuditEvent.objects.get(event="booking.fulfillment.requeued")
    assert (requeued.actor, requeued.reason) == (OPERATOR, "Mail queue back (INC-31)")
    # The operator reads the entry code (to give it at the desk); a viewer never does.
    fulfillment.refresh_from_db()
    expect(page.locator(".field-entry_code")).to_contain_text(fulfillment.entry_code)

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/bookings/fulfillment/",
            f"/admin/bookings/fulfillment/{fulfillment.pk}/change/",
        ],
        refused=[f"/admin/bookings/fulfillment/{fulfillment.pk}/act/retry/"],
    )
    walk.open(f"/admin/bookings/fulfillment/{fulfillment.pk}/change/")
    expect(page.locator("#content")).not_to_contain_text(fulfillment.entry_code)
