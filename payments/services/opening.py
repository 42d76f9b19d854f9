"""Opening a hosted checkout session for a producer: the provider's link first (no
transaction open, bounded in a request), then the session, audited, in one transaction."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from opsconsole.evidence import audit
from payments.adapters import CheckoutProvider, CheckoutProviderError
from payments.checkout_providers import default_checkout_provider
from payments.errors import (
    CheckoutProviderUnavailable,
    HostedSessionReferenceTaken,
    PaymentsInvalidPayload,
)
from payments.models import HostedCheckoutSession
from payments.money import (
    UnrepresentableAmount,
    from_minor_units,
    minor_unit_exponent,
    to_minor_units,
)
from payments.services.sessions import hosted_session_create

REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def _checked(reference: str, amount: str | Decimal, currency: str) -> tuple[str, Decimal, str]:
    problems: dict[str, list[str]] = {}
    if not REFERENCE.match(reference or ""):
        problems["reference"] = ["1-100 letters, digits, _ . : - (no spaces)."]
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
        if not Decimal("0.50") <= value <= Decimal("999999.99"):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        problems["amount"] = ["A decimal from 0.50 to 999999.99."]
        value = Decimal(0)
    currency = (currency or "").upper()
    if not CURRENCY.match(currency):
        problems["currency"] = ["An ISO 4217 code, like EUR."]
    elif "amount" not in problems:
        try:
            # Whole minor units as Stripe counts them (4990 JPY, not 49.90), and kept exactly
            # (three-decimal currencies end in 0 at Stripe): never rounded on the way.
            from_minor_units(to_minor_units(Decimal(str(amount)), currency), currency)
        except UnrepresentableAmount:
            places = min(minor_unit_exponent(currency), 2)
            problems["amount"] = [f"{currency} amounts have at most {places} decimal places."]
    if problems:
        raise PaymentsInvalidPayload(details={"fields": problems})
    return reference, value, currency


def hosted_session_open(
    *,
    reference: str,
    amount: str | Decimal,
    currency: str,
    actor: audit.Actor,
    customer_email: str = "",
    customer_phone: str = "",
    provider: CheckoutProvider | None = None,
) -> HostedCheckoutSession:
    """A new session with a fresh provider link. The provider's idempotency key is the
    reference, so a retry after a lost answer gets the same link, not a second one."""
    reference, value, currency = _checked(reference, amount, currency)
    if HostedCheckoutSession.objects.filter(reference=reference).exists():
        raise HostedSessionReferenceTaken(details={"reference": reference})
    try:
        link = (provider or default_checkout_provider()).create_link(
            reference=reference,
            amount=str(value),
            currency=currency,
            idempotency_key=f"hosted-session-open:{reference}",
        )
    except CheckoutProviderError as exc:
        raise CheckoutProviderUnavailable(
            details={"provider_failure_code": exc.failure_code}
        ) from exc
    try:
        return hosted_session_create(
            reference=reference,
            amount=value,
            currency=currency,
            customer_email=customer_email,
            customer_phone=customer_phone,
            checkout_url=link.url,
            expires_at=link.expires_at,
            provider_session_id=link.provider_session_id,
            actor=actor,
        )
    except Exception as exc:
        if HostedCheckoutSession.objects.filter(reference=reference).exists():
            raise HostedSessionReferenceTaken(details={"reference": reference}) from exc
        raise
