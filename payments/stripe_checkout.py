"""Hosted checkout through Stripe Checkout (PAYMENTS_CHECKOUT_PROVIDER=stripe): a Checkout
Session in payment mode for the amount, its reference in the metadata of the session and
of its payment intent, so `payment_intent.succeeded` completes the hosted session it paid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.utils import timezone

from payments.adapters import CheckoutLink, CheckoutProviderError, stripe_client
from payments.money import to_minor_units

# Stripe Checkout Sessions expire between 30 minutes and 24 hours after creation.
LINK_MINUTES = (30, 24 * 60)


def stripe_checkout_required() -> dict[str, str]:
    return {
        "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY,
        "STRIPE_CHECKOUT_SUCCESS_URL": settings.STRIPE_CHECKOUT_SUCCESS_URL,
    }


class StripeCheckoutProvider:
    def __init__(self, *, timeout_seconds: float) -> None:
        self.client = stripe_client(timeout_seconds)

    def create_link(
        self, *, reference: str, amount: str, currency: str, idempotency_key: str
    ) -> CheckoutLink:
        minutes = min(
            max(settings.PAYMENTS_CHECKOUT_LINK_MINUTES, LINK_MINUTES[0]), LINK_MINUTES[1]
        )
        expires_at = timezone.now() + timedelta(minutes=minutes)
        try:
            session = self.client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": currency.lower(),
                                "unit_amount": to_minor_units(amount, currency),
                                "product_data": {"name": reference},
                            },
                        }
                    ],
                    "success_url": settings.STRIPE_CHECKOUT_SUCCESS_URL,
                    "cancel_url": settings.STRIPE_CHECKOUT_CANCEL_URL
                    or settings.STRIPE_CHECKOUT_SUCCESS_URL,
                    "expires_at": int(expires_at.timestamp()),
                    "client_reference_id": reference,
                    "metadata": {"reference": reference},
                    "payment_intent_data": {"metadata": {"reference": reference}},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.APIConnectionError as exc:
            raise CheckoutProviderError("network_error", str(exc.user_message or exc)) from exc
        except stripe.StripeError as exc:
            code = f"http_{exc.http_status}" if exc.http_status else "provider_error"
            raise CheckoutProviderError(code, str(exc.user_message or exc)[:500]) from exc
        url = getattr(session, "url", None)
        if not isinstance(url, str) or not url.startswith("https://"):
            raise CheckoutProviderError("invalid_response", "no https url in the answer")
        answered = getattr(session, "expires_at", None)
        return CheckoutLink(
            url=url[:1000],
            expires_at=datetime.fromtimestamp(answered, UTC) if answered else expires_at,
            provider_session_id=str(getattr(session, "id", "")),
        )
