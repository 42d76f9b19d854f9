from __future__ import annotations

import pytest

from notifications.adapters import HttpChannel, OutboundMessage, SandboxChannel

MESSAGE = OutboundMessage(
    channel="email", to="ana@example.test", template="t", context={"a": 1}, idempotency_key="k-1"
)


def channel(httpserver, timeout: float = 1.0) -> HttpChannel:
    return HttpChannel(
        channel="email", url=httpserver.url_for("/send"), api_key="s3cret", timeout_seconds=timeout
    )


@pytest.mark.smoke
def test_a_202_is_sent_with_the_provider_id(httpserver):
    httpserver.expect_request("/send", method="POST").respond_with_json({"id": "m-9"}, status=202)
    result = channel(httpserver).send(MESSAGE)
    assert (result.ok, result.provider_message_id, result.http_status) == (True, "m-9", 202)
    request, _ = httpserver.log[0]
    assert request.json == {"to": "ana@example.test", "template": "t", "context": {"a": 1}}
    assert request.headers["Idempotency-Key"] == "k-1"
    assert request.headers["Authorization"] == "Bearer s3cret"


@pytest.mark.smoke
def test_a_429_carries_retry_after(httpserver):
    httpserver.expect_request("/send").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "30"}
    )
    result = channel(httpserver).send(MESSAGE)
    assert (result.ok, result.failure_code, result.retry_after_seconds) == (False, "http_429", 30)


@pytest.mark.smoke
def test_a_5xx_and_a_timeout_are_failures_not_exceptions(hanging_handler, httpserver):
    httpserver.expect_oneshot_request("/send").respond_with_data("boom", status=500)
    assert channel(httpserver).send(MESSAGE).failure_code == "http_500"

    httpserver.expect_request("/send").respond_with_handler(hanging_handler(1.0))
    assert channel(httpserver, timeout=0.2).send(MESSAGE).failure_code == "read_timeout"


@pytest.mark.smoke
def test_a_2xx_with_a_garbage_body_is_still_sent(httpserver):
    httpserver.expect_request("/send").respond_with_data("<<not json>>", status=200)
    result = channel(httpserver).send(MESSAGE)
    assert (result.ok, result.provider_message_id) == (True, "")


@pytest.mark.smoke
def test_the_sandbox_records_instead_of_sending():
    sandbox = SandboxChannel(channel="sms")
    result = sandbox.send(MESSAGE)
    assert result.ok and result.provider == "sandbox"
    assert list(sandbox.outbox) == [MESSAGE]
