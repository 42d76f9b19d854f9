"""SMS through Twilio's library: its own HTTP client, bounded by our timeout (and aimed at
TWILIO_API_BASE when set), a body rendered from templates, and Twilio's answers mapped to
retry, throttle or give up (an invalid number is given up)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.template.loader import render_to_string
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifications.adapters import ChannelProvider, OutboundMessage, SendResult
from opsconsole.failures.retry import parse_retry_after
from opsconsole.outbound.guard import elapsed_ms, provider_timeout
from opsconsole.outbound.integration_status import ProbeResult, authenticated_read

TWILIO_ADDRESS = re.compile(r"^https://api\.twilio\.com")
# Twilio's codes for a number that can never receive this message.
INVALID_NUMBER_CODES = frozenset({21211, 21214, 21217, 21407, 21408, 21610, 21612, 21614})


def twilio_required() -> dict[str, str]:
    twilio = settings.TWILIO
    return {
        "TWILIO_ACCOUNT_SID": twilio["ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": twilio["AUTH_TOKEN"],
        "TWILIO_FROM_NUMBER": twilio["FROM_NUMBER"],
    }


class TwilioApiClient(TwilioHttpClient):
    """Twilio's HTTP client with our timeout, sent to TWILIO_API_BASE when that is set."""

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=False)
        self.api_base = api_base.rstrip("/")
        # The last answer's headers: Twilio's exceptions do not carry Retry-After.
        self.last_headers: dict[str, str] = {}

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        if self.api_base:
            url = TWILIO_ADDRESS.sub(self.api_base, url)
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = dict(response.headers or {})
        return response


def render_sms(template: str, context: dict) -> str:
    """The template's own text, or the generic one that names it and shows its context."""
    values = {**context, "template": template, "fields": context}
    names = [f"notifications/sms/{template}.txt", "notifications/sms/default.txt"]
    return render_to_string(names, values).strip()


@dataclass
class TwilioSmsChannel:
    channel: str = "sms"
    provider: str = "twilio"

    def send(self, message: OutboundMessage) -> SendResult:
        twilio = settings.TWILIO
        http = TwilioApiClient(
            api_base=twilio["API_BASE"],
            timeout=provider_timeout(settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS),
        )
        client = Client(twilio["ACCOUNT_SID"], twilio["AUTH_TOKEN"], http_client=http)
        started = time.perf_counter()
        try:
            sent = client.messages.create(
                to=message.to,
                from_=twilio["FROM_NUMBER"],
                body=render_sms(message.template, message.context),
            )
        except TwilioRestException as exc:
            return self._refused(exc, http, started)
        except requests.RequestException as exc:  # timeout, refused connection
            return self._failure("network_error", f"{type(exc).__name__}: {exc}", started)
        except ValueError as exc:  # an answer that is not Twilio's JSON
            return self._failure("invalid_response", str(exc), started)
        if not sent.sid:  # accepted without a message id: nothing says it was queued
            return self._failure("invalid_response", "no message sid in Twilio's answer", started)
        return SendResult(
            ok=True,
            provider=self.provider,
            provider_message_id=str(sent.sid)[:200],
            http_status=201,
            duration_ms=elapsed_ms(started),
        )

    def _refused(self, exc: TwilioRestException, http: TwilioApiClient, started: float):
        invalid = exc.code in INVALID_NUMBER_CODES
        headers = {name.lower(): value for name, value in http.last_headers.items()}
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code="invalid_number" if invalid else f"HTTP_{exc.status}",
            failure_detail=str(exc.msg)[:1000],
            http_status=exc.status,
            retry_after_seconds=parse_retry_after(headers.get("retry-after")),
            provider_error_code=str(exc.code or ""),
            duration_ms=elapsed_ms(started),
            permanent=invalid,
        )

    def _failure(self, code: str, detail: str, started: float) -> SendResult:
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=code,
            failure_detail=detail[:1000],
            duration_ms=elapsed_ms(started),
        )


def twilio_read() -> ProbeResult:
    twilio = settings.TWILIO
    base = (twilio["API_BASE"] or "https://api.twilio.com").rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{twilio['ACCOUNT_SID']}.json"
    return authenticated_read(url, auth=(twilio["ACCOUNT_SID"], twilio["AUTH_TOKEN"]))


PROVIDER = ChannelProvider(
    "twilio", adapter=TwilioSmsChannel, required=twilio_required, probe=twilio_read
)
