"""Signed webhooks answer every bad signature and every malformed body with a 400 envelope,
never a 500 (#33): Resend's Svix-signed tracking events, and Stripe's events whose signature
is right but whose body is no event."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from svix.webhooks import Webhook

from tests.helpers import error_of

TRACKING = "/webhooks/anymail/resend/tracking/"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-secret").decode()
EVENT = {"type": "email.delivered", "data": {"email_id": "em_1", "to": ["a@example.test"]}}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def resend_signing(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": SIGNING_SECRET}


def svix_headers(payload: str, *, at: datetime | None = None, msg_id: str = "msg_1") -> dict:
    at = at or datetime.now(UTC)
    return {
        "HTTP_SVIX_ID": msg_id,
        "HTTP_SVIX_TIMESTAMP": str(int(at.timestamp())),
        "HTTP_SVIX_SIGNATURE": Webhook(SIGNING_SECRET).sign(msg_id, at, payload),
    }


def post_tracking(client, payload: str | bytes, **headers: str):
    return client.post(TRACKING, data=payload, content_type="application/json", **headers)


@pytest.mark.django_db
def test_a_signed_tracking_event_is_accepted(client, resend_signing):
    payload = json.dumps(EVENT)
    assert post_tracking(client, payload, **svix_headers(payload)).status_code == 200


def garbled(**changes: str) -> dict:
    payload = json.dumps(EVENT)
    return {**svix_headers(payload), **changes}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE="v1,!!!"), id="not-base64"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE="v1"), id="no-comma"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE="v1,a,b"), id="three-parts"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE="v1,abc"), id="bad-padding"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE="v2,AAAA"), id="other-version"),
        pytest.param(garbled(HTTP_SVIX_SIGNATURE=""), id="empty"),
        pytest.param(garbled(HTTP_SVIX_TIMESTAMP="yesterday"), id="timestamp-not-a-number"),
        pytest.param(
            svix_headers(json.dumps(EVENT), at=datetime.now(UTC) - timedelta(hours=1)),
            id="stale-timestamp",
        ),
        pytest.param(garbled(HTTP_SVIX_ID="msg_other"), id="another-message-id"),
    ],
)
def test_a_bad_svix_signature_is_a_400_envelope(client, resend_signing, headers):
    response = post_tracking(client, json.dumps(EVENT), **headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == "NTF-400-WEBHOOK-SIGNATURE-INVALID"


@pytest.mark.django_db
def test_a_body_that_is_not_utf8_is_a_400_envelope(client, resend_signing):
    response = post_tracking(client, b"\xff\xfe{}", **svix_headers("{}"))
    assert error_of(response)["code"] == "NTF-400-WEBHOOK-SIGNATURE-INVALID"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [
        "[]",
        '"a string"',
        "not json",
        DEEP,
        "{}",
        '{"type": "email.bounced", "data": null}',
        '{"type": "email.bounced", "data": []}',
        '{"type": [], "data": {}}',
    ],
    ids=["list", "string", "garbage", "deep", "empty", "null-data", "list-data", "odd-type"],
)
def test_a_signed_body_that_is_no_event_is_a_400_envelope(client, resend_signing, payload):
    response = post_tracking(client, payload, **svix_headers(payload))
    assert response.status_code == 400
    assert error_of(response)["code"] == "NTF-400-WEBHOOK-BODY-INVALID"


STRIPE_URL = "/webhooks/stripe"
STRIPE_SECRET = "whsec_test_secret"


def stripe_signed(client, payload: str):
    header = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_SECRET)
    return client.post(
        STRIPE_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    ["[]", '"a string"', "42", DEEP, '{"type": "charge.refunded"}', "not json"],
    ids=["list", "string", "number", "deep", "no-id", "garbage"],
)
def test_a_signed_stripe_body_that_is_no_event_is_a_400_and_kept_for_the_inbox(
    client, settings, payload
):
    from opsconsole.models import AuditEvent
    from payments.models import StripeEvent, WebhookFailure

    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    response = stripe_signed(client, payload)
    assert response.status_code == 400
    assert error_of(response)["code"] == "PAY-400-WEBHOOK-EVENT-INVALID"
    failure = WebhookFailure.objects.get()
    assert (failure.provider, failure.event_type, failure.status) == (
        "stripe",
        "malformed",
        "PENDING_MANUAL",
    )
    assert failure.payload["body"] == payload
    assert AuditEvent.objects.filter(event="payments.webhook_failure.stored").count() == 1
    assert not StripeEvent.objects.exists()
    # Stripe retries it: still one failure for the inbox.
    assert stripe_signed(client, payload).status_code == 400
    assert WebhookFailure.objects.count() == 1


@pytest.mark.django_db
def test_a_kept_malformed_stripe_body_cannot_be_replayed_only_resolved(client, settings):
    from opsconsole.failures import failure_sources
    from payments.models import WebhookFailure
    from payments.webhooks import webhook_failure_reprocess

    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    stripe_signed(client, "[]")
    failure = WebhookFailure.objects.get()
    assert failure_sources.get("webhook_failure").guard(failure)
    assert webhook_failure_reprocess(failure_id=failure.pk, actor="t", reason="try") is False
