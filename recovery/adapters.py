"""The outside world for integration deliveries: one HTTP POST per attempt, via httpx."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.conf import settings

from opsconsole.retry import network_error_class

SNAPSHOT_BODY_LIMIT = 4096
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "x-request-id")


@dataclass(frozen=True)
class DeliveryRequest:
    url: str
    body: Any
    headers: dict[str, str]

    def snapshot(self) -> dict[str, Any]:
        return {"method": "POST", "url": self.url, "headers": self.headers, "body": self.body}


@dataclass(frozen=True)
class DeliveryResult:
    """What came back: an HTTP status, or a transport error class (never both)."""

    duration_ms: int
    http_status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    body_truncated: bool = False
    error_class: str = ""
    error_detail: str = ""

    def snapshot(self) -> dict[str, Any]:
        if self.http_status is None:
            return {
                "error": self.error_class,
                "detail": self.error_detail,
                "duration_ms": self.duration_ms,
            }
        return {
            "status": self.http_status,
            "headers": self.headers,
            "body": self.body,
            "body_truncated": self.body_truncated,
            "duration_ms": self.duration_ms,
        }


class DeliveryAdapter(Protocol):
    def deliver(self, request: DeliveryRequest) -> DeliveryResult: ...


class HttpDeliveryAdapter:
    def __init__(self, *, timeout_seconds: float | None = None) -> None:
        self.timeout = timeout_seconds or settings.INTEGRATION_HTTP_TIMEOUT_SECONDS

    def deliver(self, request: DeliveryRequest) -> DeliveryResult:
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.post(request.url, json=request.body, headers=request.headers)
                raw = response.content
        except httpx.HTTPError as exc:
            return DeliveryResult(
                duration_ms=_elapsed_ms(started),
                error_class=network_error_class(exc),
                error_detail=f"{type(exc).__name__}: {exc}"[:1000],
            )
        text = raw[:SNAPSHOT_BODY_LIMIT].decode("utf-8", errors="replace")
        return DeliveryResult(
            duration_ms=_elapsed_ms(started),
            http_status=response.status_code,
            headers={
                k: v for k, v in response.headers.items() if k.lower() in KEPT_RESPONSE_HEADERS
            },
            body=text,
            body_truncated=len(raw) > SNAPSHOT_BODY_LIMIT,
        )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def default_adapter() -> DeliveryAdapter:
    return HttpDeliveryAdapter()
