"""Hosted checkout sessions: creation, transitions, the recovery worker's claim and the record of
each recovery attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.communicators import (
    CommunicationOutcome,
)
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from payments.adapters import (
    CheckoutLink,
)
from payments.errors import (
    HostedSessionChanged,
    HostedSessionNotFound,
)
from payments.events import hosted_session_event
from payments.models import HostedCheckoutSession

logger = structlog.get_logger(__name__)


EVENT_PREFIX = "payments.hosted_session"


EVENT_RECOVERY_ATTEMPTED = f"{EVENT_PREFIX}.recovery_attempted"


EVENT_RECOVERY_EXHAUSTED = f"{EVENT_PREFIX}.recovery_exhausted"


EVENT_REGENERATED = f"{EVENT_PREFIX}.regenerated"


EVENT_CUSTOMER_NOTIFIED = f"{EVENT_PREFIX}.customer_notified"


# Attempts are on the timeline from the session's own metadata; the audit copy is for search.
ATTEMPT_EVENTS = (EVENT_RECOVERY_ATTEMPTED, EVENT_RECOVERY_EXHAUSTED)


Session = HostedCheckoutSession


def hosted_recovery_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.HOSTED_RECOVERY_MAX_ATTEMPTS,
        base_seconds=settings.HOSTED_RECOVERY_BACKOFF_BASE_SECONDS,
        cap_seconds=settings.HOSTED_RECOVERY_BACKOFF_CAP_SECONDS,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _lease_free(now: datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def due_sessions_filter(now: datetime) -> Q:
    """What the recovery scheduler may pick up: recoverable, due, budget left, not leased."""
    return Q(
        status__in=Session.RECOVERABLE, next_retry_at__lte=now, attempt_count__lt=F("max_retries")
    ) & _lease_free(now)


def hosted_session_get(*, session_id: int, for_update: bool = False) -> HostedCheckoutSession:
    queryset = Session.objects.select_for_update() if for_update else Session.objects
    session = queryset.filter(pk=session_id).first()
    if session is None:
        raise HostedSessionNotFound()
    return session


def _save(session: HostedCheckoutSession) -> None:
    """Every write bumps the optimistic-lock version."""
    session.version += 1
    session.save()


@transaction.atomic
def hosted_session_create(
    *,
    reference: str,
    amount: Decimal,
    currency: str,
    customer_email: str = "",
    customer_phone: str = "",
    checkout_url: str,
    expires_at: datetime,
    actor: audit.Actor = None,
    provider_session_id: str = "",
) -> HostedCheckoutSession:
    # The automation first looks at a session when its link expires unpaid.
    session = Session.objects.create(
        reference=reference,
        amount=amount,
        currency=currency,
        customer_email=customer_email,
        customer_phone=customer_phone,
        checkout_url=checkout_url,
        expires_at=expires_at,
        next_retry_at=expires_at,
        provider_session_id=provider_session_id,
    )
    audit.record(f"{EVENT_PREFIX}.created", obj=session, after=session.state(), actor=actor)
    return session


@transaction.atomic
def hosted_session_transition(
    *, session_id: int, transition: str, actor: audit.Actor, reason: str = "", **kwargs: Any
) -> HostedCheckoutSession:
    """Provider-driven changes: expire, fail, complete, cancel (webhooks and operators)."""
    session = hosted_session_get(session_id=session_id, for_update=True)
    before = session.state()
    getattr(session, transition)(**kwargs)
    if transition in ("complete", "cancel"):
        session.lease_owner, session.lease_expires_at = "", None
    _save(session)
    audit.record(
        f"{EVENT_PREFIX}.{session.status}",
        obj=session,
        before=before,
        after=session.state(),
        actor=actor,
        reason=reason,
    )
    hosted_session_event(session)
    return session


def hosted_session_claim(*, session_id: int, version: int, owner: str, lease_seconds: int) -> bool:
    """The optimistic lock: claim only the version this worker read. False: someone was first."""
    now = timezone.now()
    claimed = Session.objects.filter(
        due_sessions_filter(now), pk=session_id, version=version
    ).update(
        version=F("version") + 1,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    return claimed == 1


@dataclass
class RecoveryAttemptResult:
    """What one automated attempt did outside the database, to be written in one go."""

    triggered_by: str
    started_at: datetime
    link: CheckoutLink | None = None
    link_failure_code: str = ""
    link_failure_detail: str = ""
    communications: CommunicationOutcome = field(default_factory=CommunicationOutcome)
    notification_skipped_reason: str = ""


@transaction.atomic
def hosted_session_record_recovery_attempt(
    *, session_id: int, lease_owner: str, result: RecoveryAttemptResult
) -> tuple[HostedCheckoutSession, str]:
    """Write an attempt's outcome, only if this worker still holds the session (compare-and-set)."""
    session = hosted_session_get(session_id=session_id, for_update=True)
    if session.lease_owner != lease_owner or session.status not in Session.RECOVERABLE:
        raise HostedSessionChanged(
            f"session {session_id} changed hands during the attempt; outcome dropped"
        )
    before = session.state()
    now = timezone.now()
    if result.link is not None:
        session.regenerate(
            checkout_url=result.link.url,
            expires_at=result.link.expires_at,
            provider_session_id=result.link.provider_session_id,
        )
    session.attempt_count += 1
    notified = result.communications.notified
    if notified:
        session.last_notified_at = now
        session.attempts_since_notification = 0
    else:
        session.attempts_since_notification += 1
    session.last_error = (
        f"{result.link_failure_code}: {result.link_failure_detail}".strip(": ")
        if result.link_failure_code
        else ""
    )
    automation = dict(session.automation_metadata)
    override_applied = automation.pop("override_next_retry_at", None)
    if session.attempt_count >= session.max_retries:
        session.abandon()
        outcome, event = "abandoned", EVENT_RECOVERY_EXHAUSTED
    else:
        session.next_retry_at = hosted_recovery_policy().next_retry_at(
            session.attempt_count, now=now
        )
        outcome = (
            "regenerated"
            if result.link
            else "link_failed"
            if result.link_failure_code
            else "reminded"
        )
        event = EVENT_RECOVERY_ATTEMPTED
    attempt = {
        "attempt": session.attempt_count,
        "at": now.isoformat(),
        "started_at": result.started_at.isoformat(),
        "triggered_by": result.triggered_by,
        "outcome": outcome,
        "regenerated": result.link is not None,
        "link_failure_code": result.link_failure_code,
        "notified": notified,
        "notification_skipped_reason": result.notification_skipped_reason,
        "communications": result.communications.summary(),
        "override_applied": override_applied,
        "next_retry_at": _iso(session.next_retry_at),
    }
    automation["last_attempt"] = attempt
    session.metadata = {
        **session.metadata,
        "recovery_attempts": [*session.metadata.get("recovery_attempts", []), attempt],
        "automation": automation,
    }
    session.lease_owner, session.lease_expires_at = "", None
    _save(session)
    audit.record(
        event,
        obj=session,
        before=before,
        after=session.state(),
        actor=f"worker:hosted_recovery_worker ({result.triggered_by})",
        metadata={"attempt": attempt},
    )
    hosted_session_event(session)
    return session, outcome
