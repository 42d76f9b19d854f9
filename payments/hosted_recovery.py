"""Hosted session recovery automation (docs/runbooks/hosted-session-recovery.md): the scheduler
and its worker.

The scheduler reads due sessions with their `version`, then claims each one with a
conditional UPDATE on that version: two workers that read the same session race on that
UPDATE and exactly one wins. The provider call and the messages run with no transaction
open; the outcome is written only while the worker still holds the session's lease.
"""

from __future__ import annotations

import dataclasses

import structlog
from django.conf import settings
from django.utils import timezone

from notifications.communicators import HostedSessionRecoveryCommunicator
from payments import services as payments
from payments.adapters import CheckoutProvider, CheckoutProviderError
from payments.models import HostedCheckoutSession

logger = structlog.get_logger(__name__)


def schedule_hosted_session_recovery(
    *, owner: str, limit: int, lease_seconds: int | None = None
) -> list[int]:
    """Select stalled sessions by next_retry_at, attempt_count (retry_count) and status; claim
    them."""
    lease_seconds = lease_seconds or settings.WORKER_LEASE_SECONDS
    candidates = list(
        HostedCheckoutSession.objects.filter(payments.due_sessions_filter(timezone.now()))
        .order_by("next_retry_at", "pk")
        .values_list("pk", "version")[:limit]
    )
    claimed = []
    for session_id, version in candidates:
        if payments.hosted_session_claim(
            session_id=session_id, version=version, owner=owner, lease_seconds=lease_seconds
        ):
            claimed.append(session_id)
    logger.info(
        "hosted_session_recovery_scheduled",
        owner=owner,
        candidates=len(candidates),
        claimed=len(claimed),
    )
    return claimed


def notification_due(session: HostedCheckoutSession) -> str:
    """Why the customer should not hear from us on this attempt ("" means notify)."""
    if not (session.customer_email or session.customer_phone):
        return "no_contact"
    allowed_at = session.next_notification_allowed_at
    if allowed_at is not None and timezone.now() < allowed_at:
        return "cadence"
    return ""


def hosted_session_recovery_attempt(
    *,
    session_id: int,
    lease_owner: str,
    triggered_by: str,
    provider: CheckoutProvider,
    communicator: HostedSessionRecoveryCommunicator,
) -> str:
    session = HostedCheckoutSession.objects.get(pk=session_id)
    result = payments.RecoveryAttemptResult(triggered_by=triggered_by, started_at=timezone.now())
    attempt_number = session.attempt_count + 1
    link_expired = session.expires_at is None or session.expires_at <= timezone.now()
    if session.status != HostedCheckoutSession.Status.PENDING or link_expired:
        try:
            result.link = provider.create_link(
                reference=session.reference,
                amount=str(session.amount),
                currency=session.currency,
                idempotency_key=f"hosted-session-{session.pk}:attempt-{attempt_number}",
            )
        except CheckoutProviderError as exc:
            result.link_failure_code, result.link_failure_detail = exc.failure_code, exc.detail
    if result.link_failure_code:
        result.notification_skipped_reason = "no_valid_link"
    else:
        result.notification_skipped_reason = notification_due(session)
    if not result.notification_skipped_reason:
        contact = payments.hosted_session_contact(session)
        if result.link is not None:
            contact = dataclasses.replace(
                contact,
                checkout_url=result.link.url,
                expires_at=result.link.expires_at.isoformat(),
            )
        result.communications = communicator.notify(
            contact,
            triggered_by=f"automation:{triggered_by}",
            occasion=f"attempt-{attempt_number}",
        )
    _, outcome = payments.hosted_session_record_recovery_attempt(
        session_id=session_id, lease_owner=lease_owner, result=result
    )
    return outcome
