"""Outside providers and how each one is set up: configured, switched off on purpose, the
sandbox, or missing.

Production never fakes. A provider that is not configured is `missing` unless the explicit
sandbox mode (PROVIDERS_SANDBOX=true, which `make run` and the tests set) stands in for it. A
missing money provider (Stripe, the checkout provider) fails closed: calls answer 503 and
workers park their rows with PROVIDER_NOT_CONFIGURED; readyz shows it `error`. A missing message
channel fails open (docs/runbooks/bookings-payments-notifications.md): the business action
succeeds, the message is parked with PROVIDER_NOT_CONFIGURED, never marked sent; readyz shows it
`degraded`. A channel switched off on purpose (`SMS_PROVIDER=none`) is not an error: its
messages are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core import checks

from opsconsole.monitoring.health import ComponentHealth, register_component
from opsconsole.outbound.guard import WEB_TIMEOUT_MARGIN_SECONDS

PROVIDER_NOT_CONFIGURED = "PROVIDER_NOT_CONFIGURED"
CHANNEL_SWITCHED_OFF = "CHANNEL_SWITCHED_OFF"


class Kind(StrEnum):
    MONEY = "money"  # fails closed
    MESSAGE = "message"  # fails open


class Mode(StrEnum):
    CONFIGURED = "configured"
    SANDBOX = "sandbox"
    OFF = "off"
    MISSING = "missing"


@dataclass(frozen=True)
class Provider:
    name: str
    kind: Kind
    # The variables it needs and their current values (read when asked: tests and
    # deployments change settings after start).
    required: Callable[[], dict[str, str]]
    # Where a deployment says "off" on purpose (returns True), if it can.
    switched_off: Callable[[], bool] | None = None

    def missing_settings(self) -> list[str]:
        return [name for name, value in self.required().items() if not value]

    def mode(self) -> Mode:
        if self.switched_off is not None and self.switched_off():
            return Mode.OFF
        if not self.missing_settings():
            return Mode.CONFIGURED
        return Mode.SANDBOX if settings.PROVIDERS_SANDBOX else Mode.MISSING

    def not_configured_detail(self) -> str:
        return f"{self.name} is not configured: set {', '.join(self.missing_settings())}"

    def health(self) -> ComponentHealth:
        mode = self.mode()
        details: dict[str, object] = {"mode": mode.value, "kind": self.kind.value}
        if mode != Mode.MISSING:
            return ComponentHealth("ready", details)
        details["missing"] = self.missing_settings()
        return ComponentHealth("error" if self.kind == Kind.MONEY else "degraded", details)


_providers: dict[str, Provider] = {}


def register_provider(provider: Provider) -> Provider:
    """Declare a provider: it gets a readyz component `provider_<name>` and a system check."""
    _providers[provider.name] = provider
    register_component(f"provider_{provider.name}", provider.health)
    return provider


def provider(name: str) -> Provider:
    return _providers[name]


def registered_providers() -> list[Provider]:
    return list(_providers.values())


def sandbox_enabled() -> bool:
    return bool(settings.PROVIDERS_SANDBOX)


@checks.register("providers", deploy=False)
def check_providers_configured(app_configs: object = None, **kwargs: object) -> list:
    """Name the variables a deployment forgot (the sandbox and switched-off ones are fine)."""
    found = []
    for item in registered_providers():
        if item.mode() != Mode.MISSING:
            continue
        consequence = (
            "its calls answer 503 and its work is parked"
            if item.kind == Kind.MONEY
            else "its messages are parked, never sent"
        )
        found.append(
            checks.Warning(
                f"{item.not_configured_detail()}; until then {consequence}.",
                hint="Set the variables, switch the channel off on purpose where it can be "
                "(e.g. SMS_PROVIDER=none), or run PROVIDERS_SANDBOX=true outside production.",
                id=f"opsconsole.W1{list(_providers).index(item.name):02d}",
                obj=f"provider {item.name}",
            )
        )
    return found


@checks.register("providers")
def check_web_timeout_covers_provider_calls(app_configs: object = None, **kwargs: object) -> list:
    """A request's provider calls are each cut at PROVIDER_WEB_TIMEOUT_SECONDS and stop when
    the request's budget is spent; gunicorn must allow at least one call and the margin."""
    needed = settings.PROVIDER_WEB_TIMEOUT_SECONDS + WEB_TIMEOUT_MARGIN_SECONDS
    if needed <= settings.WEB_REQUEST_TIMEOUT_SECONDS:
        return []
    return [
        checks.Error(
            f"GUNICORN_TIMEOUT={settings.WEB_REQUEST_TIMEOUT_SECONDS}s leaves no room for one "
            f"provider call in a request (PROVIDER_WEB_TIMEOUT_SECONDS="
            f"{settings.PROVIDER_WEB_TIMEOUT_SECONDS}s + {WEB_TIMEOUT_MARGIN_SECONDS}s): gunicorn "
            "would kill the worker in the middle of a call.",
            hint="Raise GUNICORN_TIMEOUT or lower PROVIDER_WEB_TIMEOUT_SECONDS.",
            id="opsconsole.E100",
        )
    ]
