from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.models import CommunicationLog
from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession
from payments.selectors import hosted_session_timeline
from payments.workers import HostedSessionRecoveryWorker
from tests.helpers import error_of, run_concurrently, token_client
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import channels_answer, checkout_answers, requests_to
from tests.workers import run_queued_tasks


def session_url(session_id) -> str:
    return f"/api/v1/billing/sessions/{session_id}"


def regenerate_url(session_id) -> str:
    return f"/api/v1/billing/sessions/{session_id}/regenerate"


@pytest.mark.django_db
def test_it_regenerates_notifies_and_answers_the_recovery_state(
    providers, operator_client, django_capture_on_commit_callbacks
):
    checkout_answers(providers, token="manual")
    channels_answer(providers)
    session = HostedSessionFactory(attempt_count=2)

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            regenerate_url(session.pk), {"reason": "customer called"}, format="json"
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["checkoutUrl"] == "https://checkout.example.test/pay/manual"
    state = body["recoveryState"]
    assert state["attempts"] == 2
    assert state["attemptsRemaining"] == 3
    assert state["triggeredBy"] == "operator"
    # The request waited for the provider's link only; the messages go out from a task.
    assert (state["triggerNotified"], state["notificationQueued"]) == (False, True)
    assert state["automated"] is False
    assert state["overrideNextRetryAt"] is None
    assert state["automationEnabled"] is True
    assert requests_to(providers, "/email") == []

    assert run_queued_tasks("payments.tasks.hosted_session_notify_after_regeneration") == [True]
    assert len(requests_to(providers, "/email")) == 1
    state = operator_client.get(session_url(session.pk)).json()["recoveryState"]
    assert (state["triggerNotified"], state["notificationQueued"]) == (True, False)
    assert state["lastNotifiedAt"] is not None
    events = list(
        AuditEvent.objects.filter(object_id=str(session.pk))
        .order_by("id")
        .values_list("event", "actor", "reason")
    )
    assert events[-2:] == [
        ("payments.hosted_session.regenerated", "operator", "customer called"),
        ("payments.hosted_session.customer_notified", "operator", "customer called"),
    ]


@pytest.mark.django_db
def test_the_runbook_override_is_honoured_by_the_next_run_and_shows_on_the_timeline(
    providers, operator_client
):
    """docs/runbooks/hosted-session-recovery.md: override via the API, the next run honours it, the
    timeline shows it."""
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory(attempt_count=4, max_retries=8, attempts_since_notification=4)
    override = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)

    response = operator_client.post(
        regenerate_url(session.pk),
        {"overrideNextRetryAt": override.isoformat(), "automated": True, "reason": "cadence"},
        format="json",
    )

    assert response.status_code == 200, response.content
    state = response.json()["recoveryState"]
    assert state["overrideNextRetryAt"] == override.isoformat()
    assert state["nextRetryAt"] == override.isoformat()
    assert (state["automated"], state["triggerNotified"]) == (True, False)
    assert state["stalled"] is True
    assert state["overrides"][0]["set_by"] == "operator"
    assert requests_to(providers, "/email") == []  # automated: the scheduler tells the customer

    # Before the window, the scheduler leaves the session alone ...
    assert HostedSessionRecoveryWorker().run_once(triggered_by="schedule").claimed == 0
    # ... and at the window it runs the attempt and notifies.
    with time_machine.travel(override + timedelta(seconds=30)):
        summary = HostedSessionRecoveryWorker().run_once(triggered_by="schedule")
    assert summary.claimed == 1
    session.refresh_from_db()
    attempt = session.metadata["recovery_attempts"][-1]
    assert attempt["override_applied"] == override.isoformat()
    assert attempt["notified"] is True
    assert session.override_next_retry_at is None
    assert session.attempts_since_notification == 0

    timeline = hosted_session_timeline(session)
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
    kinds = [(entry.kind, entry.title) for entry in timeline]
    assert ("operator", "regenerated") in kinds
    assert any(k == "attempt" and "operator's override window" in t for k, t in kinds)
    assert ("communication", "Email sent: hosted_session_recovery_email") in kinds
    assert ("communication", "SMS sent: hosted_session_recovery_sms") in kinds
    assert timeline[-1].kind == "upcoming"
    regenerated = next(e for e in timeline if e.title == "regenerated")
    assert regenerated.actor == "operator"
    assert regenerated.details["reason"] == "cadence"


