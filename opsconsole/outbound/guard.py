"""One outbound HTTP call, measured and classified, for every provider adapter.

Adapters never raise on a provider's failure: they return what came back (an HTTP status, or
a transport error class such as `read_timeout`), so the caller's RetryPolicy decides.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from opsconsole.failures.retry import DestinationUnresolved, network_error_class
from opsconsole.http.context import web_deadline_var

SNAPSHOT_BODY_LIMIT = 4096


# What gunicorn's timeout must leave beyond the request's provider budget: the database
# writes and the response after the last call.
WEB_TIMEOUT_MARGIN_SECONDS = 5


def web_request_budget_seconds() -> float:
    """How long a request may spend, provider calls included, before gunicorn would kill it."""
    return max(1.0, settings.WEB_REQUEST_TIMEOUT_SECONDS - WEB_TIMEOUT_MARGIN_SECONDS)


def provider_timeout(configured_seconds: float) -> float:
    """A provider call made while answering a web request gets PROVIDER_WEB_TIMEOUT_SECONDS
    at most, and never more than the request has left, so a slow provider cannot hold a
    gunicorn worker past its timeout; workers keep the full one."""
    deadline = web_deadline_var.get()
    if deadline is None:
        return configured_seconds
    left = max(0.1, deadline - time.monotonic())
    return min(configured_seconds, settings.PROVIDER_WEB_TIMEOUT_SECONDS, left)


def web_time_left_for_a_provider_call() -> bool:
    """False once a request has less than one web-bounded provider call's time left: a loop
    over rows (an admin action on many sessions) stops there instead of being killed."""
    deadline = web_deadline_var.get()
    return deadline is None or deadline - time.monotonic() >= settings.PROVIDER_WEB_TIMEOUT_SECONDS


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


# The error class of a call refused before it left: the destination is not a public address.
ENDPOINT_NOT_ALLOWED = "endpoint_not_allowed"
# The error class of a call not made because its name did not resolve (a transport failure
# the retry policies treat as transient, as they would the HTTP client's own).
DNS_FAILURE = "dns_failure"
# Cloud metadata services answer on these even where they are not link-local.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "169.254.169.254"})


def _allowed_hosts() -> frozenset[str]:
    return frozenset(h.lower() for h in settings.OUTBOUND_ALLOWED_HOSTS)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _kind_of_address(address: IPAddress) -> str:
    """Why `address` is no public destination ("" when it is one). Only a globally routable
    address may be called: a deny-list of private ranges always missed one (100.64.0.0/10,
    where some clouds answer metadata; 6to4; benchmark and documentation ranges)."""
    for label, flagged in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flagged:
            return label
    # is_global alone: Python counts multicast and reserved space as global.
    return "" if address.is_global else "non-global"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and the network would deliver to: 6to4
    (2002::/16) and both Teredo addresses; a 6to4 relay takes 2002:a9fe:a9fe:: to
    169.254.169.254, whatever the IPv6 address itself is judged."""
    teredo = address.teredo or ()
    return [*([address.sixtofour] if address.sixtofour else []), *teredo]


def _address_refusal(address: IPAddress) -> str:
    """Why a call to `address` is refused ("" when it may go)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # ::ffff:a.b.c.d is the IPv4 address itself on a dual-stack socket: judged as one.
        address = address.ipv4_mapped
    judged: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        judged += _embedded_ipv4(address)
    for candidate in judged:
        kind = _kind_of_address(candidate)
        if kind:
            carried = "" if candidate is address else f" (carried in {address})"
            return f"{candidate}{carried} is a {kind} address"
    return ""


def _literal_address(host: str) -> IPAddress | None:
    """`host` as an address when it is written as one: the usual forms, and the legacy IPv4
    forms resolvers accept (2130706433, 0x7f.1, 127.1), which are no names to look up."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refusal_without_dns(host: str) -> str | None:
    """For a metadata name or a literal address: why it is refused ("" when it is not).
    None for a name, which only DNS can answer."""
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    address = _literal_address(host)
    return None if address is None else _address_refusal(address)


@dataclass(frozen=True)
class Destination:
    """Where a call may go: the URL to connect to, and for a name that was resolved and
    checked, the address it is pinned to (so DNS cannot change between check and connect)."""

    refusal: str = ""
    url: str = ""
    host_header: str = ""
    sni_hostname: str = ""
    # What a refusal is: ENDPOINT_NOT_ALLOWED (stays refused until the URL changes) or
    # DNS_FAILURE (the name did not resolve now; the caller retries later).
    error_class: str = ENDPOINT_NOT_ALLOWED

    @property
    def retryable(self) -> bool:
        return bool(self.refusal) and self.error_class == DNS_FAILURE


