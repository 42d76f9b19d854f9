"""Amounts as Stripe writes them: integers in the currency's minor unit, whose size depends on
the currency (https://docs.stripe.com/currencies#minor-units). 5000 JPY is five thousand
yen, 5000 EUR cents are fifty euros, 1500 KWD fils are one and a half dinars.

The console keeps amounts as decimals of the major unit with two places. That holds every
amount Stripe accepts: zero-decimal currencies have none, and in the three-decimal ones
Stripe requires the last minor digit to be 0. An amount that would need a third place is
refused rather than rounded: money is never changed silently.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
        "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
# Stripe's three-decimal currencies (docs.stripe.com/currencies#three-decimal).
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
STORED_PLACES = Decimal("0.01")


class UnrepresentableAmount(ValueError):
    """An amount the console cannot keep exactly (a third decimal place)."""


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit in Stripe's API. ISK, HUF and TWD are
    sent with two places (Stripe's special cases), like every currency not listed."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def from_minor_units(amount: Any, currency: str) -> Decimal:
    """Stripe's integer `amount` in `currency` as a decimal of the major unit."""
    major = Decimal(int(amount or 0)).scaleb(-minor_unit_exponent(currency))
    stored = major.quantize(STORED_PLACES)
    if stored != major:
        raise UnrepresentableAmount(f"{amount} {currency.upper()} minor units need 3 places")
    return stored


def to_minor_units(amount: Decimal | str, currency: str) -> int:
    """A decimal of the major unit as Stripe's integer amount in `currency`."""
    minor = Decimal(amount).scaleb(minor_unit_exponent(currency))
    if minor != minor.to_integral_value():
        raise UnrepresentableAmount(
            f"{amount} {currency.upper()} is not a whole number of minor units"
        )
    return int(minor)


def amount_text(amount: Decimal, currency: str) -> str:
    """The amount written with the currency's own places ("5000" JPY, "50.00" EUR,
    "1.500" KWD), as partners and people read it."""
    places = minor_unit_exponent(currency)
    return str(Decimal(amount).quantize(Decimal(1).scaleb(-places)))
