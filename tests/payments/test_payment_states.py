"""Payments, Stripe events and webhook failures change state only through their
transitions (django-fsm-2): no code path can write a status the model does not allow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_fsm import TransitionNotAllowed

from payments.models import Payment, StripeEvent, WebhookFailure
from payments.refunds import payment_record


@pytest.mark.django_db
def test_a_payment_is_refunded_through_its_transition_only():
    payment = payment_record(
        reference="pay-states",
        subject="booking:1",
        amount=Decimal("30.00"),
        currency="EUR",
        method="card",
        provider_payment_id="pi_states",
    )
    with pytest.raises(AttributeError):
        payment.status = Payment.Status.REFUNDED
    payment.record_refunded(amount_refunded=Decimal("10.00"))
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED
    payment.record_refunded(amount_refunded=Decimal("30.00"))
    payment.save()
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("30.00"))


@pytest.mark.django_db
def test_an_event_and_a_failure_move_through_their_transitions():
    event = StripeEvent.objects.create(event_id="evt_states", event_type="charge.refunded")
    event.mark_failed(error="boom")
    event.reprocess()
    event.mark_processed()
    assert (event.status, event.error) == ("processed", "")
    with pytest.raises(TransitionNotAllowed):
        event.mark_failed(error="after it was processed")

    failure = WebhookFailure.objects.create(
        provider="stripe",
        event_id="evt_states",
        event_type="charge.refunded",
        payload={},
        error="x",
    )
    failure.mark_reprocessed(resolved_by="olga")
    failure.save()
    with pytest.raises(TransitionNotAllowed):
        failure.mark_reprocessed(resolved_by="someone else")
    failure.refresh_from_db()
    assert (failure.status, failure.resolved_by) == ("REPROCESSED", "olga")