def checked_destination(url: str) -> Destination:
    """Check where a call to `url` would go, at call time, not only when the URL was saved:
    DNS can point a once-public name at 127.0.0.1 or the metadata service later. A name is
    resolved once, every address it has is checked, and the call is pinned to the first one
    (Host header and TLS name stay the original's). Hosts in OUTBOUND_ALLOWED_HOSTS (the
    local stand-in endpoints of tests, benchmarks and the demo) skip the check.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Destination(refusal="the URL cannot be parsed")
    if parts.scheme not in {"http", "https"} or not host:
        return Destination(refusal="only http(s) URLs with a host are called")
    if host in _allowed_hosts():
        return Destination(url=url)
    known = _refusal_without_dns(host)
    if known is not None:
        return Destination(refusal=known, url=url)
    try:
        resolved = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except UnicodeError:
        return Destination(refusal=f"{host} is not a valid DNS name", url=url)
    except OSError as exc:
        # Never the call on the name as written: the HTTP client would resolve it again,
        # unchecked, and the second answer may be 127.0.0.1. Refused for now, retried later.
        return Destination(
            refusal=f"{host} did not resolve: {exc}", url=url, error_class=DNS_FAILURE
        )
    addresses = [ipaddress.ip_address(str(sockaddr[0]).split("%")[0]) for *_, sockaddr in resolved]
    if not addresses:
        return Destination(refusal=f"{host} has no address", url=url, error_class=DNS_FAILURE)
    for address in addresses:
        reason = _address_refusal(address)
        if reason:
            return Destination(refusal=f"{host} resolves to {reason}")
    pinned = addresses[0]
    netloc = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return Destination(
        url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        host_header=parts.netloc.rsplit("@", 1)[-1],
        sni_hostname=host if parts.scheme == "https" else "",
    )


def endpoint_url_problem(url: str) -> str:
    """Why `url` may not be saved as a delivery endpoint (empty when it may).

    Production endpoints are https; plain http is accepted with DEBUG on or for the
    allow-listed local hosts. An address that would be refused at call time is refused now.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        return "endpoint_url is not a valid URL"
    if parts.scheme not in {"http", "https"} or not host:
        return "endpoint_url must be an http(s) URL with a host"
    allowed = host in _allowed_hosts()
    if parts.scheme != "https" and not (settings.DEBUG or allowed):
        return "endpoint_url must use https"
    if parts.username or parts.password:
        return "endpoint_url must not carry credentials; use the integration's secret"
    if allowed:
        return ""
    # A name is checked again at every call; what is known without DNS is refused now.
    reason = _refusal_without_dns(host)
    return f"endpoint_url is not allowed: {reason}" if reason else ""


def refused_result(reason: str, error_class: str = ENDPOINT_NOT_ALLOWED) -> OutboundResult:
    return OutboundResult(duration_ms=0, error_class=error_class, error_detail=reason)


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


class DestinationRefused(Exception):
    """The call was not made: its destination is not a public address (the reason)."""


def guarded_post(
    url: str, *, timeout_seconds: float, headers: dict[str, str] | None = None, **content: Any
) -> httpx.Response:
    """The one way anything here POSTs to the outside world: the destination checked and
    pinned, then the pooled client. Raises DestinationRefused, or httpx's errors."""
    return guarded_request("POST", url, timeout_seconds=timeout_seconds, headers=headers, **content)


def guarded_request(
    method: str,
    url: str,
    *,
    timeout_seconds: float,
    headers: dict[str, str] | None = None,
    **content: Any,
) -> httpx.Response:
    """Any call to the outside world (a probe's GET, a provider's POST), the same way."""
    destination = checked_destination(url)
    if destination.retryable:
        raise DestinationUnresolved(destination.refusal)
    if destination.refusal:
        raise DestinationRefused(destination.refusal)
    headers = dict(headers or {})
    if destination.host_header:
        headers["Host"] = destination.host_header
    extensions = {"sni_hostname": destination.sni_hostname} if destination.sni_hostname else {}
    return shared_client().request(
        method,
        destination.url,
        headers=headers,
        timeout=timeout_seconds,
        extensions=extensions,
        **content,
    )


def post_json(
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str],
    timeout_seconds: float,
    form: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> OutboundResult:
    """POST `body` as JSON, or `form` form-encoded (Stripe's API style), or `raw` bytes (a
    JSON body already serialized, because a signature covers those exact bytes)."""
    if raw is not None:
        content: dict[str, Any] = {"content": raw}
        headers = {"Content-Type": "application/json", **headers}
    else:
        content = {"data": form} if form is not None else {"json": body}
    started = time.perf_counter()
    try:
        response = guarded_post(url, timeout_seconds=timeout_seconds, headers=headers, **content)
        raw = response.content
    except DestinationRefused as exc:
        return refused_result(str(exc))
    except httpx.HTTPError as exc:
        return OutboundResult(
            duration_ms=elapsed_ms(started),
            error_class=network_error_class(exc),
            error_detail=f"{type(exc).__name__}: {exc}"[:1000],
        )
    text = raw[:SNAPSHOT_BODY_LIMIT].decode("utf-8", errors="replace")
    return OutboundResult(
        duration_ms=elapsed_ms(started),
        http_status=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() in KEPT_RESPONSE_HEADERS},
        body=text,
        body_truncated=len(raw) > SNAPSHOT_BODY_LIMIT,
    )


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return int((time.perf_counter() - started) * 1000)
