"""SMS through Twilio's library, against a local server that speaks Twilio's Messages API:
what goes over the wire, and how Twilio's answers are handled."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_enqueue
from notifications.workers import NotificationDeliveryWorker
from tests.workers import run_worker

MESSAGES = "/2010-04-01/Accounts/AC123/Messages.json"


@pytest.fixture
def twilio(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "sms": {"url": "", "api_key": "", "provider": "twilio"},
    }
    settings.TWILIO = {
        "ACCOUNT_SID": "AC123",
        "AUTH_TOKEN": "twilio-token",
        "FROM_NUMBER": "+15005550006",
        "API_BASE": httpserver.url_for("/").rstrip("/"),
    }
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 1
    return httpserver


def queue_sms() -> Notification:
    return notification_enqueue(
        channel="sms",
        to="+351910000001",
        template="hosted_session_recovery_sms",
        context={
            "reference": "hcs_7",
            "amount": "49.90",
            "currency": "EUR",
            "checkout_url": "https://x.test/p",
        },
    )


@pytest.mark.django_db
def test_an_sms_goes_to_twilios_messages_api_and_keeps_its_sid(twilio):
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"sid": "SM123", "status": "queued"}, status=201
    )
    notification = queue_sms()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"sent": 1}
    notification.refresh_from_db()
    assert (notification.status, notification.external_id) == ("SENT", "SM123")
    request, _ = twilio.log[-1]
    expected = "Basic " + base64.b64encode(b"AC123:twilio-token").decode()
    assert request.headers["Authorization"] == expected
    assert request.form["To"] == "+351910000001"
    assert request.form["From"] == "+15005550006"
    assert request.form["Body"] == (
        "Your payment of 49.90 EUR for hcs_7 is still open: https://x.test/p"
    )


@pytest.mark.django_db
def test_an_invalid_number_is_given_up_and_a_rate_limit_waits_as_told(twilio):
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400},
        status=400,
    )
    invalid = queue_sms()
    run_worker(NotificationDeliveryWorker)
    invalid.refresh_from_db()
    assert (invalid.status, invalid.last_error[:14]) == ("DEAD", "invalid_number")

    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429},
        status=429,
        headers={"Retry-After": "9"},
    )
    throttled = queue_sms()
    before = timezone.now()
    run_worker(NotificationDeliveryWorker)
    throttled.refresh_from_db()
    assert (throttled.status, throttled.last_error[:8]) == ("RETRYING", "HTTP_429")
    assert before + timedelta(seconds=8) <= throttled.next_retry_at


@pytest.mark.django_db
def test_an_outage_a_hang_and_garbage_are_retried(twilio, hanging_handler):
    outcomes = []
    for respond in (
        lambda r: r.respond_with_json({"code": 20500, "message": "down"}, status=503),
        lambda r: r.respond_with_handler(hanging_handler(2.5)),
        lambda r: r.respond_with_data("<html>proxy</html>", status=200),
    ):
        respond(twilio.expect_oneshot_request(MESSAGES, method="POST"))
        notification = queue_sms()
        run_worker(NotificationDeliveryWorker)
        notification.refresh_from_db()
        outcomes.append((notification.status, notification.last_error.split(":")[0]))
        Notification.objects.filter(pk=notification.pk).update(
            next_retry_at=timezone.now() + timedelta(hours=1)
        )
    assert outcomes == [
        ("RETRYING", "HTTP_503"),
        ("RETRYING", "network_error"),
        ("RETRYING", "invalid_response"),
    ]


@pytest.mark.django_db
def test_an_answer_without_a_message_sid_is_not_counted_as_sent(twilio):
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(
        {"status": "queued"}, status=201
    )
    notification = queue_sms()
    run_worker(NotificationDeliveryWorker)
    notification.refresh_from_db()
    assert (notification.status, notification.external_id) == ("RETRYING", "")
    assert notification.last_error.startswith("invalid_response")
