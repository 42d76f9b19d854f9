from __future__ import annotations

import time

import pytest

from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession, StripeEvent, WebhookFailure
from tests.helpers import action_post, error_of, run_concurrently
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import SECRET, URL, deliver, signed


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def checkout_completed(event_id: str, reference: str) -> dict:
    return {
        "id": event_id,
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_1", "client_reference_id": reference}},
    }


@pytest.mark.django_db
def test_a_completed_checkout_completes_the_session_once(client):
    session = HostedSessionFactory()
    response = deliver(client, checkout_completed("evt_1", session.reference))
    assert (response.status_code, response.json()) == (200, {"received": True})
    session.refresh_from_db()
    assert session.status == "completed"
    again = deliver(client, checkout_completed("evt_1", session.reference))
    assert again.json() == {"received": True, "duplicate": True}
    record = StripeEvent.objects.get(event_id="evt_1")
    assert (record.status, record.deliveries) == ("processed", 2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "whsec_wrong"},
        {"timestamp": int(time.time()) - 3600},  # replayed an hour later
    ],
)
def test_a_bad_signature_is_a_400_envelope_and_nothing_is_stored(client, tamper):
    response = deliver(client, checkout_completed("evt_2", "x"), **tamper)
    assert response.status_code == 400
    assert error_of(response)["code"] == "PAY-400-WEBHOOK-SIGNATURE-INVALID"
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_missing_signature_or_garbage_body_is_a_400(client):
    response = client.post(URL, data=b"not json", content_type="application/json")
    assert error_of(response)["code"] == "PAY-400-WEBHOOK-SIGNATURE-INVALID"


@pytest.mark.django_db
def test_without_a_webhook_secret_it_accepts_nothing(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = deliver(client, checkout_completed("evt_3", "x"))
    assert (response.status_code, error_of(response)["code"]) == (
        503,
        "PAY-503-WEBHOOK-NOT-CONFIGURED",
    )


@pytest.mark.django_db
def test_a_critical_failure_is_stored_answered_200_and_reprocessed_from_the_admin(
    client, admin_client
):
    event = checkout_completed("evt_4", "hcs_not_yet_known")
    response = deliver(client, event)
    assert (response.status_code, response.json()) == (
        200,
        {"received": True, "processingFailed": True},
    )
    failure = WebhookFailure.objects.get()
    # Its session is not here (yet): our worker retries it; an operator may run it now.
    assert (failure.status, failure.event_type) == ("RETRYING", "checkout.session.completed")
    assert "hcs_not_yet_known" in failure.error
    assert failure.payload == event

    session = HostedSessionFactory(reference="hcs_not_yet_known")
    url = "/admin/payments/webhookfailure/"
    action_post(
        admin_client, url, "reprocess_failures", [failure.pk], confirm="yes", reason="fixed"
    )
    failure.refresh_from_db()
    assert (failure.status, failure.resolved_by) == ("REPROCESSED", "root")
    session.refresh_from_db()
    assert session.status == "completed"
    assert StripeEvent.objects.get(event_id="evt_4").status == "processed"
    assert AuditEvent.objects.get(event="payments.webhook_failure.reprocessed").reason == "fixed"


@pytest.mark.django_db
def test_non_critical_failures_are_logged_not_stored_and_unknown_types_ignored(client):
    expired = {
        "id": "evt_5",
        "type": "checkout.session.expired",
        "data": {"object": {"id": "cs_x", "client_reference_id": "nobody"}},
    }
    assert deliver(client, expired).json() == {"received": True, "processingFailed": True}
    assert not WebhookFailure.objects.exists()
    unknown = {"id": "evt_6", "type": "customer.created", "data": {"object": {}}}
    assert deliver(client, unknown).json() == {"received": True, "ignored": True}


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_are_processed_once(settings):
    from django.test import Client

    settings.STRIPE_WEBHOOK_SECRET = SECRET
    session = HostedSessionFactory()
    payload, signature = signed(checkout_completed("evt_7", session.reference))

    def post(_: int) -> dict:
        response = Client().post(
            URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
        return response.json()

    answers = run_concurrently(post, 6)
    assert answers.count({"received": True}) == 1
    assert answers.count({"received": True, "duplicate": True}) == 5
    assert StripeEvent.objects.get(event_id="evt_7").deliveries == 6
    assert HostedCheckoutSession.objects.get(pk=session.pk).status == "completed"
    assert AuditEvent.objects.filter(event="payments.hosted_session.completed").count() == 1
