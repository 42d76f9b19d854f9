"""RetryPolicy: exponential backoff with full jitter, a cap, and Retry-After honoured.

Retryable: HTTP 408, 429 and 5xx, and the configured transient network error classes.
Everything else fails at once.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
from django.utils import timezone

RETRYABLE_STATUSES = frozenset({408, 429})


class DestinationUnresolved(httpx.ConnectError):
    """A call not made because its destination's name did not resolve (opsconsole.outbound.guard
    checks every name before a call): a DNS failure like the HTTP client's own, retried."""


def network_error_class(exc: BaseException) -> str:
    """Name a transport failure with a stable code, e.g. `connect_timeout`: the same code
    whichever client made the call (httpx for the providers, aiohttp for deliveries)."""
    if isinstance(exc, httpx.ConnectTimeout | aiohttp.ConnectionTimeoutError):
        return "connect_timeout"
    if isinstance(exc, httpx.ReadTimeout | aiohttp.SocketTimeoutError | TimeoutError):
        return "read_timeout"
    if isinstance(exc, httpx.WriteTimeout):
        return "write_timeout"
    if isinstance(exc, httpx.PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, DestinationUnresolved | aiohttp.ClientConnectorDNSError):
        return "dns_failure"
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return "connection_refused" if refused else "connect_error"
    if isinstance(exc, httpx.ConnectError):
        message = str(exc).lower()
        if "name or service not known" in message or "nodename nor servname" in message:
            return "dns_failure"
        if "temporary failure in name resolution" in message:
            return "dns_failure"
        return "connection_refused" if "refused" in message else "connect_error"
    if isinstance(
        exc,
        httpx.ReadError
        | httpx.WriteError
        | aiohttp.ClientOSError
        | aiohttp.ServerDisconnectedError,
    ):
        return "connection_reset"
    if isinstance(
        exc, httpx.RemoteProtocolError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError
    ):
        return "remote_protocol_error"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | aiohttp.InvalidURL):
        return "invalid_url"
    return "network_error"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = now or timezone.now()
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    # Honour the provider's Retry-After, but never beyond this (a bogus header must not
    # park an item for a year).
    max_retry_after_seconds: float = 24 * 3600.0
    retryable_network_errors: Collection[str] = field(default_factory=frozenset)
    # The wait after the first failed attempt, when it differs from the exponential series
    # (refunds: 5 minutes, then exponential from base_seconds).
    first_delay_seconds: float | None = None
    # "full": uniform in [0, delay] (spreads a herd; a retry may come at once). "floor":
    # uniform in [delay, delay * 1.1] (never sooner than the policy's delay).
    jitter: str = "full"
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def is_retryable_status(self, status: int) -> bool:
        return status in RETRYABLE_STATUSES or 500 <= status <= 599

    def is_retryable_network_error(self, error_class: str) -> bool:
        return error_class in self.retryable_network_errors

    def backoff_seconds(self, attempt_count: int) -> float:
        """The wait after `attempt_count` failed attempts: base * 2**(n-1) capped (or the
        first delay, then base * 2**(n-2)), jittered as the policy says."""
        if self.first_delay_seconds is not None:
            if attempt_count <= 1:
                delay = self.first_delay_seconds
            else:
                delay = self.base_seconds * (2 ** (attempt_count - 2))
        else:
            delay = self.base_seconds * (2 ** max(0, attempt_count - 1))
        delay = min(self.cap_seconds, delay)
        if self.jitter == "floor":
            return delay + self.rng.uniform(0, delay * 0.1)
        return self.rng.uniform(0, delay)

    def delay_seconds(self, attempt_count: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_seconds)
        return self.backoff_seconds(attempt_count)

    def next_retry_at(
        self, attempt_count: int, *, retry_after: float | None = None, now: datetime | None = None
    ) -> datetime:
        now = now or timezone.now()
        return now + timedelta(seconds=self.delay_seconds(attempt_count, retry_after))

    def exhausted(self, attempt_count: int, max_attempts: int | None = None) -> bool:
        return attempt_count >= (max_attempts or self.max_attempts)
