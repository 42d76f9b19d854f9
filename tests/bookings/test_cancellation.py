from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking, BookingHold, RefundFailure, WaitlistEntry
from notifications.models import CommunicationLog
from opsconsole.models import Alert, AuditEvent
from payments.models import Payment, Refund
from tests.bookings.factories import BookingFactory, ResourceFactory, slot
from tests.helpers import action_post, error_of, run_concurrently, token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import run_queued_tasks

BOOKINGS_ADMIN = "/admin/bookings/booking/"


def cancel_url(booking_id) -> str:
    return f"/api/v1/bookings/{booking_id}/cancel"


def stripe_refund_ok(stripe, refund_id: str = "re_123") -> None:
    stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"id": refund_id, "object": "refund", "status": "succeeded"}
    )


def stripe_refund_down(stripe) -> None:
    stripe.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "Stripe is down"}}, status=500
    )


@pytest.mark.django_db
def test_an_unpaid_booking_is_cancelled_the_slot_freed_and_the_waitlist_told(
    customer, customer_client, resource, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_CHANNELS = {}
    booking = BookingFactory(customer=customer, resource=resource, hour=10)
    start, end = slot(10)
    entry = WaitlistEntry.objects.create(
        resource=resource, email="w@example.test", start_time=start, end_time=end
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(cancel_url(booking.pk), {"reason": "ill"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["booking"]["status"] == "CANCELLED"
    assert body["refund_processed"] is False
    assert BookingHold.objects.get(pk=booking.hold_id).occupies_slot is False
    events = list(
        AuditEvent.objects.filter(object_id=str(booking.pk), object_type="bookings.booking")
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert events[-2:] == ["booking.cancelling", "booking.cancelled"]
    entry.refresh_from_db()
    assert entry.status == "WAITING"  # the request does not wait for the email: a task sends it
    assert run_queued_tasks("bookings.waitlist.waitlist_notify_task") == [1]
    entry.refresh_from_db()
    assert entry.status == "NOTIFIED"
    assert CommunicationLog.objects.filter(template="waitlist_slot_available").count() == 1
    again = customer_client.post(cancel_url(booking.pk), {}, format="json")
    assert (again.status_code, again.json()["already_cancelled"]) == (200, True)


@pytest.mark.django_db
def test_a_paid_booking_is_refunded_once_with_the_refund_key(
    customer, customer_client, resource, stripe
):
    stripe_refund_ok(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("80.00"))
    response = customer_client.post(cancel_url(booking.pk), {"reason": "ill"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["refund_processed"] is True
    refund = Refund.objects.get()
    assert (refund.status, refund.attempt_count, refund.provider_refund_id) == (
        "COMPLETED",
        1,
        "re_123",
    )
    request, _ = stripe.log[0]
    assert request.headers["Idempotency-Key"] == f"refund:{refund.pk}"
    assert request.headers["Authorization"] == "Bearer sk_test_local"
    assert request.form["amount"] == "8000"
    assert request.form["payment_intent"] == f"pi_{booking.pk}"
    assert Payment.objects.get().status == "refunded"


@pytest.mark.django_db
def test_a_failed_refund_leaves_the_booking_cancelling_for_review_and_answers_503(
    customer, customer_client, resource, stripe
):
    stripe_refund_down(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("150.00"))
    response = customer_client.post(cancel_url(booking.pk), {"reason": "ill"}, format="json")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "BKG-503-CANCELLATION-FAILED"
    assert error["details"]["failed_step"] == "process_refund"
    booking.refresh_from_db()
    assert (booking.status, booking.cancellation_step) == ("CANCELLING", "process_refund")
    failure = RefundFailure.objects.get(booking=booking)
    assert failure.status == "PENDING_MANUAL"
    assert "Stripe is down" in failure.error
    refund = Refund.objects.get()
    assert (refund.status, refund.attempt_count) == ("FAILED", 1)
    assert refund.next_retry_at is not None  # the refund worker retries it
    kinds = set(Alert.objects.values_list("kind", flat=True))
    assert kinds == {"cancellation-failed", "refund-failed"}  # 150 > 100
    # The slot stays taken while a human reviews the cancellation.
    assert BookingHold.objects.get(pk=booking.hold_id).occupies_slot is True

    # The provider is back: cancelling again resumes the saga with the same refund row.
    stripe_refund_ok(stripe)
    retry = customer_client.post(cancel_url(booking.pk), {"reason": "ill"}, format="json")
    assert retry.status_code == 200, retry.content
    assert Refund.objects.count() == 1
    keys = {request.headers["Idempotency-Key"] for request, _ in stripe.log}
    assert keys == {f"refund:{refund.pk}"}
    booking.refresh_from_db()
    assert booking.status == "CANCELLED"


@pytest.mark.django_db
def test_strangers_cannot_cancel_and_operators_can(customer, resource, operator_client, stripe):
    booking = BookingFactory(customer=customer, resource=resource)
    stranger = token_client(UserFactory(username="mallory", groups=["Booking client"]))
    response = stranger.post(cancel_url(booking.pk), {}, format="json")
    assert (response.status_code, error_of(response)["code"]) == (404, "BKG-404-BOOKING-NOT-FOUND")
    assert operator_client.post(cancel_url(booking.pk), {}, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_of_a_paid_booking_refund_once(stripe):
    stripe_refund_ok(stripe)
    customer = UserFactory(username="twice", groups=["Booking client"])
    booking = BookingFactory(customer=customer, resource=ResourceFactory(), paid=Decimal("40.00"))
    statuses = run_concurrently(
        lambda n: (
            token_client(customer)
            .post(cancel_url(booking.pk), {"reason": "double"}, format="json")
            .status_code
        ),
        4,
    )
    assert statuses == [200, 200, 200, 200]
    assert Refund.objects.filter(status="COMPLETED").count() == 1
    assert {request.headers["Idempotency-Key"] for request, _ in stripe.log} == {
        f"refund:{Refund.objects.get().pk}"
    }
    assert Booking.objects.get(pk=booking.pk).status == "CANCELLED"


@pytest.mark.django_db
def test_the_admin_review_list_resolves_a_stuck_cancellation_with_a_reason(
    customer, customer_client, resource, stripe, admin_client
):
    stripe_refund_down(stripe)
    stuck = BookingFactory(customer=customer, resource=resource, hour=9, paid=Decimal("30.00"))
    fine = BookingFactory(customer=customer, resource=resource, hour=12)
    customer_client.post(cancel_url(stuck.pk), {}, format="json")
    listed = admin_client.get(BOOKINGS_ADMIN, {"review": "cancelling"})
    assert [b.pk for b in listed.context["cl"].result_list] == [stuck.pk]
    confirm = action_post(admin_client, BOOKINGS_ADMIN, "resolve_complete", [stuck.pk, fine.pk])
    assert (confirm.context["eligible_count"], confirm.context["ineligible_count"]) == (1, 1)
    action_post(
        admin_client,
        BOOKINGS_ADMIN,
        "resolve_complete",
        [stuck.pk, fine.pk],
        confirm="yes",
        reason="refunded by bank transfer",
    )
    stuck.refresh_from_db()
    assert stuck.status == "CANCELLED"
    assert Booking.objects.get(pk=fine.pk).status == "CONFIRMED"
    failure = RefundFailure.objects.get(booking=stuck)
    assert (failure.status, failure.resolved_by) == ("RESOLVED", "root")
    event = AuditEvent.objects.get(event="booking.cancellation_resolved")
    assert (event.reason, event.metadata["resolution"]) == ("refunded by bank transfer", "complete")


@pytest.mark.django_db
def test_a_support_viewer_sees_the_review_list_without_actions(client, customer, resource):
    viewer = UserFactory(username="viewer-staff", groups=["Support viewer"])
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    BookingFactory(customer=customer, resource=resource)
    page = client.get(BOOKINGS_ADMIN)
    assert page.status_code == 200
    assert "resolve_complete" not in page.content.decode()


@pytest.mark.django_db
def test_the_refund_worker_retries_a_failed_refund_until_it_completes(customer, resource, stripe):
    import time_machine

    from payments.workers import RefundRetryWorker

    stripe_refund_down(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("20.00"))
    token_client(customer).post(cancel_url(booking.pk), {}, format="json")
    refund = Refund.objects.get()
    assert RefundRetryWorker().run_once(triggered_by="test").claimed == 0  # backing off
    stripe_refund_ok(stripe, "re_later")
    with time_machine.travel(refund.next_retry_at):
        summary = RefundRetryWorker().run_once(triggered_by="test")
    assert summary.outcomes == {"completed": 1}
    refund.refresh_from_db()
    assert (refund.status, refund.attempt_count, refund.provider_refund_id) == (
        "COMPLETED",
        2,
        "re_later",
    )


@pytest.mark.django_db
def test_a_slow_provider_is_cut_at_the_web_timeout_and_the_worker_waits_longer(
    customer, resource, stripe, settings
):
    """A request may not wait on Stripe for the worker's full timeout: it gets
    PROVIDER_WEB_TIMEOUT_SECONDS, answers 503 and leaves the refund to the worker."""
    import time

    import time_machine
    from werkzeug import Response

    from payments.workers import RefundRetryWorker

    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS, settings.PROVIDER_WEB_TIMEOUT_SECONDS = 4, 1

    def slow_success(request):
        time.sleep(1.5)
        return Response(
            '{"id": "re_slow", "object": "refund", "status": "succeeded"}',
            200,
            content_type="application/json",
        )

    stripe.expect_request("/v1/refunds", method="POST").respond_with_handler(slow_success)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("20.00"))
    response = token_client(customer).post(cancel_url(booking.pk), {}, format="json")
    assert error_of(response)["code"] == "BKG-503-CANCELLATION-FAILED"
    refund = Refund.objects.get()
    assert (refund.status, refund.attempt_count) == ("FAILED", 1)
    assert "timeout" in refund.last_error.lower()
    with time_machine.travel(refund.next_retry_at):
        assert RefundRetryWorker().run_once(triggered_by="test").outcomes == {"completed": 1}
    refund.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == ("COMPLETED", "re_slow")
    keys = {entry[0].headers.get("Idempotency-Key") for entry in stripe.log}
    assert keys == {refund.provider_idempotency_key}  # the same refund, never a second one


@pytest.mark.django_db
def test_the_refund_worker_retries_three_times_on_the_seed_s_schedule(customer, resource, stripe):
    """docs/runbooks/bookings-payments-notifications.md: the first retry 5 minutes after the
    failure, then after 1 and 2 minutes; after the third retry the refund gives up and waits for
    people."""
    import time_machine

    from payments.workers import RefundRetryWorker

    stripe.expect_request("/v1/refunds").respond_with_data("bad gateway", status=502)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("20.00"))
    token_client(customer).post(cancel_url(booking.pk), {}, format="json")
    refund = Refund.objects.get()
    waits = []
    for expected in ("retry_scheduled", "retry_scheduled", "gave_up"):
        waits.append((refund.next_retry_at - refund.updated_at).total_seconds())
        with time_machine.travel(refund.next_retry_at):
            assert RefundRetryWorker().run_once(triggered_by="test").outcomes == {expected: 1}
        refund.refresh_from_db()
    for wait, seconds in zip(waits, (300, 60, 120), strict=True):
        assert seconds - 1 <= wait <= seconds * 1.1 + 1, waits
    assert (refund.status, refund.attempt_count, refund.next_retry_at) == ("FAILED", 4, None)
    assert len(stripe.log) == 4


@pytest.mark.django_db
def test_a_bulk_action_over_stuck_cancellations_completes_them(
    customer, customer_client, resource, stripe, operator
):
    """The bulk engine acts as itself (a string actor), approved by two operators."""
    from recovery.inbox.bulk_actions import (
        bulk_action_create,
        bulk_action_run,
        bulk_action_transition,
    )
    from recovery.models import BulkActionItem

    stripe_refund_down(stripe)
    booking = BookingFactory(customer=customer, resource=resource, paid=Decimal("40.00"))
    customer_client.post(cancel_url(booking.pk), {}, format="json")
    booking.refresh_from_db()
    assert booking.status == "CANCELLING"
    stripe_refund_ok(stripe)
    action = bulk_action_create(
        actor=operator, reason="stripe back", source="cancellation", ids=[booking.pk]
    )
    assert action.moves_money
    second = UserFactory(username="second-op", groups=["Support operator"])
    bulk_action_transition(action_id=action.pk, verb="approve", actor=second, reason="ok")
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=action.pk, max_seconds=5)
    item = BulkActionItem.objects.get(action=action)
    assert item.outcome == "replayed", item.detail
    booking.refresh_from_db()
    assert booking.status == "CANCELLED"
