"""Refunds of payments taken offline (cash, bank transfer, card terminal): owed to the
customer until staff pay them out and record who, how and when. Never a provider call."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.http.errors import Conflict, InvalidInput
from opsconsole.monitoring.alerts import alerts_settle
from payments.events import refund_event
from payments.models import Payment, Refund

EVENT_SETTLED = "payments.refund.settled_offline"
# A payout recorded a little ahead of the server's clock is a typo, not the future.
CLOCK_SLACK = timedelta(minutes=5)


class RefundNotOwed(Conflict):
    code = "PAY-409-REFUND-NOT-OWED"
    default_message = "Only a refund owed offline can be settled."


class PayoutInvalid(InvalidInput):
    code = "PAY-400-INVALID-PAYLOAD"


def payout_problems(*, method: str, paid_out_at: datetime | None) -> dict[str, str]:
    """What is wrong with a payout record, by field (empty: nothing)."""
    problems = {}
    if method not in Refund.PayoutMethod.values:
        problems["payout_method"] = f"One of {', '.join(Refund.PayoutMethod.values)}."
    if paid_out_at is None:
        problems["paid_out_at"] = "When was it paid out?"
    elif paid_out_at > timezone.now() + CLOCK_SLACK:
        problems["paid_out_at"] = "A payout cannot be in the future."
    return problems


@transaction.atomic
def refund_settle_offline(
    *,
    refund_id: int,
    method: str,
    reference: str,
    paid_out_at: datetime | None,
    actor: audit.Actor,
    reason: str,
) -> Refund:
    """Record that an owed refund was paid out: the refund completes, the payment is
    refunded, and the audit row says who paid it, how, when and why."""
    if problems := payout_problems(method=method, paid_out_at=paid_out_at):
        raise PayoutInvalid("The payout record is incomplete.", details={"fields": problems})
    refund = Refund.objects.select_for_update().filter(pk=refund_id).first()
    if refund is None or refund.status != Refund.Status.OWED:
        raise RefundNotOwed(details={"status": refund.status if refund else None})
    before = refund.state()
    refund.settle_offline(
        payout_method=method,
        payout_reference=reference.strip()[:200],
        paid_out_at=paid_out_at,
        paid_out_by=audit.actor_label(actor),
    )
    refund.save()
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    payment.record_refunded(amount_refunded=payment.amount_refunded + refund.amount)
    payment.save()
    audit.record(
        EVENT_SETTLED, obj=refund, before=before, after=refund.state(), actor=actor, reason=reason
    )
    refund_event(refund, "refund.succeeded", payout_method=refund.payout_method)
    alerts_settle(obj=refund, reason=f"refund {refund.pk} paid out offline")
    return refund
