"""Retention: customer data past RETENTION_DAYS is replaced by its hash; audit stays."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from notifications.models import CommunicationLog
from opsconsole.models import AuditEvent
from payments.models import WebhookFailure
from recovery.models import DeliveryAttempt
from recovery.workers import RetentionRedactor
from tests.recovery.factories import QueuedItemFactory
from tests.workers import deliver

EMAIL = "old.customer@example.com"


def sha(value) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def log_row(**fields) -> CommunicationLog:
    return CommunicationLog.objects.create(
        channel="email",
        template="t",
        recipient=EMAIL,
        status="sent",
        provider="sandbox",
        subject_type="booking",
        subject_id="1",
        triggered_by="t",
        idempotency_key=f"k{CommunicationLog.objects.count()}",
        **fields,
    )


@pytest.mark.django_db
def test_old_customer_data_becomes_its_hash_and_recent_data_stays(integration, httpserver):
    httpserver.expect_request("/hooks/crm").respond_with_json({"customer": EMAIL}, status=500)
    old_item = QueuedItemFactory(integration=integration, payload={"email": EMAIL})
    new_item = QueuedItemFactory(integration=integration, payload={"email": EMAIL})
    deliver()
    long_ago = timezone.now() - timedelta(days=91)
    DeliveryAttempt.objects.filter(item=old_item).update(started_at=long_ago)
    old_log, new_log = log_row(), log_row()
    CommunicationLog.objects.filter(pk=old_log.pk).update(created_at=long_ago)
    old_hook = WebhookFailure.objects.create(
        provider="stripe", event_id="evt_1", event_type="x", payload={"email": EMAIL}, error="e"
    )
    WebhookFailure.objects.filter(pk=old_hook.pk).update(created_at=long_ago)
    audit_before = AuditEvent.objects.count()

    summary = RetentionRedactor().run_once(triggered_by="test")
    assert summary.outcomes["redacted"] == 3

    attempt = DeliveryAttempt.objects.get(item=old_item)
    assert attempt.request_snapshot["body"] == {"redacted": True, "sha256": sha({"email": EMAIL})}
    assert attempt.response_snapshot["body"]["redacted"] is True
    assert attempt.response_snapshot["status"] == 500  # evidence other than the body stays
    assert attempt.redacted_at is not None
    assert json.loads(CommunicationLog.objects.get(pk=old_log.pk).recipient) == {
        "redacted": True,
        "sha256": sha(EMAIL),
    }
    assert WebhookFailure.objects.get(pk=old_hook.pk).payload["redacted"] is True
    # Recent rows are untouched.
    assert DeliveryAttempt.objects.get(item=new_item).request_snapshot["body"] == {"email": EMAIL}
    assert CommunicationLog.objects.get(pk=new_log.pk).recipient == EMAIL
    # Audited per table, and no audit event was deleted.
    redactions = AuditEvent.objects.filter(event="platform.retention.redacted")
    assert sorted(e.after_state["table"] for e in redactions) == [
        "communication_log",
        "delivery_attempts",
        "webhook_failures",
    ]
    assert AuditEvent.objects.count() >= audit_before + 3
    again = RetentionRedactor().run_once(triggered_by="test")
    # Three tables, and nothing to purge: no stale event ids, idle counters, expired tokens
    # or week-old outcome minutes.
    assert again.outcomes == {"nothing_due": 3 + len(RetentionRedactor.PURGES)}
    assert set(RetentionRedactor.PURGES) >= {"ingested_events", "worker_outcome_minutes"}


@pytest.mark.django_db
def test_the_retention_job_is_scheduled_daily():
    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    schedule = Schedule.objects.get(name="retention_redactor")
    assert schedule.minutes == 24 * 60
