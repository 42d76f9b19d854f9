"""The channels' entries in the integrations status (docs/runbooks/voucher-preview-failures.md): a
provider that is set up is asked with a cheap authenticated read, as each documents one; the
result is cached a minute."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from notifications.adapters import channel_provider_named
from opsconsole.outbound.integration_status import ProbeResult, generic_endpoint_read
from opsconsole.outbound.providers import Mode, provider


def channel_probe(channel: str) -> Callable[[], ProbeResult]:
    def probe() -> ProbeResult:
        mode = provider(channel).mode()
        if mode == Mode.MISSING:
            return ProbeResult("red", provider(channel).not_configured_detail())
        if mode == Mode.SANDBOX:
            return ProbeResult("amber", "sandbox (records, sends nothing)")
        if mode == Mode.OFF:
            return ProbeResult("green", "switched off on purpose")
        config = settings.NOTIFICATION_CHANNELS.get(channel, {})
        specific = channel_provider_named(config.get("provider", ""))
        if specific is None:
            return generic_endpoint_read(
                config["url"], api_key=config.get("api_key", ""), who=f"The {channel} endpoint"
            )
        return specific.probe()

    return probe
