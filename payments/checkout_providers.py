"""Which checkout provider the settings choose: the sandbox, none (fails closed), Stripe
Checkout, or the generic HTTP provider."""

from __future__ import annotations

from django.conf import settings

from opsconsole.outbound.guard import provider_timeout
from opsconsole.outbound.providers import Mode, provider
from payments.adapters import (
    CheckoutProvider,
    HttpCheckoutProvider,
    SandboxCheckoutProvider,
    UnconfiguredCheckoutProvider,
)
from payments.stripe_checkout import StripeCheckoutProvider


def default_checkout_provider() -> CheckoutProvider:
    mode = provider("checkout").mode()
    if mode == Mode.SANDBOX:
        return SandboxCheckoutProvider()
    if mode != Mode.CONFIGURED:
        return UnconfiguredCheckoutProvider()
    if settings.PAYMENTS_CHECKOUT_PROVIDER == "stripe":
        return StripeCheckoutProvider(
            timeout_seconds=provider_timeout(settings.PAYMENTS_HTTP_TIMEOUT_SECONDS)
        )
    return HttpCheckoutProvider(
        url=settings.PAYMENTS_CHECKOUT_URL,
        api_key=settings.PAYMENTS_CHECKOUT_API_KEY,
        timeout_seconds=provider_timeout(settings.PAYMENTS_HTTP_TIMEOUT_SECONDS),
    )
