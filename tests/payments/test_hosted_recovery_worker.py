from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from notifications.models import CommunicationLog
from opsconsole.models import AuditEvent, WorkerStatus
from opsconsole.workers.switches import worker_switch_set
from payments import services
from payments.hosted_recovery import schedule_hosted_session_recovery
from payments.models import HostedCheckoutSession
from payments.workers import HostedSessionRecoveryWorker
from recovery.models import RecoveryItem
from recovery.tasks import run_hosted_recovery_worker
from tests.helpers import run_concurrently
from tests.payments.factories import HostedSessionFactory
from tests.payments.providers import channels_answer, checkout_answers, requests_to
from tests.recovery.factories import IntegrationFactory
from tests.workers import run_worker


def logs_for(session: HostedCheckoutSession) -> list[CommunicationLog]:
    return list(CommunicationLog.objects.filter(subject_id=str(session.pk)).order_by("id"))


@pytest.mark.django_db
def test_it_regenerates_an_expired_link_and_notifies_by_email_and_sms(providers):
    checkout_answers(providers, token="fresh")
    channels_answer(providers)
    session = HostedSessionFactory()

    summary = run_worker(HostedSessionRecoveryWorker, triggered_by="schedule")

    session.refresh_from_db()
    assert summary.outcomes == {"regenerated": 1}
    assert session.status == "pending"
    assert session.checkout_url == "https://checkout.example.test/pay/fresh"
    assert session.attempt_count == 1
    assert session.next_retry_at > timezone.now()
    assert session.last_notified_at is not None
    assert session.attempts_since_notification == 0
    attempt = session.metadata["recovery_attempts"][0]
    assert attempt["attempt"] == 1
    assert attempt["triggered_by"] == "schedule"
    assert (attempt["regenerated"], attempt["notified"]) == (True, True)
    assert session.metadata["automation"]["last_attempt"] == attempt
    # The provider call is idempotent per attempt, so a crashed worker's repeat is harmless.
    [checkout_call] = requests_to(providers, "/checkout")
    assert checkout_call.headers["Idempotency-Key"] == f"hosted-session-{session.pk}:attempt-1"
    [email] = requests_to(providers, "/email")
    assert email.json["to"] == "ana@example.test"
    assert email.json["context"]["checkout_url"] == session.checkout_url
    assert email.headers["Authorization"] == "Bearer email-key"
    logs = logs_for(session)
    assert [(log.channel, log.template, log.status) for log in logs] == [
        ("email", "hosted_session_recovery_email", "sent"),
        ("sms", "hosted_session_recovery_sms", "sent"),
    ]
    event = AuditEvent.objects.get(event="payments.hosted_session.recovery_attempted")
    assert event.before_state["retry_count"] == 0
    assert event.after_state["retry_count"] == 1
    assert event.before_state["status"] == "pending"


@pytest.mark.django_db
def test_it_leaves_sessions_alone_that_are_not_due_paid_or_exhausted(providers):
    HostedSessionFactory(expires_at=timezone.now() + timedelta(hours=1))
    paid = HostedSessionFactory()
    services.hosted_session_transition(session_id=paid.pk, transition="complete", actor="psp")
    HostedSessionFactory(attempt_count=5, max_retries=5)
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").claimed == 0
    assert providers.log == []


@pytest.mark.django_db
def test_a_still_valid_link_is_reminded_not_regenerated(providers):
    channels_answer(providers)
    session = HostedSessionFactory(next_retry_at=timezone.now() - timedelta(seconds=1))
    HostedCheckoutSession.objects.filter(pk=session.pk).update(
        expires_at=timezone.now() + timedelta(hours=2)
    )
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").outcomes == {
        "reminded": 1
    }
    assert requests_to(providers, "/checkout") == []
    assert len(requests_to(providers, "/email")) == 1


