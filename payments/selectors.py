"""Reads for hosted checkout sessions: the recoveryState payload and the Recovery Timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifications.models import CommunicationLog
from opsconsole.models import AuditEvent
from opsconsole.workers.switches import worker_enabled
from payments.models import HostedCheckoutSession
from payments.services import ATTEMPT_EVENTS, EVENT_PREFIX

HOSTED_RECOVERY_WORKER = "hosted_recovery_worker"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def hosted_session_recovery_state(session: HostedCheckoutSession) -> dict[str, Any]:
    """Everything a UI needs about the automation, annotated, in one payload."""
    metadata = session.metadata
    automation = session.automation_metadata
    return {
        "status": session.status,
        "attempts": session.attempt_count,
        "maxAttempts": session.max_retries,
        "attemptsRemaining": max(0, session.max_retries - session.attempt_count),
        "nextRetryAt": _iso(session.next_retry_at),
        "lastNotifiedAt": _iso(session.last_notified_at),
        "attemptsSinceNotification": session.attempts_since_notification,
        # The cadence the automation keeps between messages to the customer, and when the
        # next one may go out (now, when nothing has been sent).
        "notificationCadenceMinutes": settings.HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES,
        "nextNotificationAllowedAt": _iso(session.next_notification_allowed_at)
        or _iso(timezone.now()),
        "stalled": session.stalled,
        "overrideNextRetryAt": automation.get("override_next_retry_at"),
        "lastAttempt": automation.get("last_attempt"),
        "recoveryAttempts": metadata.get("recovery_attempts", []),
        "overrides": automation.get("overrides", []),
        "triggeredBy": metadata.get("triggered_by"),
        "triggeredAt": metadata.get("triggered_at"),
        "triggerNotified": metadata.get("trigger_notified"),
        # The customer's messages are on their way from the task queue (regenerate's answer).
        "notificationQueued": bool(metadata.get("notification_queued")),
        "automated": metadata.get("trigger_automated"),
        "automationEnabled": worker_enabled(HOSTED_RECOVERY_WORKER),
        "lastError": session.last_error,
    }


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # attempt | communication | operator | lifecycle | upcoming
    title: str
    actor: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    upcoming: bool = False


def _parsed(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def hosted_session_timeline(session: HostedCheckoutSession) -> list[TimelineEntry]:
    """Attempts, messages, operator actions and the next retry window, in time order."""
    entries = [TimelineEntry(at=session.created_at, kind="lifecycle", title="Session created")]
    for attempt in session.metadata.get("recovery_attempts", []):
        at = _parsed(attempt.get("at")) or session.created_at
        title = f"Recovery attempt {attempt.get('attempt')}: {attempt.get('outcome')}"
        if attempt.get("override_applied"):
            title += " (operator's override window)"
        entries.append(
            TimelineEntry(
                at=at,
                kind="attempt",
                title=title,
                actor=f"automation ({attempt.get('triggered_by')})",
                details={
                    "regenerated": attempt.get("regenerated"),
                    "notified": attempt.get("notified"),
                    "link_failure_code": attempt.get("link_failure_code"),
                    "notification_skipped_reason": attempt.get("notification_skipped_reason"),
                    "next_retry_at": attempt.get("next_retry_at"),
                },
            )
        )
    messages = CommunicationLog.objects.filter(
        subject_type=HostedCheckoutSession._meta.label_lower, subject_id=str(session.pk)
    ).order_by("id")
    for message in messages:
        entries.append(
            TimelineEntry(
                at=message.created_at,
                kind="communication",
                title=f"{message.get_channel_display()} {message.status}: {message.template}",
                actor=message.triggered_by,
                details={
                    "recipient": message.recipient,
                    "provider": message.provider,
                    "failure_code": message.failure_code,
                },
            )
        )
    events = (
        AuditEvent.objects.filter(
            object_type=HostedCheckoutSession._meta.label_lower, object_id=str(session.pk)
        )
        .exclude(event__in=(*ATTEMPT_EVENTS, f"{EVENT_PREFIX}.created"))
        .order_by("id")
    )
    for event in events:
        details = {k: v for k, v in (event.metadata or {}).items() if v not in (None, "", [])}
        if event.reason:
            details["reason"] = event.reason
        entries.append(
            TimelineEntry(
                at=event.created_at,
                kind="operator" if event.actor_user_id else "lifecycle",
                title=event.event.removeprefix("payments.hosted_session.").replace("_", " "),
                actor=event.actor,
                details=details,
            )
        )
    if session.next_retry_at and session.status in HostedCheckoutSession.RECOVERABLE:
        override = session.override_next_retry_at
        entries.append(
            TimelineEntry(
                at=session.next_retry_at,
                kind="upcoming",
                title="Next retry window" + (" (operator override)" if override else ""),
                upcoming=session.next_retry_at > timezone.now(),
                details={"attempts_remaining": session.max_retries - session.attempt_count},
            )
        )
    return sorted(entries, key=lambda entry: entry.at)
