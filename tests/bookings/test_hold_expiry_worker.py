from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from bookings import services
from bookings.models import BookingHold, WaitlistEntry
from bookings.signals import booking_hold_expired
from bookings.workers import BookingHoldExpiryWorker
from notifications.models import CommunicationLog
from opsconsole.models import AuditEvent
from tests.bookings.factories import HoldFactory, ResourceFactory, slot
from tests.opsconsole.factories import UserFactory
from tests.workers import run_queued_tasks, run_worker


@pytest.mark.django_db(transaction=True)
def test_it_releases_expired_holds_and_emits_the_event_on_commit(settings):
    settings.NOTIFICATION_CHANNELS = {}  # sandbox email
    customer = UserFactory(username="late", groups=["Booking client"])
    resource = ResourceFactory()
    hold = HoldFactory(holder=customer, resource=resource, hour=10)
    start, end = slot(10)
    waiting = WaitlistEntry.objects.create(
        resource=resource, email="next@example.test", start_time=start, end_time=end
    )
    received = []

    def on_expired(sender, **event):
        received.append(event["hold_id"])

    booking_hold_expired.connect(on_expired)
    try:
        with time_machine.travel(services.hold_confirm_deadline(hold) + timedelta(seconds=1)):
            summary = run_worker(BookingHoldExpiryWorker)
    finally:
        booking_hold_expired.disconnect(on_expired)
    assert summary.outcomes == {"expired": 1}
    hold.refresh_from_db()
    assert (hold.status, hold.occupies_slot) == ("EXPIRED", False)
    assert hold.released_at is not None
    assert received == [hold.pk]
    assert AuditEvent.objects.get(event="booking.hold.expired").before_state["status"] == "ACTIVE"
    assert run_queued_tasks("bookings.waitlist.waitlist_notify_task") == [1]
    waiting.refresh_from_db()
    assert waiting.status == "NOTIFIED"
    log = CommunicationLog.objects.get(subject_id=str(waiting.pk))
    assert (log.template, log.status) == ("waitlist_slot_available", "sent")
    # The slot is free again.
    services.booking_hold_create(
        resource_id=resource.pk, start_time=start, end_time=end, holder=customer
    )


@pytest.mark.django_db
def test_a_hold_still_in_its_grace_period_is_requeued(customer, resource):
    hold = HoldFactory(holder=customer, resource=resource)
    with time_machine.travel(hold.expires_at + timedelta(seconds=5)):
        assert run_worker(BookingHoldExpiryWorker).outcomes == {"requeued": 1}
        hold.refresh_from_db()
        assert hold.status == "ACTIVE"
        assert hold.next_check_at == services.hold_confirm_deadline(hold)
        assert (
            run_worker(BookingHoldExpiryWorker).claimed == 0
        )  # not due again until the grace period ends
    with time_machine.travel(services.hold_confirm_deadline(hold) + timedelta(seconds=1)):
        assert run_worker(BookingHoldExpiryWorker).outcomes == {"expired": 1}


@pytest.mark.django_db
def test_it_leaves_live_holds_alone_and_is_idempotent(customer, resource):
    live = HoldFactory(holder=customer, resource=resource, hour=9)
    confirmed = HoldFactory(holder=customer, resource=resource, hour=11)
    services.booking_hold_confirm(hold_id=confirmed.pk, customer=customer)
    assert run_worker(BookingHoldExpiryWorker).claimed == 0
    later = services.hold_confirm_deadline(live) + timedelta(minutes=1)
    with time_machine.travel(later):
        assert run_worker(BookingHoldExpiryWorker).outcomes == {
            "expired": 1
        }  # the confirmed hold is not ACTIVE
        assert run_worker(BookingHoldExpiryWorker).claimed == 0
        assert services.booking_hold_expire(hold_id=live.pk) == "already_expired"
        assert services.booking_hold_expire(hold_id=confirmed.pk) == "already_confirmed"
    assert AuditEvent.objects.filter(event="booking.hold.expired").count() == 1


@pytest.mark.django_db
def test_the_worker_has_a_kill_switch_and_a_schedule(settings, customer, resource):
    settings.WORKER_DEFAULTS_ENABLED = {"booking_hold_expiry_worker": False}
    hold = HoldFactory(holder=customer, resource=resource)
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert run_worker(BookingHoldExpiryWorker).skipped is True
    hold.refresh_from_db()
    assert hold.status == "ACTIVE"
    call_command("setup_schedules")
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="booking_hold_expiry_worker")
    assert (schedule.func, schedule.args) == (
        "opsconsole.workers.run",
        "('booking_hold_expiry_worker',)",
    )
    assert BookingHold.objects.count() == 1
