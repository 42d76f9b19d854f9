from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

from bookings.models import Booking
from notifications.models import Notification, NotificationAttempt
from notifications.services import notification_enqueue
from notifications.workers import NotificationDeliveryWorker
from opsconsole.models import AuditEvent
from tests.bookings.factories import HoldFactory, ResourceFactory
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory
from tests.workers import run_worker


@pytest.fixture
def email(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"url": httpserver.url_for("/email")}}
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 0.5
    return httpserver


def queue_email() -> Notification:
    return notification_enqueue(
        channel="email", to="ana@example.test", template="booking_confirmed", context={"b": 1}
    )


@pytest.mark.django_db
def test_it_sends_a_queued_email_with_its_idempotency_key(email):
    email.expect_request("/email").respond_with_json({"id": "em_9"}, status=202)
    notification = queue_email()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"sent": 1}
    notification.refresh_from_db()
    assert (notification.status, notification.external_id, notification.attempt_count) == (
        "SENT",
        "em_9",
        1,
    )
    request, _ = email.log[0]
    assert request.headers["Idempotency-Key"] == f"notification:{notification.pk}"


@pytest.mark.django_db
def test_five_attempts_with_backoff_from_one_minute_then_dead_letter(email, settings):
    email.expect_request("/email").respond_with_data("unavailable", status=503)
    notification = queue_email()
    ceilings = []
    for _ in range(5):
        with time_machine.travel(notification.next_retry_at, tick=False):
            before = timezone.now()
            run_worker(NotificationDeliveryWorker)
            notification.refresh_from_db()
            if notification.next_retry_at:
                ceilings.append((notification.next_retry_at - before).total_seconds())
    assert (notification.status, notification.attempt_count) == ("DEAD", 5)
    log = list(NotificationAttempt.objects.filter(notification=notification))
    assert [a.attempt_number for a in log] == [1, 2, 3, 4, 5]
    assert all(not a.succeeded and a.http_status == 503 for a in log)
    # Doubling from one minute, never sooner (docs/runbooks/bookings-payments-notifications.md),
    # jittered by at most a tenth.
    assert all(60 * 2**n <= delay <= 66 * 2**n + 1 for n, delay in enumerate(ceilings))
    assert AuditEvent.objects.filter(event="notifications.notification.dead_lettered").exists()


@pytest.mark.django_db
def test_a_timeout_is_retried(hanging_handler, email):

    email.expect_request("/email").respond_with_handler(hanging_handler(0.8))
    notification = queue_email()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"retry_scheduled": 1}
    notification.refresh_from_db()
    assert "read_timeout" in notification.last_error


@pytest.mark.django_db
def test_a_429_honours_retry_after_and_a_400_dead_letters_at_once(email):
    email.expect_oneshot_request("/email").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "90"}
    )
    notification = queue_email()
    started = timezone.now()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"retry_scheduled": 1}
    notification.refresh_from_db()
    assert 89 <= (notification.next_retry_at - started).total_seconds() <= 95
    email.expect_request("/email").respond_with_json({"error": "bad address"}, status=400)
    other = queue_email()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"dead_lettered": 1}
    assert Notification.objects.get(pk=other.pk).status == "DEAD"


@pytest.mark.django_db
def test_a_failing_email_never_fails_the_booking_that_caused_it(email):
    email.expect_request("/email").respond_with_data("down", status=503)
    customer = UserFactory(username="emailed", groups=["Booking client"])
    hold = HoldFactory(holder=customer, resource=ResourceFactory())
    response = token_client(customer).post(f"/api/v1/bookings/holds/{hold.pk}/confirm")
    assert response.status_code == 201
    notification = Notification.objects.get(template="booking_confirmed")
    assert run_worker(NotificationDeliveryWorker).outcomes == {"retry_scheduled": 1}
    assert Booking.objects.get().status == "CONFIRMED"
    notification.refresh_from_db()
    assert notification.status == "RETRYING"


@pytest.mark.django_db
def test_operators_requeue_a_dead_notification_from_the_admin(admin_client, email):
    from tests.helpers import action_post

    email.expect_request("/email").respond_with_json({"error": "bad"}, status=422)
    notification = queue_email()
    run_worker(NotificationDeliveryWorker)
    action_post(
        admin_client,
        "/admin/notifications/notification/",
        "requeue_dead",
        [notification.pk],
        confirm="yes",
        reason="address fixed",
    )
    notification.refresh_from_db()
    assert (notification.status, notification.attempt_count) == ("PENDING", 0)
    assert AuditEvent.objects.get(event="notifications.notification.requeued").reason == (
        "address fixed"
    )


@pytest.mark.django_db
def test_each_attempts_response_is_on_the_notification_page(admin_client, email):
    email.expect_request("/email").respond_with_json({"error": "mailbox full"}, status=503)
    notification = queue_email()
    run_worker(NotificationDeliveryWorker)
    page = admin_client.get(f"/admin/notifications/notification/{notification.pk}/change/")
    html = page.content.decode()
    assert "Response body" in html  # the attempt's own column, not only the error text
    # The response body's own cell (the error cell starts with "http_503: ").
    assert "<p>{<br>    &quot;error&quot;: &quot;mailbox full&quot;<br>}</p>" in html
