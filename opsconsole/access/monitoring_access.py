"""Who may read monitoring detail: `/metrics` and readyz's per-component details.

A scraper presents `Authorization: Bearer <METRICS_BEARER_TOKEN>` or comes from an address
in METRICS_ALLOWED_CIDRS; a person is signed-in staff. Anyone else gets the overall status
and each component's status only (what a load balancer needs), never error text.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest

from opsconsole.http.client_address import client_ip


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def has_metrics_token(request: HttpRequest) -> bool:
    expected = settings.METRICS_BEARER_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), expected.encode())


def from_allowed_network(request: HttpRequest) -> bool:
    """Judged on the client's address: behind a load balancer REMOTE_ADDR is the balancer's,
    and a balancer inside METRICS_ALLOWED_CIDRS would let everyone through."""
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in net for net in _networks(tuple(settings.METRICS_ALLOWED_CIDRS)))


def may_scrape_metrics(request: HttpRequest) -> bool:
    return has_metrics_token(request) or from_allowed_network(request)


def may_see_health_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    staff = bool(user is not None and user.is_authenticated and user.is_staff)
    return staff or may_scrape_metrics(request)
