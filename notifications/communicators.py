"""Customer communications for recovery workflows, one class per workflow
(docs/runbooks/hosted-session-recovery.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from notifications.adapters import ChannelAdapter
from notifications.models import Channel, CommunicationLog
from notifications.services import communication_send

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HostedSessionContact:
    """What the communicator needs to know about a session; it never reads payments' models."""

    session_id: int
    reference: str
    email: str
    phone: str
    checkout_url: str
    amount: str
    currency: str
    expires_at: str | None


@dataclass
class CommunicationOutcome:
    logs: list[CommunicationLog] = field(default_factory=list)

    @property
    def notified(self) -> bool:
        """At least one channel reached the customer."""
        return any(log.status == CommunicationLog.Status.SENT for log in self.logs)

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "channel": log.channel,
                "template": log.template,
                "status": log.status,
                "communication_log_id": log.pk,
                "failure_code": log.failure_code,
            }
            for log in self.logs
        ]


class HostedSessionRecoveryCommunicator:
    """Emails and texts the customer a fresh checkout link; each send is a communication_log row.

    Fails open: a channel that is down is logged as failed and the recovery attempt goes on.
    """

    SUBJECT_TYPE = "payments.hostedcheckoutsession"
    TEMPLATES = {
        Channel.EMAIL: "hosted_session_recovery_email",
        Channel.SMS: "hosted_session_recovery_sms",
    }

    def __init__(self, channels: dict[str, ChannelAdapter] | None = None) -> None:
        self.channels = channels or {}

    def notify(
        self, contact: HostedSessionContact, *, triggered_by: str, occasion: str
    ) -> CommunicationOutcome:
        """`occasion` names this notification (e.g. `attempt-3`) so a resend is deduplicated."""
        outcome = CommunicationOutcome()
        recipients = {Channel.EMAIL: contact.email, Channel.SMS: contact.phone}
        context = {
            "reference": contact.reference,
            "checkout_url": contact.checkout_url,
            "amount": contact.amount,
            "currency": contact.currency,
            "expires_at": contact.expires_at,
        }
        for channel, template in self.TEMPLATES.items():
            to = recipients[channel]
            if not to:
                continue
            try:
                log = communication_send(
                    channel=channel,
                    to=to,
                    template=template,
                    context=context,
                    subject_type=self.SUBJECT_TYPE,
                    subject_id=contact.session_id,
                    triggered_by=triggered_by,
                    idempotency_key=f"hosted-session-{contact.session_id}:{occasion}:{channel}",
                    adapter=self.channels.get(channel),
                )
            except Exception:  # fail open, even when the log row cannot be written
                logger.exception(
                    "hosted_session_notification_failed",
                    session_id=contact.session_id,
                    channel=channel,
                )
                continue
            outcome.logs.append(log)
        return outcome