@pytest.mark.django_db
def test_the_notification_cadence_limits_how_often_the_customer_hears_from_us(providers, settings):
    settings.HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES = 360
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    run_worker(HostedSessionRecoveryWorker, triggered_by="schedule")
    session.refresh_from_db()
    with time_machine.travel(session.next_retry_at + timedelta(seconds=1)):
        assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").claimed == 1
    session.refresh_from_db()
    second = session.metadata["recovery_attempts"][1]
    assert (second["notified"], second["notification_skipped_reason"]) == (False, "cadence")
    assert session.attempts_since_notification == 1
    assert len(logs_for(session)) == 2  # only the first attempt's email and SMS


@pytest.mark.django_db
def test_channels_that_fail_do_not_fail_the_attempt(hanging_handler, providers):
    checkout_answers(providers)

    providers.expect_request("/email").respond_with_json({"error": "down"}, status=503)
    providers.expect_request("/sms").respond_with_handler(hanging_handler(1.5))
    session = HostedSessionFactory()

    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").outcomes == {
        "regenerated": 1
    }

    session.refresh_from_db()
    assert session.attempt_count == 1
    assert session.last_notified_at is None
    assert session.attempts_since_notification == 1
    assert [(log.channel, log.status, log.failure_code) for log in logs_for(session)] == [
        ("email", "failed", "http_503"),
        ("sms", "failed", "read_timeout"),
    ]
    assert session.metadata["recovery_attempts"][0]["notified"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "code"),
    [(503, '{"error": "down"}', "http_503"), (200, "<html>garbage", "invalid_response")],
)
def test_a_checkout_provider_failure_is_recorded_and_retried_later(providers, status, body, code):
    providers.expect_request("/checkout").respond_with_data(body, status=status)
    session = HostedSessionFactory()
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").outcomes == {
        "link_failed": 1
    }
    session.refresh_from_db()
    assert session.status == "pending"  # still the old, expired link
    assert session.checkout_url.endswith("/original")
    assert session.last_error.startswith(code)
    assert session.attempt_count == 1
    assert session.next_retry_at > timezone.now()
    attempt = session.metadata["recovery_attempts"][0]
    assert (attempt["link_failure_code"], attempt["notified"]) == (code, False)
    assert attempt["notification_skipped_reason"] == "no_valid_link"
    assert requests_to(providers, "/email") == []


@pytest.mark.django_db
def test_it_abandons_a_session_when_the_attempts_run_out(providers):
    checkout_answers(providers)
    channels_answer(providers)
    partner = IntegrationFactory(name="partner", event_types=["hosted_session.abandoned"])
    session = HostedSessionFactory(attempt_count=4, max_retries=5)
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").outcomes == {
        "abandoned": 1
    }
    session.refresh_from_db()
    assert (session.status, session.next_retry_at) == ("abandoned", None)
    assert AuditEvent.objects.filter(event="payments.hosted_session.recovery_exhausted").exists()
    # The outbox told the subscribed partner, in the worker's transaction.
    (item,) = RecoveryItem.objects.filter(integration=partner)
    assert (item.event_type, item.payload["session_id"]) == ("hosted_session.abandoned", session.pk)


@pytest.mark.django_db
def test_the_kill_switch_pauses_the_automation(providers, operator, settings):
    HostedSessionFactory()
    worker_switch_set(
        name="hosted_recovery_worker", enabled=False, actor=operator, reason="PSP outage"
    )
    summary = run_worker(HostedSessionRecoveryWorker, triggered_by="schedule")
    assert (summary.skipped, summary.claimed) == (True, 0)
    assert providers.log == []
    worker_switch_set(name="hosted_recovery_worker", enabled=True, actor=operator, reason="over")
    settings.WORKER_DEFAULTS_ENABLED = {"hosted_recovery_worker": False}
    # the row, when present, wins over the default
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").skipped is False


@pytest.mark.django_db
def test_the_settings_default_is_the_hosted_recovery_worker_enabled_switch(settings):
    settings.WORKER_DEFAULTS_ENABLED = {"hosted_recovery_worker": False}
    HostedSessionFactory()
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").skipped is True


