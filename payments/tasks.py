"""django-q2 entry points of the payments app. Every worker runs through
`opsconsole.workers.run(name, triggered_by)`; the refund worker's earlier name stays because
tasks queued before that still carry it."""

from __future__ import annotations

from typing import Any

from opsconsole.evidence import audit
from opsconsole.workers import run
from payments.services.regeneration import hosted_session_notify_customer


def run_refund_retry_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("refund_retry_worker", triggered_by)


def hosted_session_notify_after_regeneration(
    session_id: int, actor: int | str, reason: str, occasion: str
) -> bool:
    """The customer's messages for an operator's regeneration, sent outside the request; the
    occasion keys each channel's send, so a retried task never messages twice."""
    session = hosted_session_notify_customer(
        session_id=session_id, actor=audit.actor_from_ref(actor), reason=reason, occasion=occasion
    )
    return bool(session.metadata.get("trigger_notified"))
