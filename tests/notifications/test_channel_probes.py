"""The integrations status asks each configured channel provider itself: a cheap
authenticated read as the provider documents one; red when it refuses or does not answer."""

from __future__ import annotations

import pytest

from notifications import push
from tests.notifications.providers import service_account

STATUS = "/api/integrations/status?force=true"


def channel_status(client, channel: str) -> dict:
    body = client.get(STATUS).json()
    return {item["name"]: item for item in body["integrations"]}[f"{channel}_channel"]


def use(settings, channel: str, provider_name: str) -> None:
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        channel: {"url": "", "api_key": "", "provider": provider_name},
    }


@pytest.mark.django_db
def test_resend_is_asked_for_its_domains_with_the_key(httpserver, settings, operator_client):
    use(settings, "email", "anymail")
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "RESEND_API_KEY": "re_key",
        "RESEND_API_URL": httpserver.url_for("/"),
    }
    httpserver.expect_oneshot_request("/domains", method="GET").respond_with_json({"data": []})
    assert channel_status(operator_client, "email")["status"] == "green"
    request, _ = httpserver.log[-1]
    assert request.headers["Authorization"] == "Bearer re_key"
    httpserver.expect_oneshot_request("/domains", method="GET").respond_with_json(
        {"message": "API key is invalid"}, status=401
    )
    refused = channel_status(operator_client, "email")
    assert (refused["status"], refused["detail"]) == ("red", "the provider refused the credentials")


@pytest.mark.django_db
def test_twilio_and_whatsapp_are_asked_for_their_account(httpserver, settings, operator_client):
    use(settings, "sms", "twilio")
    use(settings, "whatsapp", "cloud_api")
    base = httpserver.url_for("/").rstrip("/")
    settings.TWILIO = {
        "ACCOUNT_SID": "AC1",
        "AUTH_TOKEN": "t",
        "FROM_NUMBER": "+1",
        "API_BASE": base,
    }
    settings.WHATSAPP = {
        "PHONE_NUMBER_ID": "42",
        "ACCESS_TOKEN": "EAAG",
        "API_BASE": base,
        "API_VERSION": "v21.0",
        "LANGUAGE": "en",
    }
    httpserver.expect_request("/2010-04-01/Accounts/AC1.json", method="GET").respond_with_json(
        {"sid": "AC1", "status": "active"}
    )
    httpserver.expect_request("/v21.0/42", method="GET").respond_with_data("down", status=503)
    assert channel_status(operator_client, "sms")["status"] == "green"
    whatsapp = channel_status(operator_client, "whatsapp")
    assert (whatsapp["status"], whatsapp["detail"]) == ("red", "the provider answered 503")
    twilio_call = next(r for r, _ in httpserver.log if r.path.endswith("AC1.json"))
    assert twilio_call.authorization.username == "AC1"


@pytest.mark.django_db
def test_fcm_is_green_when_its_token_is_issued(httpserver, settings, operator_client):
    use(settings, "push", "fcm")
    settings.FCM = {
        "PROJECT_ID": "demo-project",
        "SERVICE_ACCOUNT": service_account(httpserver.url_for("/token")),
        "API_BASE": httpserver.url_for("/").rstrip("/"),
    }
    push._credentials.clear()
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_data("no", status=500)
    assert channel_status(operator_client, "push")["status"] == "red"
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_json(
        {"access_token": "ya29.ok", "expires_in": 3600}
    )
    assert channel_status(operator_client, "push")["detail"] == "token issued"


@pytest.mark.django_db
def test_a_generic_http_channel_is_asked_at_its_endpoint(httpserver, settings, operator_client):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "sms": {"url": httpserver.url_for("/sms"), "api_key": "sms_key", "provider": "http"},
    }
    httpserver.expect_oneshot_request("/sms", method="GET").respond_with_json({"ok": True})
    assert channel_status(operator_client, "sms")["status"] == "green"
    request, _ = httpserver.log[-1]
    assert request.headers["Authorization"] == "Bearer sms_key"
    httpserver.expect_oneshot_request("/sms", method="GET").respond_with_data("", status=502)
    down = channel_status(operator_client, "sms")
    assert (down["status"], down["detail"]) == ("red", "The sms endpoint answered 502")