@pytest.mark.django_db
def test_an_override_revives_an_abandoned_session_for_one_more_attempt(providers, operator_client):
    checkout_answers(providers)
    session = HostedSessionFactory(attempt_count=5, max_retries=5)
    HostedCheckoutSession.objects.filter(pk=session.pk).update(status="abandoned")
    override = timezone.now() + timedelta(minutes=10)
    response = operator_client.post(
        regenerate_url(session.pk),
        {"overrideNextRetryAt": override.isoformat(), "automated": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["recoveryState"]["attemptsRemaining"] == 1
    with time_machine.travel(override + timedelta(seconds=1)):
        assert HostedSessionRecoveryWorker().run_once(triggered_by="schedule").claimed == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"overrideNextRetryAt": "next tuesday"}, "overrideNextRetryAt"),
        ({"overrideNextRetryAt": "2020-01-01T00:00:00Z"}, "overrideNextRetryAt"),
        ({"automated": "maybe"}, "automated"),
    ],
)
def test_bad_input_is_a_400_envelope_and_changes_nothing(
    providers, operator_client, payload, field
):
    session = HostedSessionFactory()
    response = operator_client.post(regenerate_url(session.pk), payload, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "PAY-400-INVALID-PAYLOAD"
    assert field in error["details"]["fields"]
    assert providers.log == []
    assert HostedCheckoutSession.objects.get(pk=session.pk).version == session.version


@pytest.mark.django_db
def test_unknown_and_malformed_session_ids(operator_client):
    assert error_of(operator_client.post(regenerate_url(999999), {}, format="json"))["code"] == (
        "PAY-404-SESSION-NOT-FOUND"
    )
    response = operator_client.post(regenerate_url("abc"), {}, format="json")
    assert (response.status_code, error_of(response)["code"]) == (400, "PAY-400-INVALID-PAYLOAD")


@pytest.mark.django_db
def test_a_paid_session_cannot_be_regenerated(operator_client, providers):
    session = HostedSessionFactory()
    HostedCheckoutSession.objects.filter(pk=session.pk).update(status="completed")
    response = operator_client.post(regenerate_url(session.pk), {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["details"]["status"] == "completed"
    assert providers.log == []


@pytest.mark.django_db
def test_a_checkout_provider_outage_is_a_503_and_changes_nothing(providers, operator_client):
    providers.expect_request("/checkout").respond_with_json({"error": "down"}, status=502)
    session = HostedSessionFactory()
    response = operator_client.post(regenerate_url(session.pk), {}, format="json")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "PAY-503-DEPENDENCY-UNAVAILABLE"
    assert error["details"]["provider_failure_code"] == "http_502"
    after = HostedCheckoutSession.objects.get(pk=session.pk)
    assert (after.version, after.checkout_url) == (session.version, session.checkout_url)
    assert not AuditEvent.objects.filter(event="payments.hosted_session.regenerated").exists()


@pytest.mark.django_db
def test_permissions(viewer_client, anonymous_client, providers):
    session = HostedSessionFactory()
    assert viewer_client.post(regenerate_url(session.pk), {}, format="json").status_code == 403
    assert anonymous_client.post(regenerate_url(session.pk), {}, format="json").status_code == 401
    detail = viewer_client.get(f"/api/v1/billing/sessions/{session.pk}")
    assert detail.status_code == 200
    assert detail.json()["recoveryState"]["attempts"] == 0


@pytest.mark.django_db
def test_the_worker_holding_a_session_makes_a_regenerate_wait(providers, operator_client):
    from payments.hosted_recovery import schedule_hosted_session_recovery

    checkout_answers(providers)
    session = HostedSessionFactory()
    schedule_hosted_session_recovery(owner="busy-worker", limit=1)
    response = operator_client.post(regenerate_url(session.pk), {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "PAY-409-SESSION-CHANGED"


@pytest.mark.django_db(transaction=True)
def test_one_regeneration_per_idempotency_key_under_concurrent_retries(providers, operator):
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()

    def post(_: int):
        return token_client(operator).post(
            regenerate_url(session.pk),
            {"reason": "double click"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="regen-1",
        )

    statuses = sorted(r.status_code for r in run_concurrently(post, 4))
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert AuditEvent.objects.filter(event="payments.hosted_session.regenerated").count() == 1
    run_queued_tasks("payments.tasks.hosted_session_notify_after_regeneration")
    assert CommunicationLog.objects.filter(channel="email").count() == 1
    replay = post(0)
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (200, "true")
    assert run_queued_tasks() == []  # the replay queued no second message
