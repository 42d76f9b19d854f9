"""The caller's address, the one answer for lockouts (django-axes), rate limits, monitoring
access and anything else that keys on who is calling.

Behind a load balancer REMOTE_ADDR is the balancer's, the same for every client: keyed on
it, five bad passwords would lock an operator out for everyone, and a balancer inside
METRICS_ALLOWED_CIDRS would open /metrics to the world. X-Forwarded-For names the client,
but anyone can send one, so it is believed only as far as TRUSTED_PROXIES vouch for it: the
list is read from the right (each proxy appends the address it saw), skipping the trusted
proxies' own entries, and the first address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _parsed(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # one client, one key, whichever socket family it came on
    return address


def is_trusted_proxy(address: Address) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: Any) -> str:
    """The client's address: REMOTE_ADDR, unless that peer is a trusted proxy; then the
    rightmost X-Forwarded-For entry that is not one ("" when there is no address at all).
    An entry a trusted proxy wrote that is no address ends the walk at that proxy."""
    peer_text = request.META.get("REMOTE_ADDR") or ""
    peer = _parsed(peer_text)
    if peer is None:
        return peer_text
    if not settings.TRUSTED_PROXIES or not is_trusted_proxy(peer):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    nearest = peer
    for entry in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = _parsed(entry)
        if address is None:
            break
        if not is_trusted_proxy(address):
            return str(address)
        nearest = address
    # Every hop was a trusted proxy (a proxy's own request): the farthest one is the caller.
    return str(nearest)
