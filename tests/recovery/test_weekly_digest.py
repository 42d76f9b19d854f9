"""The weekly operations digest (docs/runbooks/incident-response.md): the last complete ISO
week's failures by group, recoveries, incidents, DLQ age and slowest partners, sent once through
the email provider (Resend on a local server), re-runnable for a given week with --week."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from opsconsole.models import AuditEvent, Incident
from recovery.models import DeliveryRollup, WeeklyDigest
from recovery.reports.weekly_digest import WeeklyDigestWorker, last_complete_week, week_bounds
from tests.recovery.factories import IntegrationFactory, ParkedItemFactory
from tests.workers import run_worker

IN_THE_WEEK = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday of 2026-W47
MONDAY_AFTER = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)


@pytest.fixture
def resend(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        "email": {"url": "", "api_key": "", "provider": "anymail"},
    }
    settings.ANYMAIL_ESP = "resend"
    settings.ANYMAIL = {
        "RESEND_API_KEY": "re_test_key",
        "RESEND_API_URL": httpserver.url_for("/"),
        "WEBHOOK_SECRET": None,
        "REQUESTS_TIMEOUT": 1,
    }
    settings.DEFAULT_FROM_EMAIL = "Ops Console <no-reply@console.example.com>"
    settings.OPERATIONS_DIGEST_EMAIL = "ops@example.com"
    return httpserver


@pytest.fixture
def a_week_of_operations(db):
    with time_machine.travel(IN_THE_WEEK, tick=False):
        crm = IntegrationFactory(name="crm")
        slow = IntegrationFactory(name="slow-erp")
        ParkedItemFactory(integration=crm)
        ParkedItemFactory(integration=crm)
        Incident.objects.create(title="Stripe 503s", severity="sev1", opened_by="oncall")
    DeliveryRollup.objects.create(
        integration=crm, minute=IN_THE_WEEK, succeeded=20, latency_le_100=20
    )
    DeliveryRollup.objects.create(
        integration=slow, minute=IN_THE_WEEK, succeeded=8, failed=2, latency_over=10
    )


def emails(server) -> list[dict]:
    return [json.loads(r.data) for r, _ in server.log if r.path == "/emails"]


@pytest.mark.django_db
def test_the_last_complete_week_is_sent_once_with_its_figures(resend, a_week_of_operations):
    resend.expect_request("/emails", method="POST").respond_with_json({"id": "em_1"})
    with time_machine.travel(MONDAY_AFTER):
        assert last_complete_week() == "2026-W47"
        assert run_worker(WeeklyDigestWorker).outcomes == {"sent": 1}
        assert run_worker(WeeklyDigestWorker).claimed == 0  # sent: the next tick finds it so
    (email,) = emails(resend)
    assert email["to"] == ["ops@example.com"]
    assert email["subject"] == ("Ops Console weekly digest 2026-W47: 2 new failures, 1 incidents")
    text = email["text"]
    assert "integration: integration_delivery 2" in text
    assert "[sev1] Stripe 503s (open" in text
    assert "integration_delivery: 2 dead" in text
    # The slowest partner first: every delivery of slow-erp took over 10 s.
    slowest = text.split("Slowest partners")[1]
    assert slowest.index("slow-erp: p95 >10000 ms") < slowest.index("crm: p95 <=100 ms")
    request = next(r for r, _ in resend.log if r.path == "/emails")
    assert request.headers["Idempotency-Key"] == "weekly-digest:2026-W47:1"
    digest = WeeklyDigest.objects.get(week="2026-W47")
    assert (digest.sends, digest.summary["failures_total"]) == (1, 2)


@pytest.mark.django_db
def test_a_failed_send_is_retried_next_tick_and_an_unset_address_is_reported(
    resend, a_week_of_operations, settings
):
    settings.OPERATIONS_DIGEST_EMAIL = ""
    with time_machine.travel(MONDAY_AFTER):
        assert run_worker(WeeklyDigestWorker).outcomes == {"not_configured": 1}
        settings.OPERATIONS_DIGEST_EMAIL = "ops@example.com"
        resend.expect_oneshot_request("/emails", method="POST").respond_with_data(
            "upstream down", status=503
        )
        assert run_worker(WeeklyDigestWorker).outcomes == {"send_failed": 1}
        assert WeeklyDigest.objects.get(week="2026-W47").last_failure
        resend.expect_request("/emails", method="POST").respond_with_json({"id": "em_2"})
        assert run_worker(WeeklyDigestWorker).outcomes == {"sent": 1}
    keys = [r.headers["Idempotency-Key"] for r, _ in resend.log if r.path == "/emails"]
    assert keys == ["weekly-digest:2026-W47:1", "weekly-digest:2026-W47:1"]


@pytest.mark.django_db
def test_week_reruns_a_given_week_as_a_new_message_audited(resend, a_week_of_operations, capsys):
    resend.expect_request("/emails", method="POST").respond_with_json({"id": "em_3"})
    call_command("send_weekly_digest", "--week", "2026-W47")
    call_command("send_weekly_digest", "--week", "2026-W47")
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {
        "week": "2026-W47",
        "outcome": "sent",
    }
    keys = [r.headers["Idempotency-Key"] for r, _ in resend.log if r.path == "/emails"]
    assert keys == ["weekly-digest:2026-W47:1", "weekly-digest:2026-W47:2"]
    assert AuditEvent.objects.filter(event="platform.weekly_digest.resent").count() == 2
    with pytest.raises(CommandError, match="not an ISO week"):
        call_command("send_weekly_digest", "--week", "2026-47")
    assert week_bounds("2026-W47")[0] == datetime(2026, 11, 16, tzinfo=UTC)


@pytest.mark.django_db
def test_the_digest_worker_has_a_kill_switch_and_shows_in_readyz(resend, a_week_of_operations):
    from opsconsole.monitoring.health import readiness
    from opsconsole.workers.switches import worker_switch_set

    worker_switch_set(
        name="weekly_digest_scheduler", enabled=False, actor="oncall", reason="mail storm"
    )
    with time_machine.travel(MONDAY_AFTER):
        assert run_worker(WeeklyDigestWorker).skipped
    assert emails(resend) == [] and not WeeklyDigest.objects.exists()
    assert "weekly_digest_scheduler" in readiness()["components"]
