from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from opsconsole.models import Alert
from payments.refunds import payment_record, refund_request
from tests.helpers import run_concurrently


def card_payment(amount: str) -> int:
    return payment_record(
        reference=f"pay_{amount}",
        subject="booking:1",
        amount=Decimal(amount),
        currency="EUR",
        method="card",
        provider_payment_id="pi_1",
    ).pk


@pytest.fixture
def stripe(httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    return httpserver


@pytest.mark.django_db(transaction=True)
def test_concurrent_refund_requests_make_one_refund_with_one_key(stripe):
    stripe.expect_request("/v1/refunds").respond_with_json({"id": "re_1"})
    payment_id = card_payment("40.00")
    refunds = run_concurrently(
        lambda n: refund_request(
            payment_id=payment_id, amount=Decimal("40.00"), reason="dup", actor="t"
        ),
        5,
    )
    assert {refund.pk for refund in refunds} == {refunds[0].pk}
    keys = {request.headers["Idempotency-Key"] for request, _ in stripe.log}
    assert keys == {f"refund:{refunds[0].pk}"}
    refunds[0].refresh_from_db()
    assert refunds[0].status == "COMPLETED"


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "alerts"), [("100.00", 0), ("100.01", 1)])
def test_a_failed_refund_over_100_raises_an_alert(stripe, amount, alerts):
    stripe.expect_request("/v1/refunds").respond_with_data("", status=503)
    refund = refund_request(
        payment_id=card_payment(amount), amount=Decimal(amount), reason="x", actor="t"
    )
    assert (refund.status, refund.attempt_count) == ("FAILED", 1)
    assert Alert.objects.filter(kind="refund-failed").count() == alerts


@pytest.mark.django_db
def test_the_alert_of_a_failed_refund_is_settled_when_the_refund_completes(stripe):
    from opsconsole.models import AuditEvent
    from payments.refunds import refund_attempt

    stripe.expect_oneshot_request("/v1/refunds").respond_with_data("", status=503)
    refund = refund_request(
        payment_id=card_payment("120.00"), amount=Decimal("120.00"), reason="x", actor="t"
    )
    alert = Alert.objects.get(kind="refund-failed")
    assert alert.acknowledged_at is None
    stripe.expect_oneshot_request("/v1/refunds").respond_with_json(
        {"id": "re_later", "object": "refund", "status": "succeeded"}
    )
    assert refund_attempt(refund_id=refund.pk).status == "COMPLETED"
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledged_at is not None) == ("system", True)
    settled = AuditEvent.objects.get(event="platform.alert.settled", object_id=str(alert.pk))
    assert settled.reason == f"refund {refund.pk} completed at the provider"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 402])
def test_a_card_error_is_not_retried(stripe, status):
    stripe.expect_request("/v1/refunds").respond_with_json(
        {"error": {"message": "charge already refunded"}}, status=status
    )
    refund = refund_request(
        payment_id=card_payment("5.00"), amount=Decimal("5.00"), reason="x", actor="t"
    )
    assert (refund.status, refund.next_retry_at) == ("FAILED", None)
    assert "charge already refunded" in refund.last_error


@pytest.mark.django_db
def test_a_refund_larger_than_the_payment_is_refused():
    from payments.refunds import RefundAmountInvalid

    with pytest.raises(RefundAmountInvalid):
        refund_request(
            payment_id=card_payment("5.00"), amount=Decimal("6.00"), reason="x", actor="t"
        )


@pytest.mark.django_db
def test_a_refund_goes_to_stripe_as_its_api_documents_it(stripe, settings):
    stripe.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"id": "re_wire", "object": "refund", "status": "succeeded"}
    )
    refund = refund_request(
        payment_id=card_payment("12.34"), amount=Decimal("12.34"), reason="x", actor="t"
    )
    assert (refund.status, refund.provider_refund_id) == ("COMPLETED", "re_wire")
    request, _ = stripe.log[-1]
    assert request.headers["Authorization"] == "Bearer sk_test_local"
    assert request.headers["Idempotency-Key"] == f"refund:{refund.pk}"
    assert request.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert dict(request.form) == {
        "payment_intent": "pi_1",
        "amount": "1234",
        "reason": "requested_by_customer",
    }


@pytest.mark.django_db
def test_stripes_rate_limit_and_a_hang_are_retried_later(stripe, settings, hanging_handler):
    from django.utils import timezone

    stripe.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
        status=429,
        headers={"Retry-After": "30"},
    )
    before = timezone.now()
    limited = refund_request(
        payment_id=card_payment("7.00"), amount=Decimal("7.00"), reason="x", actor="t"
    )
    assert (limited.status, limited.last_error[:8]) == ("FAILED", "http_429")
    assert limited.next_retry_at >= before + timedelta(seconds=29)

    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    stripe.expect_oneshot_request("/v1/refunds", method="POST").respond_with_handler(
        hanging_handler(2.5)
    )
    hung = refund_request(
        payment_id=card_payment("8.00"), amount=Decimal("8.00"), reason="x", actor="t"
    )
    assert (hung.status, hung.last_error[:13]) == ("FAILED", "network_error")
    assert hung.next_retry_at is not None


@pytest.mark.django_db
def test_a_partial_refund_sends_its_amount_and_leaves_the_rest_paid(stripe, settings):
    """Over the wire as Stripe documents it: form-encoded, the amount in cents, the payment
    intent, the pinned Stripe-Version and the refund's own idempotency key."""
    from payments.models import Payment

    stripe.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"id": "re_part", "object": "refund", "status": "succeeded", "amount": 2500}
    )
    payment_id = card_payment("80.00")
    refund = refund_request(
        payment_id=payment_id, amount=Decimal("25.00"), reason="one night", actor="t"
    )
    assert (refund.status, refund.provider_refund_id) == ("COMPLETED", "re_part")
    ((request, _),) = stripe.log
    assert request.headers["Authorization"] == "Bearer sk_test_local"
    assert request.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert request.headers["Idempotency-Key"] == f"refund:{refund.pk}"
    assert request.form.to_dict() == {
        "payment_intent": "pi_1",
        "amount": "2500",
        "reason": "requested_by_customer",
    }
    payment = Payment.objects.get(pk=payment_id)
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Decimal("25.00"))


@pytest.mark.django_db
def test_a_dry_run_says_when_stripe_refused_the_last_attempt_for_good(stripe):
    from opsconsole.failures import failure_sources

    stripe.expect_request("/v1/refunds").respond_with_json(
        {"error": {"code": "charge_expired_for_refund", "message": "too old"}}, status=400
    )
    refund = refund_request(
        payment_id=card_payment("5.00"), amount=Decimal("5.00"), reason="x", actor="t"
    )
    predicted = failure_sources.get("refund").predicted(refund)
    assert predicted.startswith("FAILED → COMPLETED only if Stripe now accepts it")
    assert "too old" in predicted
