"""The stand-in checkout provider and message channels: what they answer, what they got."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone


def checkout_answers(httpserver, *, token: str = "new") -> None:
    expires = (timezone.now() + timedelta(days=1)).isoformat()
    httpserver.expect_request("/checkout", method="POST").respond_with_json(
        {"url": f"https://checkout.example.test/pay/{token}", "expires_at": expires, "id": token}
    )


def channels_answer(httpserver, *, email_status: int = 202, sms_status: int = 202) -> None:
    httpserver.expect_request("/email", method="POST").respond_with_json(
        {"id": "em_1"}, status=email_status
    )
    httpserver.expect_request("/sms", method="POST").respond_with_json(
        {"id": "sms_1"}, status=sms_status
    )


def requests_to(httpserver, path: str) -> list:
    return [request for request, _ in httpserver.log if request.path == path]
