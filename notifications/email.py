"""Email through django-anymail (Resend by default, or any ESP anymail speaks):
a from address, a subject and text and HTML bodies rendered from templates, the provider's
message id kept, and the provider's answers mapped to retry, throttle or give up."""

from __future__ import annotations

import time
from dataclasses import dataclass

from anymail.exceptions import AnymailError, AnymailRecipientsRefused, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from notifications.adapters import ChannelProvider, OutboundMessage, SendResult
from opsconsole.failures.retry import parse_retry_after
from opsconsole.outbound.guard import elapsed_ms
from opsconsole.outbound.integration_status import ProbeResult, authenticated_read


def anymail_required() -> dict[str, str]:
    """What the configured ESP needs before email can leave (for the provider's mode)."""
    if settings.ANYMAIL_ESP == "resend":
        return {"RESEND_API_KEY": str(settings.ANYMAIL.get("RESEND_API_KEY") or "")}
    keys = {name: str(value or "") for name, value in settings.ANYMAIL.items() if "KEY" in name}
    return keys or {"ANYMAIL": ""}


def render_email(template: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) from templates/notifications/email/<template>.{subject.txt,txt,
    html}, or the generic ones that name the template and show its context."""
    values = {**context, "template": template, "fields": context}

    def render(suffix: str) -> str:
        names = [f"notifications/email/{name}.{suffix}" for name in (template, "default")]
        return render_to_string(names, values)

    return render("subject.txt").strip(), render("txt"), render("html")


def email_backend_path() -> str:
    """Resend through our subclass that sends the Idempotency-Key; other ESPs as anymail has
    them (their APIs document no such header)."""
    if settings.ANYMAIL_ESP == "resend":
        return "notifications.resend.EmailBackend"
    return f"anymail.backends.{settings.ANYMAIL_ESP}.EmailBackend"


@dataclass
class AnymailEmailChannel:
    channel: str = "email"

    @property
    def provider(self) -> str:
        return f"anymail:{settings.ANYMAIL_ESP}"

    def send(self, message: OutboundMessage) -> SendResult:
        subject, text, html = render_email(message.template, message.context)
        email = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
            connection=get_connection(email_backend_path()),
        )
        email.idempotency_key = message.idempotency_key  # type: ignore[attr-defined]
        email.attach_alternative(html, "text/html")
        started = time.perf_counter()
        try:
            email.send()
        except AnymailRecipientsRefused as exc:
            return self._failure("recipient_refused", str(exc), started, permanent=True)
        except AnymailRequestsAPIError as exc:
            return self._api_failure(exc, started)
        except AnymailError as exc:
            return self._failure("provider_error", str(exc), started)
        status = email.anymail_status  # type: ignore[attr-defined]  # set by anymail on send
        if status.status and status.status <= {"rejected", "invalid"}:
            return self._failure(f"email_{'_'.join(sorted(status.status))}", "", started, True)
        return SendResult(
            ok=True,
            provider=self.provider,
            provider_message_id=str(status.message_id or "")[:200],
            duration_ms=elapsed_ms(started),
        )

    def _api_failure(self, exc: AnymailRequestsAPIError, started: float) -> SendResult:
        response = getattr(exc, "response", None)
        status = getattr(exc, "status_code", None)
        if response is None or status is None:  # timeout or no connection
            return self._failure("network_error", str(exc), started)
        if 200 <= status < 300:  # accepted, but an answer we cannot read: try again
            return self._failure("invalid_response", response.text[:500], started, http_status=None)
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=f"HTTP_{status}",
            failure_detail=str(exc)[:1000],
            http_status=status,
            retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
            duration_ms=elapsed_ms(started),
            response_body=response.text[:2000],
        )

    def _failure(
        self,
        code: str,
        detail: str,
        started: float,
        permanent: bool = False,
        http_status: int | None = None,
    ) -> SendResult:
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code=code,
            failure_detail=detail[:1000],
            http_status=http_status,
            duration_ms=elapsed_ms(started),
            permanent=permanent,
        )


def resend_read() -> ProbeResult:
    anymail = settings.ANYMAIL
    url = str(anymail.get("RESEND_API_URL") or "https://api.resend.com/").rstrip("/") + "/domains"
    return authenticated_read(
        url, headers={"Authorization": f"Bearer {anymail.get('RESEND_API_KEY', '')}"}
    )


PROVIDER = ChannelProvider(
    "anymail", adapter=AnymailEmailChannel, required=anymail_required, probe=resend_read
)
