"""The outside world for integration deliveries: one HTTP POST per attempt, via httpx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

from opsconsole.outbound.guard import OutboundResult, post_json


@dataclass(frozen=True)
class DeliveryRequest:
    url: str
    body: Any
    headers: dict[str, str]
    # The body as sent: the signature covers these exact bytes.
    content: bytes = b""

    def snapshot(self) -> dict[str, Any]:
        return {"method": "POST", "url": self.url, "headers": self.headers, "body": self.body}


# Deliveries keep the platform's outbound result shape (status or error class, snapshot).
DeliveryResult = OutboundResult


class DeliveryAdapter(Protocol):
    def deliver(self, request: DeliveryRequest) -> DeliveryResult: ...


class HttpDeliveryAdapter:
    def __init__(self, *, timeout_seconds: float | None = None) -> None:
        self.timeout = timeout_seconds or settings.INTEGRATION_HTTP_TIMEOUT_SECONDS

    def deliver(self, request: DeliveryRequest) -> DeliveryResult:
        return post_json(
            request.url,
            body=request.body,
            raw=request.content or None,
            headers=request.headers,
            timeout_seconds=self.timeout,
        )


def default_adapter() -> DeliveryAdapter:
    return HttpDeliveryAdapter()
