"""A new checkout link for a stalled session, and telling the customer (operator and automation
alike)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from notifications.communicators import (
    HostedSessionContact,
    HostedSessionRecoveryCommunicator,
)
from opsconsole.evidence import audit
from opsconsole.workers.wakes import run_after_commit
from payments.adapters import (
    CheckoutLink,
    CheckoutProvider,
    CheckoutProviderError,
)
from payments.checkout_providers import default_checkout_provider
from payments.errors import (
    CheckoutProviderUnavailable,
    HostedSessionChanged,
    HostedSessionNotRegenerable,
    PaymentsInvalidPayload,
)
from payments.models import HostedCheckoutSession
from payments.services.sessions import (
    EVENT_CUSTOMER_NOTIFIED,
    EVENT_REGENERATED,
    Session,
    _iso,
    _save,
    hosted_session_get,
)


def hosted_session_contact(session: HostedCheckoutSession) -> HostedSessionContact:
    return HostedSessionContact(
        session_id=session.pk,
        reference=session.reference,
        email=session.customer_email,
        phone=session.customer_phone,
        checkout_url=session.checkout_url,
        amount=str(session.amount),
        currency=session.currency,
        expires_at=_iso(session.expires_at),
    )


def hosted_session_regenerate(
    *,
    session_id: int,
    actor: audit.Actor,
    override_next_retry_at: datetime | None = None,
    automated: bool = False,
    reason: str = "",
    provider: CheckoutProvider | None = None,
) -> HostedCheckoutSession:
    """Issue a fresh checkout link now; optionally move the scheduler's next window.

    `automated=True` documents a scripted cadence change: the link is regenerated and the
    customer hears about it from the scheduler's next attempt. Otherwise a task notifies the
    customer right after the commit. The provider call runs with no transaction open, bounded
    by the web timeout when a request makes it.
    """
    session = hosted_session_get(session_id=session_id)
    _check_regenerable(session)
    if override_next_retry_at is not None and override_next_retry_at <= timezone.now():
        raise PaymentsInvalidPayload(
            "overrideNextRetryAt must be in the future.",
            details={"fields": {"overrideNextRetryAt": ["Must be in the future."]}},
        )
    provider = provider or default_checkout_provider()
    try:
        link = provider.create_link(
            reference=session.reference,
            amount=str(session.amount),
            currency=session.currency,
            idempotency_key=f"hosted-session-{session.pk}:regenerate:v{session.version}",
        )
    except CheckoutProviderError as exc:
        raise CheckoutProviderUnavailable(
            details={"provider_failure_code": exc.failure_code}
        ) from exc
    session = _hosted_session_apply_regeneration(
        session_id=session.pk,
        read_version=session.version,
        link=link,
        actor=actor,
        override_next_retry_at=override_next_retry_at,
        automated=automated,
        reason=reason,
    )
    if not automated:
        # The customer's email and text go out from the task queue once this commits, with
        # the workers' timeouts: the operator's request waits for the provider link only.
        run_after_commit(
            "payments.tasks.hosted_session_notify_after_regeneration",
            session.pk,
            audit.actor_ref(actor),
            reason or "checkout link regenerated",
            f"regenerate-v{session.version}",
        )
    return session


def _check_regenerable(session: HostedCheckoutSession) -> None:
    if session.status not in Session.REGENERABLE:
        raise HostedSessionNotRegenerable(
            f"A {session.status} session's checkout link cannot be regenerated.",
            details={"status": session.status, "allowed_statuses": list(Session.REGENERABLE)},
        )


@transaction.atomic
def _hosted_session_apply_regeneration(
    *,
    session_id: int,
    read_version: int,
    link: CheckoutLink,
    actor: audit.Actor,
    override_next_retry_at: datetime | None,
    automated: bool,
    reason: str,
) -> HostedCheckoutSession:
    session = hosted_session_get(session_id=session_id, for_update=True)
    now = timezone.now()
    if session.version != read_version or (
        session.lease_expires_at and session.lease_expires_at > now
    ):
        raise HostedSessionChanged(
            details={"version_read": read_version, "version_now": session.version}
        )
    _check_regenerable(session)
    before = session.state()
    was_abandoned = session.status == Session.Status.ABANDONED
    session.regenerate(
        checkout_url=link.url,
        expires_at=link.expires_at,
        provider_session_id=link.provider_session_id,
    )
    actor_name = audit.actor_label(actor)
    automation = dict(session.automation_metadata)
    if override_next_retry_at is not None:
        session.next_retry_at = override_next_retry_at
        automation["override_next_retry_at"] = override_next_retry_at.isoformat()
        automation["overrides"] = [
            *automation.get("overrides", []),
            {
                "override_next_retry_at": override_next_retry_at.isoformat(),
                "set_by": actor_name,
                "set_at": now.isoformat(),
                "automated": automated,
                "reason": reason,
            },
        ]
        if session.attempt_count >= session.max_retries:
            # The operator asked for one more automated attempt at that window: grant it.
            session.max_retries = session.attempt_count + 1
    elif was_abandoned or session.next_retry_at is None:
        # Back in the automation's hands: it looks again when the new link expires.
        session.next_retry_at = link.expires_at
        session.max_retries = max(session.max_retries, session.attempt_count + 1)
    session.lease_owner, session.lease_expires_at = "", None
    session.metadata = {
        **session.metadata,
        "automation": automation,
        "triggered_by": actor_name,
        "triggered_at": now.isoformat(),
        "trigger_automated": automated,
        "trigger_notified": False,
        "notification_queued": not automated,
    }
    _save(session)
    audit.record(
        EVENT_REGENERATED,
        obj=session,
        before=before,
        after=session.state(),
        actor=actor,
        reason=reason,
        metadata={
            "automated": automated,
            "override_next_retry_at": _iso(override_next_retry_at),
        },
    )
    return session


def hosted_session_notify_customer(
    *,
    session_id: int,
    actor: audit.Actor,
    reason: str,
    occasion: str | None = None,
    communicator: HostedSessionRecoveryCommunicator | None = None,
) -> HostedCheckoutSession:
    """Operators' manual trigger of the communicator; the sends land in communication_log."""
    session = hosted_session_get(session_id=session_id)
    communicator = communicator or HostedSessionRecoveryCommunicator()
    outcome = communicator.notify(
        hosted_session_contact(session),
        triggered_by=audit.actor_label(actor),
        occasion=occasion or f"manual-{timezone.now().strftime('%Y%m%dT%H%M%S%f')}",
    )
    with transaction.atomic():
        session = hosted_session_get(session_id=session_id, for_update=True)
        before = session.state()
        now = timezone.now()
        if outcome.notified:
            session.last_notified_at = now
            session.attempts_since_notification = 0
        session.metadata = {
            **session.metadata,
            "triggered_by": audit.actor_label(actor),
            "triggered_at": now.isoformat(),
            "trigger_notified": outcome.notified,
            "notification_queued": False,
        }
        _save(session)
        audit.record(
            EVENT_CUSTOMER_NOTIFIED,
            obj=session,
            before=before,
            after=session.state(),
            actor=actor,
            reason=reason,
            metadata={"notified": outcome.notified, "communications": outcome.summary()},
        )
    return session
