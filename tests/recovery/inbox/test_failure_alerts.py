"""The error categories (docs/runbooks/bookings-payments-notifications.md): every failure source
has one; payment failures page the on-call (a critical alert each), notification failures raise
one batched alert a window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_enqueue
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import CATEGORIES
from opsconsole.models import Alert
from payments.refunds import payment_record, refund_request
from recovery.workers import FailureAlerter
from tests.recovery.factories import ParkedItemFactory
from tests.workers import run_worker


def test_every_failure_source_has_a_category():
    assert {s.name: s.category in CATEGORIES for s in failure_sources.all_sources()} == {
        s.name: True for s in failure_sources.all_sources()
    }


@pytest.mark.django_db
def test_a_payment_failure_pages_once(httpserver, settings):
    settings.STRIPE_API_BASE = httpserver.url_for("/")
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    httpserver.expect_request("/v1/refunds").respond_with_json(
        {"error": {"message": "card expired"}}, status=402
    )
    payment = payment_record(
        reference="p",
        subject="booking:1",
        amount=Decimal("9"),
        currency="EUR",
        method="card",
        provider_payment_id="pi_9",
    )
    refund = refund_request(payment_id=payment.pk, amount=Decimal("9"), reason="x", actor="t")
    assert run_worker(FailureAlerter).outcomes == {"paged": 1, "quiet": 1}
    (alert,) = Alert.objects.filter(kind="payment-failure")
    assert (alert.severity, alert.object_id) == ("critical", str(refund.pk))
    assert run_worker(FailureAlerter).outcomes == {"quiet": 2}  # paged once per failure


@pytest.mark.django_db
def test_notification_failures_raise_one_alert_per_window(integration):
    ParkedItemFactory(integration=integration, status="dlq")  # integration: pages nobody

    def dead_email() -> None:
        notification = notification_enqueue(
            channel="email", to="a@b.test", template="t", context={}
        )
        Notification.objects.filter(pk=notification.pk).update(
            status="DEAD", last_error="http_400: bad address"
        )

    dead_email()
    dead_email()
    assert run_worker(FailureAlerter).outcomes == {"batched": 1, "quiet": 1}
    (alert,) = Alert.objects.filter(kind="notification-failures")
    assert (alert.severity, alert.details["by_source"]) == ("warning", {"notification": 2})
    dead_email()
    assert run_worker(FailureAlerter).outcomes == {"quiet": 2}  # the window is still open
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert run_worker(FailureAlerter).outcomes == {"batched": 1, "quiet": 1}
    assert Alert.objects.filter(kind="notification-failures").count() == 2
    assert not Alert.objects.filter(kind="payment-failure").exists()


@pytest.mark.django_db
def test_a_station_refusing_a_redeemed_voucher_pages_nobody():
    """The redemption guard working (docs/runbooks/station-redeem-anomalies.md) is worked from
    the inbox; only money that failed to move pages the on-call."""
    from payments import vouchers

    voucher = vouchers.voucher_issue(description="Ticket", value=Decimal("5"))
    vouchers.voucher_redeem(code=voucher.code, station_id="s1", actor="s1")
    with pytest.raises(vouchers.VoucherAlreadyRedeemed):
        vouchers.voucher_redeem(code=voucher.code, station_id="s9", actor="s9")
    run_worker(FailureAlerter)
    assert not Alert.objects.filter(severity=Alert.Severity.CRITICAL).exists()
