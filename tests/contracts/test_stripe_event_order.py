"""Stripe does not order its events (docs.stripe.com/webhooks#event-ordering). A refund that
arrives before its payment is answered 2xx, retried by our own worker with backoff, and
applies once the payment is there, with no operator; one that never applies reaches a
person only when the retries are spent. Events are shaped as Stripe's API reference shows
them and signed with stripe-python's WebhookSignature."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from opsconsole.models import AuditEvent
from payments.models import Payment, WebhookFailure
from payments.workers import StripeEventRetryWorker
from recovery.inbox.groups import failure_groups
from tests.contracts.stripe import (
    charge_refunded,
    payment_intent_succeeded,
    send_signed,
)
from tests.workers import run_worker

pytestmark = pytest.mark.usefixtures("stripe_settings")


def payment_succeeded(intent: str) -> dict:
    event = payment_intent_succeeded(intent, 5000, "eur")
    event["id"] = f"evt_paid_{intent}"
    return event


def refunded(intent: str) -> dict:
    return charge_refunded(intent, amount=5000, refunded=2000, currency="eur")


def send(client, body: dict):
    response = send_signed(client, body)
    assert response.status_code == 200, response.content
    return response.json()


def retry_after(minutes: float) -> dict:
    with time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False):
        return run_worker(StripeEventRetryWorker).outcomes


@pytest.mark.django_db
def test_a_refund_before_its_payment_applies_by_our_retry_without_an_operator(client):
    assert send(client, refunded("pi_late")) == {"received": True, "processingFailed": True}
    failure = WebhookFailure.objects.get(event_id="evt_refunded_pi_late")
    assert failure.status == WebhookFailure.Status.RETRYING
    assert failure.next_retry_at > timezone.now()
    # Waiting on our worker, not on a person: nothing in the failure inbox, nothing paged.
    assert failure_groups(source="webhook_failure") == []
    assert run_worker(StripeEventRetryWorker).claimed == 0  # not due yet

    send(client, payment_succeeded("pi_late"))
    assert retry_after(minutes=2) == {"applied": 1}
    payment = Payment.objects.get(provider_payment_id="pi_late")
    assert payment.amount_refunded == Decimal("20.00")
    failure.refresh_from_db()
    assert (failure.status, failure.resolved_by) == (
        WebhookFailure.Status.REPROCESSED,
        "worker:stripe_event_retry_worker",
    )


@pytest.mark.django_db
def test_stripes_own_redelivery_that_applies_closes_the_failure(client):
    send(client, refunded("pi_redelivered"))
    send(client, payment_succeeded("pi_redelivered"))
    send(client, refunded("pi_redelivered"))  # Stripe's retry of the same event
    failure = WebhookFailure.objects.get(event_id="evt_refunded_pi_redelivered")
    assert (failure.status, failure.resolved_by) == (WebhookFailure.Status.REPROCESSED, "stripe")
    assert retry_after(minutes=2) == {}


@pytest.mark.django_db
def test_an_event_that_never_applies_reaches_a_person_when_the_retries_are_spent(client):
    send(client, refunded("pi_never"))
    outcomes: dict[str, int] = {}
    for minutes in (2, 5, 10, 20, 40, 80, 160):
        for name, count in retry_after(minutes=minutes).items():
            outcomes[name] = outcomes.get(name, 0) + count
    assert outcomes == {"retry_later": 5, "to_operator": 1}
    failure = WebhookFailure.objects.get(event_id="evt_refunded_pi_never")
    assert failure.status == WebhookFailure.Status.PENDING_MANUAL
    assert failure.attempt_count == 6  # and the first delivery: 7 attempts in all
    assert "no payment for payment_intent 'pi_never'" in failure.error
    assert [g.count for g in failure_groups(source="webhook_failure")] == [1]
    assert AuditEvent.objects.filter(
        event="payments.webhook_failure.retries_exhausted", object_id=str(failure.pk)
    ).exists()


@pytest.mark.django_db
def test_the_api_version_is_kept_and_another_than_the_pinned_one_raises_one_alert(client, settings):
    from opsconsole.models import Alert
    from payments.models import StripeEvent

    send(client, payment_succeeded("pi_pinned"))
    assert StripeEvent.objects.get(event_id="evt_paid_pi_pinned").api_version == (
        settings.STRIPE_API_VERSION
    )
    assert not Alert.objects.filter(kind="stripe_api_version_mismatch").exists()
    for intent in ("pi_old_1", "pi_old_2"):
        older = payment_succeeded(intent)
        older["api_version"] = "2024-06-20"
        send(client, older)
    (alert,) = Alert.objects.filter(kind="stripe_api_version_mismatch")
    assert alert.details == {"api_version": "2024-06-20", "pinned": settings.STRIPE_API_VERSION}
    assert StripeEvent.objects.get(event_id="evt_paid_pi_old_2").api_version == "2024-06-20"
