"""Payments' entries in the integrations status (docs/runbooks/voucher-preview-failures.md)."""

from __future__ import annotations

from django.conf import settings

from opsconsole.outbound.integration_status import (
    ProbeResult,
    authenticated_read,
    generic_endpoint_read,
)
from opsconsole.outbound.providers import Mode, provider
from payments.adapters import default_voucher_renderer

SLOW_PREVIEW_MS = 1000


def voucher_png_probe() -> ProbeResult:
    preview = default_voucher_renderer().render(
        code="PROBE00000", description="status probe", value="0.00"
    )
    details = {"preview_status": preview.status, "duration_ms": preview.duration_ms}
    if preview.status != "ok":
        return ProbeResult("red", preview.status, details)
    if preview.duration_ms > SLOW_PREVIEW_MS:
        return ProbeResult("amber", "slow", details)
    return ProbeResult("green", "ok", details)


def unconfigured(name: str) -> ProbeResult | None:
    """Red when a provider is missing (production), amber in the sandbox, None if configured."""
    item = provider(name)
    mode = item.mode()
    if mode == Mode.MISSING:
        return ProbeResult("red", item.not_configured_detail())
    if mode == Mode.SANDBOX:
        return ProbeResult("amber", f"sandbox ({', '.join(item.missing_settings())} unset)")
    return None


def stripe_probe() -> ProbeResult:
    """A cheap authenticated read (GET /v1/balance, as Stripe documents it): green only when
    Stripe answers this key; red when it refuses the key or does not answer."""
    if (result := unconfigured("stripe")) is not None:
        return result
    answer = authenticated_read(
        settings.STRIPE_API_BASE.rstrip("/") + "/v1/balance",
        headers={
            "Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}",
            "Stripe-Version": settings.STRIPE_API_VERSION,
        },
        who="Stripe",
        credentials="the secret key",
    )
    if answer.status == "green" and not settings.STRIPE_WEBHOOK_SECRET:
        return ProbeResult(
            "amber",
            "answers; webhooks not configured (STRIPE_WEBHOOK_SECRET unset)",
            answer.details,
        )
    return answer


def checkout_provider_probe() -> ProbeResult:
    if (result := unconfigured("checkout")) is not None:
        return result
    return generic_endpoint_read(
        settings.PAYMENTS_CHECKOUT_URL,
        api_key=settings.PAYMENTS_CHECKOUT_API_KEY,
        who="The checkout provider",
    )
