"""django-q2 entry points: they only wake a worker; the rows hold the state."""

from __future__ import annotations

from typing import Any

from opsconsole import audit
from payments.services.regeneration import hosted_session_notify_customer
from payments.workers import RefundRetryWorker


def run_refund_retry_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return RefundRetryWorker().run_once(triggered_by=triggered_by).as_dict()


def hosted_session_notify_after_regeneration(
    session_id: int, actor: int | str, reason: str, occasion: str
) -> bool:
    """The customer's messages for an operator's regeneration, sent outside the request; the
    occasion keys each channel's send, so a retried task never messages twice."""
    session = hosted_session_notify_customer(
        session_id=session_id, actor=audit.actor_from_ref(actor), reason=reason, occasion=occasion
    )
    return bool(session.metadata.get("trigger_notified"))
