"""Push through FCM's HTTP v1 API: google-auth fetches the service account's token from the
account's token URI (a local server here), then messages:send; an UNREGISTERED answer
invalidates the token (docs/runbooks/bookings-payments-notifications.md)."""

from __future__ import annotations

import json

import pytest
from werkzeug import Response

from notifications import push
from notifications.models import PushToken
from notifications.services import push_send
from tests.notifications.providers import service_account
from tests.opsconsole.factories import UserFactory

SEND = "/v1/projects/demo-project/messages:send"


@pytest.fixture
def fcm(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "push": {"url": "", "api_key": "", "provider": "fcm"},
    }
    settings.FCM = {
        "PROJECT_ID": "demo-project",
        "SERVICE_ACCOUNT": service_account(httpserver.url_for("/token")),
        "API_BASE": httpserver.url_for("/").rstrip("/"),
    }
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 1
    push._credentials.clear()
    return httpserver


def fcm_error(status: int, error_code: str) -> dict:
    return {
        "error": {
            "code": status,
            "message": "error",
            "status": "NOT_FOUND" if status == 404 else "UNAVAILABLE",
            "details": [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": error_code,
                }
            ],
        }
    }


@pytest.mark.django_db
def test_push_goes_to_fcm_v1_with_the_service_accounts_token(fcm):
    fcm.expect_oneshot_request("/token", method="POST").respond_with_json(
        {"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}
    )
    fcm.expect_request(SEND, method="POST").respond_with_json(
        {"name": "projects/demo-project/messages/0:1"}
    )
    user = UserFactory(username="pia")
    PushToken.objects.create(user=user, token="device-a")
    PushToken.objects.create(user=user, token="device-b")
    counts = push_send(user_id=user.pk, title="Booked", body="See you at 10", data={"id": 7})
    assert counts == {"sent": 2, "failed": 0, "invalidated": 0}
    token_calls = [r for r, _ in fcm.log if r.path == "/token"]
    assert len(token_calls) == 1  # the token is kept until it runs out
    assert token_calls[0].form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    sends = [r for r, _ in fcm.log if r.path == SEND]
    assert {r.headers["Authorization"] for r in sends} == {"Bearer ya29.test-token"}
    by_token = {r.json["message"]["token"]: r.json for r in sends}
    assert by_token["device-a"] == {
        "message": {
            "token": "device-a",
            "notification": {"title": "Booked", "body": "See you at 10"},
            "data": {"id": "7"},
        }
    }
    assert set(by_token) == {"device-a", "device-b"}


@pytest.mark.django_db
def test_an_unregistered_token_is_invalidated_and_an_outage_only_fails(fcm):
    fcm.expect_oneshot_request("/token", method="POST").respond_with_json(
        {"access_token": "ya29.test-token", "expires_in": 3600}
    )

    def answer(request):
        if request.json["message"]["token"] == "device-gone":
            return Response(json.dumps(fcm_error(404, "UNREGISTERED")), status=404)
        return Response(json.dumps(fcm_error(503, "UNAVAILABLE")), status=503)

    fcm.expect_request(SEND, method="POST").respond_with_handler(answer)
    user = UserFactory(username="pia")
    gone = PushToken.objects.create(user=user, token="device-gone")
    kept = PushToken.objects.create(user=user, token="device-kept")
    counts = push_send(user_id=user.pk, title="t", body="b")
    assert counts == {"sent": 0, "failed": 2, "invalidated": 1}
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.valid, kept.valid) == (False, True)


@pytest.mark.django_db
def test_a_token_endpoint_that_does_not_answer_fails_the_send_not_the_caller(fcm):
    fcm.expect_oneshot_request("/token", method="POST").respond_with_data("nope", status=500)
    user = UserFactory(username="pia")
    PushToken.objects.create(user=user, token="device-a")
    assert push_send(user_id=user.pk, title="t", body="b") == {
        "sent": 0,
        "failed": 1,
        "invalidated": 0,
    }
    assert not [r for r, _ in fcm.log if r.path == SEND]
