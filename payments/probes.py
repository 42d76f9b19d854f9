"""Payments' entries in the integrations status (seed 004)."""

from __future__ import annotations

from django.conf import settings

from opsconsole.integration_status import ProbeResult
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


def stripe_probe() -> ProbeResult:
    if not settings.STRIPE_SECRET_KEY:
        return ProbeResult("amber", "sandbox refunds (STRIPE_SECRET_KEY unset)")
    if not settings.STRIPE_WEBHOOK_SECRET:
        return ProbeResult("amber", "webhooks not configured (STRIPE_WEBHOOK_SECRET unset)")
    return ProbeResult("green", "configured")


def checkout_provider_probe() -> ProbeResult:
    if not settings.PAYMENTS_CHECKOUT_URL:
        return ProbeResult("amber", "sandbox checkout links (PAYMENTS_CHECKOUT_URL unset)")
    return ProbeResult("green", "configured")
