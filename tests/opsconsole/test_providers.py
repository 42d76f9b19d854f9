"""Production never fakes: outside the explicit sandbox, a money provider that is not
configured fails closed and a message channel fails open, parking its messages; a channel
switched off on purpose is not an error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking
from notifications.models import CommunicationLog, Notification
from notifications.services import communication_send, notification_enqueue
from notifications.workers import NotificationDeliveryWorker
from opsconsole.outbound.providers import check_providers_configured
from payments.models import HostedCheckoutSession, Refund
from payments.refunds import payment_record, refund_request
from recovery.inbox import groups as inbox
from tests.bookings.factories import BookingFactory
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.opsconsole.test_production_settings import ROOT, start_django
from tests.payments.factories import HostedSessionFactory
from tests.workers import run_worker


@pytest.fixture
def production(settings):
    """No sandbox, and no provider configured."""
    settings.PROVIDERS_SANDBOX = False
    settings.STRIPE_SECRET_KEY = ""
    settings.PAYMENTS_CHECKOUT_URL = ""
    settings.NOTIFICATION_CHANNELS = {
        channel: {"url": "", "api_key": "", "provider": ""}
        for channel in ("email", "sms", "whatsapp", "push")
    }
    return settings


def card_payment(amount: str = "40.00"):
    return payment_record(
        reference=f"pay-{amount}",
        subject="booking:1",
        amount=Decimal(amount),
        currency="EUR",
        method="card",
        provider_payment_id="pi_card_1",
    )


@pytest.mark.django_db
def test_without_stripe_a_refund_is_parked_never_made_up(production):
    refund = refund_request(
        payment_id=card_payment().pk, amount=Decimal("40.00"), actor="t", reason="test"
    )
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert refund.provider_refund_id == ""
    assert refund.last_error.startswith("PROVIDER_NOT_CONFIGURED")
    assert "STRIPE_SECRET_KEY" in refund.last_error
    assert refund.next_retry_at is None  # only configuring Stripe helps: not retried blindly
    groups = inbox.failure_groups(source="refund")
    assert [g.failure_code for g in groups] == ["PROVIDER_NOT_CONFIGURED"]


@pytest.mark.django_db
def test_in_the_sandbox_the_same_refund_is_simulated(settings):
    settings.STRIPE_SECRET_KEY = ""
    refund = refund_request(
        payment_id=card_payment().pk, amount=Decimal("40.00"), actor="t", reason="test"
    )
    refund.refresh_from_db()
    assert (refund.status, refund.provider_refund_id[:11]) == ("COMPLETED", "re_sandbox_")


@pytest.mark.django_db
def test_cancelling_a_card_paid_booking_without_stripe_answers_503(production):
    customer = UserFactory(username="carla", groups=["Booking client"])
    booking = BookingFactory(customer=customer, paid=Decimal("30.00"))
    response = token_client(customer).post(
        f"/api/v1/bookings/{booking.pk}/cancel", {"reason": "ill"}, format="json"
    )
    assert response.status_code == 503
    assert error_of(response)["code"] == "BKG-503-CANCELLATION-FAILED"
    booking.refresh_from_db()
    assert booking.status != Booking.Status.CANCELLED
    assert not Refund.objects.filter(status=Refund.Status.COMPLETED).exists()


@pytest.mark.django_db
def test_regenerating_without_a_checkout_provider_answers_503_and_changes_nothing(
    production, operator_client
):
    session = HostedSessionFactory()
    before = (session.checkout_url, session.status, session.version)
    response = operator_client.post(
        f"/api/v1/billing/sessions/{session.pk}/regenerate", {"reason": "called"}, format="json"
    )
    assert response.status_code == 503
    assert error_of(response)["code"] == "PAY-503-DEPENDENCY-UNAVAILABLE"
    session.refresh_from_db()
    assert (session.checkout_url, session.status, session.version) == before


@pytest.mark.django_db
def test_without_an_email_provider_a_message_is_parked_never_sent(production):
    notification = notification_enqueue(
        channel="email", to="ana@example.test", template="booking_confirmed", context={}
    )
    summary = run_worker(NotificationDeliveryWorker)
    assert summary.outcomes == {"dead_lettered": 1}  # one look, no retries: only people fix it
    notification.refresh_from_db()
    assert notification.status == Notification.Status.DEAD
    assert notification.last_error.startswith("PROVIDER_NOT_CONFIGURED")
    assert [g.failure_code for g in inbox.failure_groups(source="notification")] == [
        "PROVIDER_NOT_CONFIGURED"
    ]
    log = communication_send(
        channel="sms",
        to="+351910000000",
        template="t",
        context={},
        subject_type="x",
        subject_id=1,
        triggered_by="test",
        idempotency_key="k1",
    )
    assert (log.status, log.failure_code) == ("failed", "PROVIDER_NOT_CONFIGURED")


@pytest.mark.django_db
def test_a_channel_switched_off_on_purpose_skips_its_messages_without_an_error(production):
    production.NOTIFICATION_CHANNELS["sms"]["provider"] = "none"
    notification = notification_enqueue(channel="sms", to="+351910000000", template="t", context={})
    assert notification.status == Notification.Status.SKIPPED
    assert run_worker(NotificationDeliveryWorker).claimed == 0
    log = communication_send(
        channel="sms",
        to="+351910000000",
        template="t",
        context={},
        subject_type="x",
        subject_id=1,
        triggered_by="test",
        idempotency_key="k2",
    )
    assert log.status == CommunicationLog.Status.SKIPPED
    assert inbox.failure_groups(source="notification") == []


@pytest.mark.django_db
def test_readyz_shows_missing_money_as_error_and_missing_messages_as_degraded(
    production, monitoring_client
):
    production.NOTIFICATION_CHANNELS["push"]["provider"] = "none"
    production.NOTIFICATION_CHANNELS["sms"]["url"] = "https://sms.example.test/send"
    components = monitoring_client.get("/api/v1/health/readyz").json()["components"]
    status = {name: components[f"provider_{name}"]["status"] for name in PROVIDERS}
    assert status == {
        "stripe": "error",
        "checkout": "error",
        "email": "degraded",
        "whatsapp": "degraded",
        "sms": "ready",
        "push": "ready",
    }
    assert components["provider_stripe"]["details"]["missing"] == ["STRIPE_SECRET_KEY"]
    assert components["provider_push"]["details"]["mode"] == "off"


PROVIDERS = ("stripe", "checkout", "email", "sms", "whatsapp", "push")


@pytest.mark.django_db
def test_in_the_sandbox_readyz_says_so_and_is_ready(monitoring_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    components = monitoring_client.get("/api/v1/health/readyz").json()["components"]
    assert components["provider_stripe"] == {
        "status": "ready",
        "details": {"mode": "sandbox", "kind": "money"},
    }


def test_a_system_check_names_the_missing_variables(production):
    production.NOTIFICATION_CHANNELS["sms"]["provider"] = "none"
    messages = {w.obj: w.msg for w in check_providers_configured()}
    assert set(messages) == {
        "provider stripe",
        "provider checkout",
        "provider email",
        "provider whatsapp",
        "provider push",
    }
    assert "STRIPE_SECRET_KEY" in messages["provider stripe"]
    assert "NOTIFICATIONS_EMAIL_URL" in messages["provider email"]
    production.PROVIDERS_SANDBOX = True
    assert check_providers_configured() == []


@pytest.mark.django_db
def test_the_admin_shows_the_sandbox_and_missing_providers(admin_client, settings):
    page = admin_client.get("/admin/")
    assert b"Sandbox providers (PROVIDERS_SANDBOX=true)" in page.content
    settings.PROVIDERS_SANDBOX = False
    settings.STRIPE_SECRET_KEY = ""
    page = admin_client.get("/admin/")
    assert b"Sandbox providers" not in page.content
    assert b"stripe is not configured: set STRIPE_SECRET_KEY" in page.content


def test_the_sandbox_is_announced_at_start_up():
    result = start_django(PROVIDERS_SANDBOX="true")
    assert "providers_sandbox_on" in result.stdout + result.stderr
    quiet = start_django(PROVIDERS_SANDBOX="false")
    assert "providers_sandbox_on" not in quiet.stdout + quiet.stderr


def test_a_misspelt_channel_switch_refuses_to_start():
    result = start_django(SMS_PROVIDER="off")
    assert result.returncode != 0
    assert "SMS_PROVIDER must be http or none" in result.stderr


@pytest.mark.django_db
def test_hosted_recovery_without_providers_notifies_nobody_and_makes_no_link(production):
    from payments.workers import HostedSessionRecoveryWorker

    session = HostedSessionFactory()
    summary = run_worker(HostedSessionRecoveryWorker)
    assert summary.outcomes == {"link_failed": 1}
    session.refresh_from_db()
    assert session.checkout_url == "https://checkout.example.test/pay/original"
    assert session.last_notified_at is None
    assert session.status != HostedCheckoutSession.Status.COMPLETED


def test_gunicorn_outlasts_a_web_bounded_provider_call(settings):
    from opsconsole.outbound.providers import check_web_timeout_covers_provider_calls

    procfile = (ROOT / "Procfile").read_text()
    assert "--timeout ${GUNICORN_TIMEOUT:-60}" in procfile
    assert check_web_timeout_covers_provider_calls() == []  # the defaults: 60s > 5 + 5
    settings.WEB_REQUEST_TIMEOUT_SECONDS = 8
    (error,) = check_web_timeout_covers_provider_calls()
    assert "GUNICORN_TIMEOUT=8s leaves no room" in error.msg
    assert "PROVIDER_WEB_TIMEOUT_SECONDS=5s" in error.msg
