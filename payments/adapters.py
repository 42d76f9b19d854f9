"""The hosted checkout provider: issues a fresh checkout link for a session.

An HTTP provider when PAYMENTS_CHECKOUT_URL is set; the sandbox only in PROVIDERS_SANDBOX mode;
otherwise one that refuses (opsconsole/outbound/providers.py).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
import stripe
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from opsconsole.failures.retry import network_error_class, parse_retry_after
from opsconsole.outbound.guard import (
    DestinationRefused,
    elapsed_ms,
    guarded_post,
    post_json,
    provider_timeout,
)
from opsconsole.outbound.providers import PROVIDER_NOT_CONFIGURED, Mode, provider


@dataclass(frozen=True)
class CheckoutLink:
    url: str
    expires_at: datetime
    provider_session_id: str


class CheckoutProviderError(Exception):
    def __init__(self, failure_code: str, detail: str = "") -> None:
        super().__init__(f"{failure_code}: {detail}" if detail else failure_code)
        self.failure_code = failure_code
        self.detail = detail


class CheckoutProvider(Protocol):
    def create_link(
        self, *, reference: str, amount: str, currency: str, idempotency_key: str
    ) -> CheckoutLink:
        """Raises CheckoutProviderError when the provider does not give a usable link."""
        ...


class SandboxCheckoutProvider:
    def create_link(
        self, *, reference: str, amount: str, currency: str, idempotency_key: str
    ) -> CheckoutLink:
        token = secrets.token_urlsafe(12)
        return CheckoutLink(
            url=f"https://checkout.sandbox.invalid/pay/{reference}/{token}",
            expires_at=timezone.now() + timedelta(minutes=settings.PAYMENTS_CHECKOUT_LINK_MINUTES),
            provider_session_id=f"sandbox_{token}",
        )


class HttpCheckoutProvider:
    """POSTs {reference, amount, currency}; expects {url, expires_at, id} back."""

    def __init__(self, *, url: str, api_key: str = "", timeout_seconds: float = 10) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds

    def create_link(
        self, *, reference: str, amount: str, currency: str, idempotency_key: str
    ) -> CheckoutLink:
        headers = {"Idempotency-Key": idempotency_key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        result = post_json(
            self.url,
            body={"reference": reference, "amount": amount, "currency": currency},
            headers=headers,
            timeout_seconds=self.timeout_seconds,
        )
        if not result.ok:
            raise CheckoutProviderError(result.failure_code, result.error_detail or result.body)
        body = result.json_body()
        url = body.get("url")
        expires_at = parse_datetime(str(body.get("expires_at") or ""))
        if not isinstance(url, str) or not url.startswith("https://") or expires_at is None:
            raise CheckoutProviderError("invalid_response", result.body[:500])
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at, UTC)
        return CheckoutLink(
            url=url[:1000], expires_at=expires_at, provider_session_id=str(body.get("id", ""))
        )


class UnconfiguredCheckoutProvider:
    """Production without a checkout provider: no link is made up (fails closed)."""

    def create_link(
        self, *, reference: str, amount: str, currency: str, idempotency_key: str
    ) -> CheckoutLink:
        raise CheckoutProviderError(
            PROVIDER_NOT_CONFIGURED, provider("checkout").not_configured_detail()
        )


@dataclass(frozen=True)
class RefundOutcome:
    ok: bool
    provider_refund_id: str = ""
    failure_code: str = ""
    failure_detail: str = ""
    retryable: bool = False
    retry_after_seconds: float | None = None


class RefundProvider(Protocol):
    def create_refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str
    ) -> RefundOutcome: ...


class SandboxRefundProvider:
    def create_refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str
    ) -> RefundOutcome:
        # The same key gives the same refund id, like the real provider's idempotency.
        return RefundOutcome(ok=True, provider_refund_id=f"re_sandbox_{idempotency_key}")


def stripe_client(timeout_seconds: float) -> stripe.StripeClient:
    """The stripe library's client as every Stripe call here uses it: STRIPE_API_BASE, the
    pinned Stripe-Version, our timeout, and no retries of its own (our workers retry, with
    the same idempotency key)."""
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE.rstrip("/")},
        stripe_version=settings.STRIPE_API_VERSION,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout_seconds),
    )


class StripeRefundProvider:
    """Refunds through the stripe library: the pinned Stripe-Version, the base URL from
    STRIPE_API_BASE, `refund:<id>` as the Idempotency-Key, our timeout and no retries of its
    own (the refund worker retries, with the same key)."""

    def __init__(self, *, timeout_seconds: float = 10) -> None:
        self.client = stripe_client(timeout_seconds)

    def create_refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str
    ) -> RefundOutcome:
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": payment_intent,
                    "amount": amount_cents,
                    "reason": "requested_by_customer",
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.APIConnectionError as exc:
            return RefundOutcome(
                ok=False,
                failure_code="network_error",
                failure_detail=str(exc.user_message or exc)[:1000],
                retryable=True,
            )
        except stripe.StripeError as exc:
            return _stripe_refusal(exc)
        if not getattr(refund, "id", ""):
            return RefundOutcome(ok=False, failure_code="invalid_response", retryable=True)
        return RefundOutcome(ok=True, provider_refund_id=str(refund.id))


def _stripe_refusal(exc: stripe.StripeError) -> RefundOutcome:
    status = exc.http_status
    if status is not None and 200 <= status < 300:  # an answer that is not Stripe's JSON
        return RefundOutcome(
            ok=False,
            failure_code="invalid_response",
            failure_detail=str(exc)[:500],
            retryable=True,
        )
    headers = {name.lower(): value for name, value in (exc.headers or {}).items()}
    return RefundOutcome(
        ok=False,
        failure_code=f"http_{status}" if status else "provider_error",
        failure_detail=str(exc.user_message or exc)[:1000],
        # Stripe: 409 is an idempotency conflict in flight, retried like 429 and 5xx.
        retryable=status is None or status in (408, 409, 429) or status >= 500,
        retry_after_seconds=parse_retry_after(headers.get("retry-after")),
    )


class UnconfiguredRefundProvider:
    """Production without Stripe: no refund is made up. The refund is parked with the code
    (not retried: only configuring Stripe helps) and an operator replays it afterwards."""

    def create_refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str
    ) -> RefundOutcome:
        return RefundOutcome(
            ok=False,
            failure_code=PROVIDER_NOT_CONFIGURED,
            failure_detail=provider("stripe").not_configured_detail(),
            retryable=False,
        )


def default_refund_provider() -> RefundProvider:
    mode = provider("stripe").mode()
    if mode == Mode.SANDBOX:
        return SandboxRefundProvider()
    if mode != Mode.CONFIGURED:
        return UnconfiguredRefundProvider()
    return StripeRefundProvider(
        timeout_seconds=provider_timeout(settings.PAYMENTS_HTTP_TIMEOUT_SECONDS)
    )


@dataclass(frozen=True)
class VoucherPreview:
    """`status` is ok, not_configured, timeout or error; only ok carries an image."""

    status: str
    png: bytes = b""
    detail: str = ""
    duration_ms: int = 0


class VoucherRenderer:
    """The voucher PNG renderer over HTTP: POST the voucher, get image/png back."""

    def __init__(self, *, url: str, timeout_seconds: float) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds

    def render(self, *, code: str, description: str, value: str) -> VoucherPreview:
        if not self.url:
            return VoucherPreview(status="not_configured", detail="VOUCHER_RENDERER_URL is unset")
        started = time.perf_counter()
        try:
            response = guarded_post(
                self.url,
                timeout_seconds=self.timeout_seconds,
                json={"code": code, "description": description, "value": value},
            )
        except DestinationRefused as exc:
            return VoucherPreview(
                status="error",
                detail=f"endpoint_not_allowed: {exc}",
                duration_ms=elapsed_ms(started),
            )
        except httpx.TimeoutException as exc:
            return VoucherPreview(
                status="timeout", detail=str(exc), duration_ms=elapsed_ms(started)
            )
        except httpx.HTTPError as exc:
            return VoucherPreview(
                status="error", detail=network_error_class(exc), duration_ms=elapsed_ms(started)
            )
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200 or not content_type.startswith("image/png"):
            return VoucherPreview(
                status="error",
                detail=f"http_{response.status_code} {content_type}".strip(),
                duration_ms=elapsed_ms(started),
            )
        return VoucherPreview(status="ok", png=response.content, duration_ms=elapsed_ms(started))


def default_voucher_renderer() -> VoucherRenderer:
    return VoucherRenderer(
        url=settings.VOUCHER_RENDERER_URL, timeout_seconds=settings.VOUCHER_RENDERER_TIMEOUT_SECONDS
    )
