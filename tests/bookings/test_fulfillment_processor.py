"""The fulfillment processor (docs/runbooks/incident-response.md): a paid booking gets its
entry code, its confirmation and its partner event once; nothing unpaid is fulfilled; a
failure retries with backoff, then parks in the failure inbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking, Fulfillment
from bookings.services import fulfilment as fulfilment_services
from bookings.workers import FulfillmentProcessor
from notifications.models import Notification
from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.monitoring.health import readiness
from recovery.inbox.groups import failure_groups
from recovery.models import RecoveryItem
from tests.bookings.factories import BookingFactory, ResourceFactory
from tests.helpers import run_concurrently
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import IntegrationFactory
from tests.workers import run_worker


def paid_booking(customer, *, hour: int = 10, resource=None) -> Booking:
    return BookingFactory(
        customer=customer, resource=resource or ResourceFactory(), hour=hour, paid=Decimal("30.00")
    )


@pytest.mark.django_db
def test_a_paid_booking_is_fulfilled_once_with_code_confirmation_and_event():
    partner = IntegrationFactory(name="door-system", event_types=["booking.fulfilled"])
    customer = UserFactory(username="fay", groups=["Booking client"])
    unpaid = BookingFactory(customer=customer, resource=ResourceFactory(), hour=8)
    booking = paid_booking(customer)
    fulfillment = Fulfillment.objects.get(booking=booking)
    assert not Fulfillment.objects.filter(booking=unpaid).exists()

    assert run_worker(FulfillmentProcessor).outcomes == {"fulfilled": 1}
    fulfillment.refresh_from_db()
    assert fulfillment.status == "FULFILLED" and len(fulfillment.entry_code) == 8
    note = Notification.objects.get(pk=fulfillment.notification_id)
    assert (note.template, note.recipient) == ("booking_fulfilled", "fay@example.test")
    assert note.context["entry_code"] == fulfillment.entry_code
    (item,) = RecoveryItem.objects.filter(integration=partner)
    assert (item.event_type, item.payload["booking_id"]) == ("booking.fulfilled", booking.pk)
    assert AuditEvent.objects.filter(event="booking.fulfilled", object_id=str(fulfillment.pk))

    # Run again, and pay again: nothing is sent twice.
    assert run_worker(FulfillmentProcessor).claimed == 0
    fulfilment_services.fulfilment_owe(Booking.objects.get(pk=booking.pk))
    assert run_worker(FulfillmentProcessor).claimed == 0
    assert Notification.objects.filter(template="booking_fulfilled").count() == 1
    assert RecoveryItem.objects.filter(integration=partner).count() == 1


@pytest.mark.django_db
def test_a_booking_cancelled_or_refunded_before_its_turn_is_not_fulfilled():
    customer = UserFactory(username="gil", groups=["Booking client"])
    booking = paid_booking(customer)
    Booking.objects.filter(pk=booking.pk).update(payment_status=Booking.PaymentStatus.REFUNDED)
    assert run_worker(FulfillmentProcessor).outcomes == {"voided": 1}
    fulfillment = Fulfillment.objects.get(booking=booking)
    assert (fulfillment.status, fulfillment.entry_code) == ("VOIDED", "")
    assert not Notification.objects.filter(template="booking_fulfilled").exists()


@pytest.mark.django_db
def test_a_failing_fulfilment_retries_with_backoff_then_parks_in_the_inbox(monkeypatch, settings):
    settings.FULFILLMENT_MAX_ATTEMPTS = 3
    customer = UserFactory(username="hal", groups=["Booking client"])
    booking = paid_booking(customer)
    calls = []

    def mail_down(**kwargs):
        calls.append(kwargs)
        raise ConnectionError("mail queue unavailable")

    monkeypatch.setattr(fulfilment_services, "notification_enqueue", mail_down)
    assert run_worker(FulfillmentProcessor).outcomes == {"retry_scheduled": 1}
    fulfillment = Fulfillment.objects.get(booking=booking)
    assert fulfillment.status == "PENDING" and fulfillment.attempt_count == 1
    wait = (fulfillment.next_retry_at - timezone.now()).total_seconds()
    assert 55 <= wait <= 70  # the policy's first wait (60 s, floor jitter)
    # Not due yet: the next run leaves it alone.
    assert run_worker(FulfillmentProcessor).claimed == 0
    later = timezone.now() + timedelta(hours=1)
    assert run_worker(FulfillmentProcessor, at=later).outcomes == {"retry_scheduled": 1}
    assert run_worker(FulfillmentProcessor, at=later + timedelta(hours=2)).outcomes == {"parked": 1}
    fulfillment.refresh_from_db()
    assert (fulfillment.status, fulfillment.failure_code) == ("PARKED", "ConnectionError")
    assert "mail queue unavailable" in fulfillment.last_error
    assert len(calls) == 3
    # Nothing of a failed attempt stays: no code, no event.
    assert fulfillment.entry_code == ""
    [group] = [g for g in failure_groups() if g.source == "fulfillment"]
    assert (group.count, group.failure_code) == (1, "ConnectionError")
    assert WorkerStatus.objects.get(name="fulfillment_processor").consecutive_failures == 0

    # The operator retries it once the mail queue is back.
    monkeypatch.undo()
    operator = UserFactory(username="ops", groups=["Support operator"])
    fulfilment_services.fulfilment_retry(
        fulfillment_id=fulfillment.pk, actor=operator, reason="mail queue back (INC-7)"
    )
    assert AuditEvent.objects.get(event="booking.fulfillment.requeued").reason == (
        "mail queue back (INC-7)"
    )
    assert run_worker(FulfillmentProcessor).outcomes == {"fulfilled": 1}


@pytest.mark.django_db
def test_a_walk_in_without_an_address_is_fulfilled_for_the_desk():
    partner = IntegrationFactory(name="door-system", event_types=["booking.fulfilled"])
    customer = UserFactory(username="ivy", email="", groups=["Booking client"])
    booking = paid_booking(customer)
    assert run_worker(FulfillmentProcessor).outcomes == {"fulfilled": 1}
    fulfillment = Fulfillment.objects.get(booking=booking)
    assert (fulfillment.status, fulfillment.notification_id) == ("FULFILLED", None)
    assert len(fulfillment.entry_code) == 8
    assert fulfillment.confirmation_note.startswith("no email address")
    assert not Notification.objects.filter(template="booking_fulfilled").exists()
    assert RecoveryItem.objects.filter(integration=partner, event_type="booking.fulfilled")


@pytest.mark.django_db
def test_readyz_names_the_processor_as_the_incident_guide_does():
    run_worker(FulfillmentProcessor)
    components = readiness()["components"]
    for name in (
        "fulfillment_processor",
        "bundle_guardrail_worker",
        "catalog_scheduler",
        "weekly_digest_scheduler",
        "hosted_recovery_worker",
    ):
        assert name in components
    assert components["fulfillment_processor"]["status"] == "ready"


@pytest.mark.django_db(transaction=True)
def test_concurrent_processors_fulfil_each_paid_booking_exactly_once():
    customer = UserFactory(username="jo", groups=["Booking client"])
    resource = ResourceFactory()
    bookings = [paid_booking(customer, hour=hour, resource=resource) for hour in range(6, 18)]
    unpaid = BookingFactory(customer=customer, resource=resource, hour=19)
    # Four processors at one barrier, each claiming small batches until the queue is dry.
    run_concurrently(
        lambda n: FulfillmentProcessor(batch_size=2).run_once(
            triggered_by=f"race-{n}", drain_seconds=5
        ),
        4,
    )
    assert Fulfillment.objects.filter(status="FULFILLED").count() == len(bookings)
    assert not Fulfillment.objects.filter(booking=unpaid).exists()
    sent = Notification.objects.filter(template="booking_fulfilled")
    assert sorted(int(n.subject_id) for n in sent) == sorted(b.pk for b in bookings)
    codes = set(Fulfillment.objects.values_list("entry_code", flat=True))
    assert len(codes) == len(bookings)
    assert AuditEvent.objects.filter(event="booking.fulfilled").count() == len(bookings)


@pytest.mark.django_db
def test_cancelling_a_fulfilled_booking_voids_its_entry_code_and_an_unfulfilled_one_is_never_done():
    from bookings import services

    desk = UserFactory(username="desk", groups=["Support operator"])
    customer = UserFactory(username="noa", groups=["Booking client"])
    court = ResourceFactory()
    done, waiting = (
        BookingFactory(customer=customer, resource=court, hour=hour) for hour in (9, 11)
    )
    for booking in (done, waiting):
        services.booking_offline_payment_record(
            booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=desk
        )
        if booking is done:
            run_worker(FulfillmentProcessor)
    for booking in (done, waiting):
        services.booking_cancel(booking_id=booking.pk, actor=customer, reason="rained off")
    voided = Fulfillment.objects.get(booking=done)
    assert (voided.status, voided.confirmation_note) == (
        "VOIDED",
        "booking cancelled: the entry code no longer admits anyone",
    )
    assert run_worker(FulfillmentProcessor).claimed == 0
    assert Fulfillment.objects.get(booking=waiting).status == "VOIDED"
    assert Notification.objects.filter(template="booking_fulfilled").count() == 1
    assert AuditEvent.objects.filter(event="booking.fulfillment.voided").count() == 2
