"""Hosted session recovery automation (seed 000): the scheduler and its worker.

The scheduler reads due sessions with their `version`, then claims each one with a
conditional UPDATE on that version: two workers that read the same session race on that
UPDATE and exactly one wins. The provider call and the messages run with no transaction
open; the outcome is written only while the worker still holds the session's lease.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from enum import StrEnum

import structlog
from django.conf import settings
from django.utils import timezone

from notifications.communicators import HostedSessionRecoveryCommunicator
from opsconsole.claims import RunContext
from opsconsole.context import bound_context
from opsconsole.workers import BatchWorker, register_worker
from payments import services as payments
from payments.adapters import CheckoutProvider, CheckoutProviderError, default_checkout_provider
from payments.errors import HostedSessionChanged
from payments.models import HostedCheckoutSession

logger = structlog.get_logger(__name__)


def schedule_hosted_session_recovery(
    *, owner: str, limit: int, lease_seconds: int | None = None
) -> list[int]:
    """Select stalled sessions by next_retry_at, retry_count and status; claim them."""
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
    if session.last_notified_at is None:
        return ""
    interval = timedelta(minutes=settings.HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES)
    if timezone.now() - session.last_notified_at < interval:
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
    attempt_number = session.retry_count + 1
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


@register_worker
class HostedSessionRecoveryWorker(BatchWorker):
    """Regenerates stalled hosted checkout links and reminds the customer (seed 000)."""

    name = "hosted_recovery_worker"
    description = "Hosted checkout session recovery: new links, reminders, cadence (seed 000)"
    schedule_task = "recovery.tasks.run_hosted_recovery_worker"
    schedule_minutes = 5

    def __init__(
        self,
        *,
        provider: CheckoutProvider | None = None,
        communicator: HostedSessionRecoveryCommunicator | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        self.provider = provider or default_checkout_provider()
        self.communicator = communicator or HostedSessionRecoveryCommunicator()

    class Outcome(StrEnum):
        REGENERATED = "regenerated"  # a new checkout link
        REMINDED = "reminded"  # the same link, the customer reminded
        LINK_FAILED = "link_failed"
        ABANDONED = "abandoned"  # retries exhausted
        LEASE_LOST = "lease_lost"

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return schedule_hosted_session_recovery(
            owner=run.owner, limit=limit, lease_seconds=self.lease_seconds
        )

    def process(self, item_id: int, run: RunContext) -> Outcome:
        with bound_context():
            try:
                return self.Outcome(
                    hosted_session_recovery_attempt(
                        session_id=item_id,
                        lease_owner=run.owner,
                        triggered_by=run.triggered_by,
                        provider=self.provider,
                        communicator=self.communicator,
                    )
                )
            except HostedSessionChanged:
                return self.Outcome.LEASE_LOST