@pytest.mark.smoke
@pytest.mark.django_db
def test_run_hosted_recovery_runs_one_manual_pass(settings, capsys):
    settings.PAYMENTS_CHECKOUT_URL = ""  # the sandbox provider and channels
    settings.NOTIFICATION_CHANNELS = {}
    session = HostedSessionFactory()
    call_command("run_hosted_recovery", "--triggered-by", "manual")
    assert '"claimed": 1' in capsys.readouterr().out
    session.refresh_from_db()
    assert session.metadata["automation"]["last_attempt"]["triggered_by"] == "manual"
    assert session.checkout_url.startswith("https://checkout.sandbox.invalid/")
    assert [log.provider for log in logs_for(session)] == ["sandbox", "sandbox"]
    assert WorkerStatus.objects.get(name="hosted_recovery_worker").last_triggered_by == "manual"


@pytest.mark.django_db
def test_the_schedule_task_runs_the_worker(settings):
    settings.PAYMENTS_CHECKOUT_URL = ""
    settings.NOTIFICATION_CHANNELS = {}
    HostedSessionFactory()
    summary = run_hosted_recovery_worker()
    assert (summary["triggered_by"], summary["claimed"]) == ("schedule", 1)


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_claim_with_a_stale_version_loses(settings):
    session = HostedSessionFactory()
    assert services.hosted_session_claim(
        session_id=session.pk, version=session.version, owner="a", lease_seconds=60
    )
    # b read the same version before a's claim bumped it
    assert not services.hosted_session_claim(
        session_id=session.pk, version=session.version, owner="b", lease_seconds=60
    )
    session.refresh_from_db()
    assert session.lease_owner == "a"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_schedulers_never_claim_the_same_session():
    sessions = [HostedSessionFactory() for _ in range(30)]
    claims = run_concurrently(
        lambda n: schedule_hosted_session_recovery(owner=f"worker-{n}", limit=30), 2
    )
    first, second = (set(c) for c in claims)
    assert first.isdisjoint(second)
    assert first | second == {s.pk for s in sessions}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_attempt_each_session_exactly_once(providers):
    checkout_answers(providers)
    channels_answer(providers)
    sessions = [HostedSessionFactory() for _ in range(12)]
    summaries = run_concurrently(
        lambda n: run_worker(HostedSessionRecoveryWorker, triggered_by="schedule"), 2
    )
    assert sum(s.claimed for s in summaries) == 12
    for session in sessions:
        session.refresh_from_db()
        assert session.attempt_count == 1
        assert len(session.metadata["recovery_attempts"]) == 1
        assert len(logs_for(session)) == 2
    keys = [r.headers["Idempotency-Key"] for r in requests_to(providers, "/email")]
    assert len(keys) == len(set(keys)) == 12


@pytest.mark.django_db
def test_a_crashed_workers_session_is_claimed_again_after_its_lease(providers):
    checkout_answers(providers)
    channels_answer(providers)
    session = HostedSessionFactory()
    assert schedule_hosted_session_recovery(owner="dead-worker", limit=10, lease_seconds=60)
    # leased to the dead worker
    assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").claimed == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert run_worker(HostedSessionRecoveryWorker, triggered_by="schedule").outcomes == {
            "regenerated": 1
        }
    session.refresh_from_db()
    assert session.attempt_count == 1
    assert session.lease_owner == ""


@pytest.mark.django_db
def test_a_scheduled_run_drains_every_due_session_not_one_batch(settings):
    settings.PAYMENTS_CHECKOUT_URL = ""
    settings.NOTIFICATION_CHANNELS = {}
    settings.WORKER_BATCH_SIZE = 50
    ours = [session.pk for session in HostedSessionFactory.create_batch(120)]
    summary = run_hosted_recovery_worker()
    # Every one of the 120 is attempted in this one run, 50 a batch. (A due session that
    # another test's connection committed would be drained too, so the count is >= 120.)
    assert not HostedCheckoutSession.objects.filter(pk__in=ours, attempt_count=0).exists()
    assert summary["claimed"] >= 120
    assert summary["batches"] == -(-summary["claimed"] // 50)
