"""Resend's tracking events as Resend sends them (its documented `email.*` payloads with
`created_at`), signed with the svix library: applied in the order of their own timestamps,
each `svix-id` once, and a delayed delivery recorded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from svix.webhooks import Webhook

from notifications.models import Notification, SuppressedRecipient
from notifications.services import notification_enqueue
from opsconsole.models import AuditEvent

TRACKING = "/webhooks/anymail/resend/tracking/"
SECRET = "whsec_" + base64.b64encode(b"resend-contract-signing-secret").decode()
SENT_AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def message(settings, db) -> Notification:
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": SECRET}
    sent = notification_enqueue(
        channel="email", to="ana@example.test", template="booking_confirmed", context={}
    )
    Notification.objects.filter(pk=sent.pk).update(status="SENT", external_id="em_contract")
    return Notification.objects.get(pk=sent.pk)


def resend_event(event_type: str, created_at: datetime) -> str:
    """As Resend's webhook reference shows an email event."""
    return json.dumps(
        {
            "type": event_type,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "data": {
                "created_at": SENT_AT.isoformat().replace("+00:00", "Z"),
                "email_id": "em_contract",
                "from": "Courts <bookings@example.test>",
                "to": ["ana@example.test"],
                "subject": "Your booking",
            },
        }
    )


def post(client, payload: str, svix_id: str):
    now = datetime.now(UTC)
    response = client.post(
        TRACKING,
        data=payload,
        content_type="application/json",
        HTTP_SVIX_ID=svix_id,
        HTTP_SVIX_TIMESTAMP=str(int(now.timestamp())),
        HTTP_SVIX_SIGNATURE=Webhook(SECRET).sign(svix_id, now, payload),
    )
    assert response.status_code == 200, response.content
    return response


def test_an_older_delivered_after_a_bounce_does_not_turn_the_message_back(client, message):
    post(client, resend_event("email.bounced", SENT_AT + timedelta(minutes=2)), "msg_bounce")
    post(client, resend_event("email.delivered", SENT_AT + timedelta(minutes=1)), "msg_deliv")
    message.refresh_from_db()
    assert message.delivery_status == "bounced"
    assert message.delivery_status_at == SENT_AT + timedelta(minutes=2)
    assert SuppressedRecipient.objects.filter(recipient="ana@example.test").exists()
    # The late event is on the record, marked as superseded.
    assert AuditEvent.objects.filter(
        event="notifications.notification.tracking_superseded", reason="msg_deliv"
    ).exists()


def test_the_same_svix_id_twice_is_applied_once(client, message):
    payload = resend_event("email.delivered", SENT_AT + timedelta(minutes=1))
    post(client, payload, "msg_twice")
    post(client, payload, "msg_twice")
    rows = AuditEvent.objects.filter(object_id=str(message.pk), reason="msg_twice")
    assert [row.event for row in rows] == ["notifications.notification.delivered"]


def test_a_delayed_delivery_is_recorded_then_the_delivery_replaces_it(client, message):
    post(client, resend_event("email.delivery_delayed", SENT_AT + timedelta(minutes=1)), "m1")
    message.refresh_from_db()
    assert message.delivery_status == "deferred"
    post(client, resend_event("email.delivered", SENT_AT + timedelta(minutes=30)), "m2")
    message.refresh_from_db()
    assert message.delivery_status == "delivered"
