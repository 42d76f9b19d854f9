"""DRF throttles whose rates are read from settings at call time (so they follow the
environment and test overrides) and whose identity is the principal: a user by id, a
station by its station id, anyone else by the client's address (opsconsole.http.client_address,
never DRF's own reading of X-Forwarded-For). The counters are rows in the database
(opsconsole.access.rate_counters: one upsert per hit), so every web process counts together and
no concurrent hit is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from opsconsole.access.principals import principal_key
from opsconsole.access.rate_counters import Hit, rate_hit, rate_hits
from opsconsole.http.client_address import client_ip

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes from settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _ClientAddressIdent:
    """DRF's get_ident trusts X-Forwarded-For as far as NUM_PROXIES says, for any peer; the
    address here is the one the lockouts and monitoring access use."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class _SettingsRateThrottle(_ClientAddressIdent, SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope or "")

    hit: Hit | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        # Rates are read per request, not once at import.
        self.rate = self.get_rate()
        num_requests, duration = self.parse_rate(self.rate)
        self.num_requests, self.duration = num_requests, duration
        if num_requests is None or duration is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.hit = rate_hit(key, duration)
        return self.hit.allowed(num_requests)

    def wait(self) -> float | None:
        if self.hit is None or self.num_requests is None:
            return None
        return self.hit.wait_seconds(self.num_requests)


def _principal(request: Request) -> str | None:
    return principal_key(request.user)


class AnonymousRateThrottle(_SettingsRateThrottle):
    """Per address. Run by `AnonymousRateLimit` at the end of authentication, where the
    caller is known to have brought no credentials (request.user is not set yet)."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView | None) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _parse_rate(rate: str) -> tuple[int, int]:
    """'1200/min' -> (1200, 60), as DRF reads rates."""
    count, period = rate.split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


class PrincipalRateThrottle(_ClientAddressIdent, BaseThrottle):
    """The caller's overall rate ("user", per user or station) and the view's own limit
    (`throttle_scope`, per principal: e.g. 30 redemptions a minute per station, whoever
    holds the station's credentials), counted together: limits of the same window length
    are one statement, not one per limit. Every limit counts the hit, refused or not."""

    def __init__(self) -> None:
        self.refused: list[tuple[Hit, int]] = []

    def allow_request(self, request: Request, view: APIView) -> bool:
        principal = _principal(request)
        limits: list[tuple[str, str]] = []  # (scope, who)
        if principal is not None:
            limits.append(("user", principal))
        scope = getattr(view, "throttle_scope", None)
        if scope:
            limits.append((scope, principal or self.get_ident(request)))
        by_duration: dict[int, list[tuple[str, int]]] = {}
        for scope_name, who in limits:
            rate = settings.API_THROTTLE_RATES.get(scope_name)
            if rate is None:
                continue
            allowed, duration = _parse_rate(rate)
            key = SimpleRateThrottle.cache_format % {"scope": scope_name, "ident": who}
            by_duration.setdefault(duration, []).append((key, allowed))
        self.refused = []
        for duration, counters in by_duration.items():
            hits = rate_hits([key for key, _ in counters], duration)
            self.refused += [
                (hits[key], allowed) for key, allowed in counters if not hits[key].allowed(allowed)
            ]
        return not self.refused

    def wait(self) -> float | None:
        return max((hit.wait_seconds(allowed) for hit, allowed in self.refused), default=None)
