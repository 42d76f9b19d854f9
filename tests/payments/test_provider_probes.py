"""The integrations status asks Stripe itself: a cheap authenticated read, cached for a
minute; red when Stripe refuses the key or does not answer."""

from __future__ import annotations

import pytest

STATUS = "/api/integrations/status"


def stripe_status(client, *, force: bool) -> dict:
    body = client.get(STATUS + ("?force=true" if force else "")).json()
    return {item["name"]: item for item in body["integrations"]}["stripe"]


@pytest.fixture
def stripe_api(httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_probe"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_probe"
    return httpserver


@pytest.mark.django_db
def test_stripe_is_green_only_when_it_answers_the_key(stripe_api, operator_client, settings):
    stripe_api.expect_oneshot_request("/v1/balance", method="GET").respond_with_json(
        {"object": "balance", "available": []}
    )
    green = stripe_status(operator_client, force=True)
    assert (green["status"], green["detail"]) == ("green", "answers")
    request, _ = stripe_api.log[-1]
    assert request.headers["Authorization"] == "Bearer sk_test_probe"
    assert request.headers["Stripe-Version"] == settings.STRIPE_API_VERSION

    # Within the minute the colour is the stored one: Stripe is not asked again.
    asked = len(stripe_api.log)
    assert stripe_status(operator_client, force=False)["status"] == "green"
    assert len(stripe_api.log) == asked

    stripe_api.expect_oneshot_request("/v1/balance", method="GET").respond_with_json(
        {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}, status=401
    )
    refused = stripe_status(operator_client, force=True)
    assert (refused["status"], refused["detail"]) == ("red", "Stripe refused the secret key")

    stripe_api.expect_oneshot_request("/v1/balance", method="GET").respond_with_data(
        "upstream", status=503
    )
    assert stripe_status(operator_client, force=True)["detail"] == "Stripe answered 503"


@pytest.mark.django_db
def test_stripe_that_does_not_answer_is_red(operator_client, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:1"  # nothing listens there
    settings.STRIPE_SECRET_KEY = "sk_test_probe"
    down = stripe_status(operator_client, force=True)
    assert down["status"] == "red"
    assert down["detail"].startswith("no answer")


@pytest.mark.django_db
def test_the_generic_checkout_endpoint_is_asked_with_its_key(httpserver, operator_client, settings):
    """Our generic JSON checkout provider documents no read: the probe asks the endpoint
    itself; a POST-only 405 still means it is there, 401 that it refused the key."""
    settings.PAYMENTS_CHECKOUT_URL = httpserver.url_for("/checkout")
    settings.PAYMENTS_CHECKOUT_API_KEY = "ck_probe"

    def checkout_status() -> dict:
        body = operator_client.get(STATUS + "?force=true").json()
        return {item["name"]: item for item in body["integrations"]}["checkout_provider"]

    httpserver.expect_oneshot_request("/checkout", method="GET").respond_with_data("", status=405)
    assert checkout_status()["status"] == "green"
    request, _ = httpserver.log[-1]
    assert (request.method, request.headers["Authorization"]) == ("GET", "Bearer ck_probe")
    httpserver.expect_oneshot_request("/checkout", method="GET").respond_with_data("", status=401)
    refused = checkout_status()
    assert (refused["status"], refused["detail"]) == (
        "red",
        "The checkout provider refused the API key",
    )
    settings.PAYMENTS_CHECKOUT_URL = "http://127.0.0.1:1/checkout"  # nothing listens there
    assert checkout_status()["detail"].startswith("no answer")
