"""DRF throttles whose rates are read from settings at call time (so they follow the
environment and test overrides) and whose identity is the principal: a user by id, a
station by its station id, anyone else by address. The counters are rows in the database
(opsconsole.rate_counters: one upsert per hit), so every web process counts together and
no concurrent hit is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from opsconsole.authentication import principal_key
from opsconsole.rate_counters import Hit, rate_hit

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes from settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    hit: Hit | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        # Rates are read per request, not once at import.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.hit = rate_hit(key, self.duration)
        return self.hit.allowed(self.num_requests)

    def wait(self) -> float | None:
        return None if self.hit is None else self.hit.wait_seconds(self.num_requests)


def _principal(request: Request) -> str | None:
    return principal_key(request.user)


class AnonymousRateThrottle(_SettingsRateThrottle):
    """Per address. Run by `AnonymousRateLimit` at the end of authentication, where the
    caller is known to have brought no credentials (request.user is not set yet)."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView | None) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthenticatedRateThrottle(_SettingsRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        principal = _principal(request)
        if principal is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": principal}


class ViewScopedRateThrottle(_SettingsRateThrottle):
    """A view's own limit (`throttle_scope`), per principal: e.g. 30 redemptions a minute
    per station, whoever holds the station's credentials."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = getattr(view, "throttle_scope", None)
        if not self.scope:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        ident = _principal(request) or self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
