"""Email through django-anymail's Resend backend, against a local server that speaks Resend's
API: what goes over the wire, how each answer is handled, and the tracking webhooks."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from svix.webhooks import Webhook

from notifications.models import Notification, SuppressedRecipient
from notifications.services import notification_enqueue
from notifications.workers import NotificationDeliveryWorker
from opsconsole.models import AuditEvent
from tests.workers import run_worker

SIGNING_SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-secret").decode()
TRACKING = "/webhooks/anymail/resend/tracking/"


@pytest.fixture
def resend(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "email": {"url": "", "api_key": "", "provider": "anymail"},
    }
    settings.ANYMAIL_ESP = "resend"
    settings.ANYMAIL = {
        "RESEND_API_KEY": "re_test_key",
        "RESEND_API_URL": httpserver.url_for("/"),
        "RESEND_SIGNING_SECRET": SIGNING_SECRET,
        "WEBHOOK_SECRET": None,
        "REQUESTS_TIMEOUT": 1,
    }
    settings.DEFAULT_FROM_EMAIL = "Ops Console <no-reply@console.example.com>"
    return httpserver


def queue_email(template: str = "hosted_session_recovery_email") -> Notification:
    return notification_enqueue(
        channel="email",
        to="ana@example.test",
        template=template,
        context={
            "reference": "hcs_00042",
            "amount": "49.90",
            "currency": "EUR",
            "checkout_url": "https://checkout.example.test/pay/abc",
        },
    )


@pytest.mark.django_db
def test_an_email_goes_to_resend_rendered_from_templates_and_keeps_its_id(resend):
    resend.expect_oneshot_request("/emails", method="POST").respond_with_json({"id": "em_123"})
    notification = queue_email()
    assert run_worker(NotificationDeliveryWorker).outcomes == {"sent": 1}
    notification.refresh_from_db()
    assert (notification.status, notification.external_id) == ("SENT", "em_123")
    request, _ = resend.log[-1]
    assert request.headers["Authorization"] == "Bearer re_test_key"
    # Resend drops a repeat of the same key within 24 h: a retried send is delivered once.
    assert request.headers["Idempotency-Key"] == f"notification:{notification.pk}"
    body = request.json
    assert body["from"] == "Ops Console <no-reply@console.example.com>"
    assert body["to"] == ["ana@example.test"]
    assert body["subject"] == "Your payment for hcs_00042 is still open"
    assert "49.90 EUR" in body["text"]
    assert 'href="https://checkout.example.test/pay/abc"' in body["html"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        ({"message": "slow down"}, 429, "RETRYING"),
        ({"message": "upstream"}, 503, "RETRYING"),
        ({"message": "request timeout"}, 408, "RETRYING"),
        ({"name": "validation_error", "message": "Invalid `to` field."}, 422, "DEAD"),
    ],
)
def test_resend_answers_map_to_retry_or_give_up(resend, answer, status, expected):
    headers = {"Retry-After": "7"} if status == 429 else {}
    resend.expect_oneshot_request("/emails", method="POST").respond_with_json(
        answer, status=status, headers=headers
    )
    notification = queue_email()
    before = timezone.now()
    run_worker(NotificationDeliveryWorker)
    notification.refresh_from_db()
    assert notification.status == expected
    assert notification.last_error.startswith(f"HTTP_{status}")
    if status == 429:  # Resend's Retry-After is the wait, not our backoff
        assert before + timedelta(seconds=6) <= notification.next_retry_at
        assert notification.next_retry_at <= before + timedelta(seconds=20)


@pytest.mark.django_db
def test_a_hanging_or_garbled_resend_is_retried(resend, hanging_handler):
    resend.expect_oneshot_request("/emails", method="POST").respond_with_handler(
        hanging_handler(2.5)
    )
    hung = queue_email()
    run_worker(NotificationDeliveryWorker)
    hung.refresh_from_db()
    assert (hung.status, hung.last_error[:13]) == ("RETRYING", "network_error")

    resend.expect_oneshot_request("/emails", method="POST").respond_with_data(
        "<html>gateway</html>", status=200, content_type="text/html"
    )
    garbled = queue_email()
    Notification.objects.filter(pk=hung.pk).update(
        next_retry_at=timezone.now() + timedelta(hours=1)
    )
    run_worker(NotificationDeliveryWorker)
    garbled.refresh_from_db()
    assert (garbled.status, garbled.last_error[:16]) == ("RETRYING", "invalid_response")


def signed_tracking(client, event: dict, secret: str = SIGNING_SECRET):
    payload = json.dumps(event)
    message_id = f"msg_{event['type']}_{event['data']['email_id']}"
    now = timezone.now()
    signature = Webhook(secret).sign(message_id, now, payload)
    return client.post(
        TRACKING,
        data=payload,
        content_type="application/json",
        HTTP_SVIX_ID=message_id,
        HTTP_SVIX_TIMESTAMP=str(int(time.time())),
        HTTP_SVIX_SIGNATURE=signature,
    )


def tracking_event(kind: str, email_id: str = "em_123") -> dict:
    return {
        "type": f"email.{kind}",
        "created_at": "2026-11-24T10:00:00.000Z",
        "data": {"email_id": email_id, "to": ["ana@example.test"], "subject": "x"},
    }


@pytest.mark.django_db
def test_tracking_webhooks_update_the_notification_and_a_bounce_suppresses(resend, client):
    resend.expect_oneshot_request("/emails", method="POST").respond_with_json({"id": "em_123"})
    notification = queue_email()
    run_worker(NotificationDeliveryWorker)

    assert signed_tracking(client, tracking_event("delivered")).status_code == 200
    notification.refresh_from_db()
    assert notification.delivery_status == "delivered"

    assert signed_tracking(client, tracking_event("bounced")).status_code == 200
    notification.refresh_from_db()
    assert notification.delivery_status == "bounced"
    assert SuppressedRecipient.objects.get().recipient == "ana@example.test"
    assert AuditEvent.objects.filter(event="notifications.recipient.suppressed").count() == 1

    # The next message to the address is kept, never sent.
    later = queue_email()
    assert later.status == Notification.Status.SKIPPED
    assert later.last_error == "SUPPRESSED: the address bounced"
    assert run_worker(NotificationDeliveryWorker).claimed == 0


@pytest.mark.django_db
def test_tracking_webhooks_refuse_a_bad_signature_and_an_unconfigured_secret(
    resend, client, settings
):
    forged = signed_tracking(
        client, tracking_event("bounced"), secret="whsec_" + base64.b64encode(b"x" * 24).decode()
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "NTF-400-WEBHOOK-SIGNATURE-INVALID"
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": None}
    unconfigured = client.post(TRACKING, data="{}", content_type="application/json")
    assert unconfigured.status_code == 503
    assert unconfigured.json()["error"]["code"] == "NTF-503-WEBHOOK-NOT-CONFIGURED"
    assert not SuppressedRecipient.objects.exists()
