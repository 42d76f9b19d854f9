"""Message channels behind one small protocol: an HTTP provider; a sandbox that records,
only in PROVIDERS_SANDBOX mode; and a refusing channel for one not configured (messages
parked) or switched off with <CHANNEL>_PROVIDER=none (messages skipped).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Protocol

from django.conf import settings

from opsconsole.failures.retry import parse_retry_after
from opsconsole.outbound.guard import post_json, provider_timeout
from opsconsole.outbound.providers import (
    CHANNEL_SWITCHED_OFF,
    PROVIDER_NOT_CONFIGURED,
    Mode,
    provider,
)


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    to: str
    template: str
    context: dict[str, Any]
    # Sent to the provider so a retried send is not a second message.
    idempotency_key: str


@dataclass(frozen=True)
class SendResult:
    ok: bool
    provider: str
    provider_message_id: str = ""
    failure_code: str = ""
    failure_detail: str = ""
    http_status: int | None = None
    retry_after_seconds: float | None = None
    duration_ms: int = 0
    # The provider's own error code from the body, e.g. messaging/registration-token-not-registered.
    provider_error_code: str = ""
    response_body: str = ""
    # The provider refused the message itself (a bad address): another try gives the same.
    permanent: bool = False

    @property
    def retryable(self) -> bool:
        """408, 429, 5xx and transport errors are worth another try; other answers are not,
        nor is a channel that is not configured or switched off (only people fix that)."""
        if self.ok or self.permanent:
            return False
        if self.failure_code in (PROVIDER_NOT_CONFIGURED, CHANNEL_SWITCHED_OFF):
            return False
        status = self.http_status
        return status is None or status in (408, 429) or status >= 500


class ChannelAdapter(Protocol):
    channel: str

    @property
    def provider(self) -> str: ...

    def send(self, message: OutboundMessage) -> SendResult: ...


@dataclass
class SandboxChannel:
    """Records instead of sending: development, demos and tests that need no provider."""

    channel: str
    provider: str = "sandbox"
    outbox: deque[OutboundMessage] = field(default_factory=lambda: deque(maxlen=1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self.outbox.append(message)
        return SendResult(
            ok=True, provider=self.provider, provider_message_id=f"sandbox-{uuid.uuid4().hex}"
        )


@dataclass
class HttpChannel:
    """POSTs {to, template, context} as JSON; any 2xx is sent, anything else is a failure."""

    channel: str
    url: str
    api_key: str = ""
    timeout_seconds: float = 10
    provider: str = "http"

    def send(self, message: OutboundMessage) -> SendResult:
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        result = post_json(
            self.url,
            body={"to": message.to, "template": message.template, "context": message.context},
            headers=headers,
            timeout_seconds=self.timeout_seconds,
        )
        if result.ok:
            message_id = result.json_body().get("id", "")
            return SendResult(
                ok=True,
                provider=self.provider,
                provider_message_id=str(message_id)[:200],
                http_status=result.http_status,
                duration_ms=result.duration_ms,
            )
        error = result.json_body().get("error")
        code = error.get("code") if isinstance(error, dict) else error
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=result.failure_code,
            failure_detail=(result.error_detail or result.body)[:1000],
            http_status=result.http_status,
            retry_after_seconds=parse_retry_after(result.headers.get("retry-after")),
            duration_ms=result.duration_ms,
            provider_error_code=str(code or "")[:200],
            response_body=result.body[:2000],
        )


_sandboxes: dict[str, SandboxChannel] = {}


def sandbox_channel(channel: str) -> SandboxChannel:
    """One sandbox per channel per process, so a shell can look at what was 'sent'."""
    return _sandboxes.setdefault(channel, SandboxChannel(channel=channel))


@dataclass
class RefusingChannel:
    """A channel that sends nothing and says why: not configured in production (the message is
    parked: it fails open, docs/runbooks/bookings-payments-notifications.md) or switched off on
    purpose (the message is skipped)."""

    channel: str
    failure_code: str
    detail: str
    provider: str = "none"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=self.failure_code,
            failure_detail=self.detail,
        )


@dataclass(frozen=True)
class ChannelProvider:
    """A provider a channel can name in <CHANNEL>_PROVIDER: how to send through it, what it
    needs before it can (for the provider's mode and system check) and its status probe."""

    name: str
    adapter: Callable[[], ChannelAdapter]
    required: Callable[[], dict[str, str]]
    probe: Callable[[], Any]  # -> opsconsole.outbound.integration_status.ProbeResult


# Each lives beside its adapter; imported when named, so an unused SDK is never loaded.
CHANNEL_PROVIDER_MODULES = {
    "anymail": "notifications.email",
    "twilio": "notifications.sms",
    "cloud_api": "notifications.whatsapp",
    "fcm": "notifications.push",
}


def channel_provider_named(name: str) -> ChannelProvider | None:
    """The specific provider `name` (None for the generic JSON endpoint, "" or http)."""
    module = CHANNEL_PROVIDER_MODULES.get(name)
    return import_module(module).PROVIDER if module else None


def channel_adapter(channel: str) -> ChannelAdapter:
    config = settings.NOTIFICATION_CHANNELS.get(channel, {})
    mode = provider(channel).mode()
    if mode == Mode.OFF:
        return RefusingChannel(
            channel, CHANNEL_SWITCHED_OFF, f"{channel.upper()}_PROVIDER=none: switched off"
        )
    if mode == Mode.SANDBOX:
        return sandbox_channel(channel)
    if mode == Mode.MISSING:
        return RefusingChannel(
            channel, PROVIDER_NOT_CONFIGURED, provider(channel).not_configured_detail()
        )
    if (specific := channel_provider_named(config.get("provider", ""))) is not None:
        return specific.adapter()
    return HttpChannel(
        channel=channel,
        url=config["url"],
        api_key=config.get("api_key", ""),
        timeout_seconds=provider_timeout(settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS),
    )
