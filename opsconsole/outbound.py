"""One outbound HTTP call, measured and classified, for every provider adapter.

Adapters never raise on a provider's failure: they return what came back (an HTTP status, or
a transport error class such as `read_timeout`), so the caller's RetryPolicy decides.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from opsconsole.retry import network_error_class

SNAPSHOT_BODY_LIMIT = 4096
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "x-request-id")


@dataclass(frozen=True)
class OutboundResult:
    """What came back: an HTTP status, or a transport error class (never both)."""

    duration_ms: int
    http_status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    body_truncated: bool = False
    error_class: str = ""
    error_detail: str = ""

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    @property
    def failure_code(self) -> str:
        """A stable label for the failure: `http_503`, `read_timeout`, ... ("" when ok)."""
        if self.ok:
            return ""
        return self.error_class if self.http_status is None else f"http_{self.http_status}"

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, or {} when it is not one (garbage is not an error here)."""
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

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


_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """One pooled client per process: building a client (its TLS context) per call costs
    tens of milliseconds, more than the call itself to a nearby provider. Forked workers
    get their own, since a pool must not cross a fork."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.get(pid)
            if client is None:
                client = httpx.Client(
                    follow_redirects=False,
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                )
                _clients[pid] = client
    return client


def post_json(
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str],
    timeout_seconds: float,
    form: dict[str, str] | None = None,
) -> OutboundResult:
    """POST `body` as JSON, or `form` form-encoded (Stripe's API style) when given."""
    started = time.perf_counter()
    client = shared_client()
    try:
        if form is not None:
            response = client.post(url, data=form, headers=headers, timeout=timeout_seconds)
        else:
            response = client.post(url, json=body, headers=headers, timeout=timeout_seconds)
        raw = response.content
    except httpx.HTTPError as exc:
        return OutboundResult(
            duration_ms=_elapsed_ms(started),
            error_class=network_error_class(exc),
            error_detail=f"{type(exc).__name__}: {exc}"[:1000],
        )
    text = raw[:SNAPSHOT_BODY_LIMIT].decode("utf-8", errors="replace")
    return OutboundResult(
        duration_ms=_elapsed_ms(started),
        http_status=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() in KEPT_RESPONSE_HEADERS},
        body=text,
        body_truncated=len(raw) > SNAPSHOT_BODY_LIMIT,
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
