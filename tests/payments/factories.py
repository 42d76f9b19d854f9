"""Hosted checkout sessions, created through the payments service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from payments import services
from payments.models import HostedCheckoutSession, Refund
from payments.refunds import payment_record

# What hosted_session_create takes; any other field is written after it.
SERVICE_FIELDS = (
    "reference",
    "amount",
    "currency",
    "customer_email",
    "customer_phone",
    "checkout_url",
    "expires_at",
)


class HostedSessionFactory(DjangoModelFactory):
    """A session whose checkout link expired unpaid a minute ago: due for recovery. Fields the
    service does not take (status, retry_count, ...) are written after it."""

    class Meta:
        model = HostedCheckoutSession

    reference = factory.Sequence(lambda n: f"hcs_{n + 1:05d}")
    amount = Decimal("49.90")
    currency = "EUR"
    customer_email = "ana@example.test"
    customer_phone = "+3519100000"
    checkout_url = "https://checkout.example.test/pay/original"
    expires_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))

    @classmethod
    def _create(
        cls, model_class: type[HostedCheckoutSession], *args: Any, **fields: Any
    ) -> HostedCheckoutSession:
        created = {name: fields.pop(name) for name in SERVICE_FIELDS}
        session = services.hosted_session_create(**created, actor="test")
        if fields:
            model_class.objects.filter(pk=session.pk).update(**fields)
            session.refresh_from_db()
        return session


def failed_refund(amount: str = "150.00") -> Refund:
    """A card payment whose refund failed three times at Stripe (in the failure inbox)."""
    payment = payment_record(
        reference=f"pay-{amount}-{timezone.now().timestamp()}",
        subject="booking:1",
        amount=Decimal(amount),
        currency="EUR",
        method="card",
        provider_payment_id="pi_x",
    )
    refund = Refund.objects.create(payment=payment, amount=payment.amount, reason="x")
    Refund.objects.filter(pk=refund.pk).update(
        status="FAILED", attempt_count=3, last_error="http_503: Stripe is down"
    )
    return Refund.objects.get(pk=refund.pk)
