"""The payments app's failures: stalled checkout sessions, failed refunds, payment webhooks
that need a human, and refused voucher redemptions."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource, Impact, error_code
from opsconsole.http.errors import Conflict
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    Voucher,
    VoucherRedemptionFailure,
    WebhookFailure,
)
from payments.refunds import refund_attempt, refund_request, refund_requeue
from payments.services import hosted_session_regenerate
from payments.vouchers import voucher_redeem
from payments.webhooks import MALFORMED_EVENT_TYPE, webhook_failure_reprocess


def _replay_session(session_id: int, actor: Any, reason: str) -> str:
    session = hosted_session_regenerate(session_id=session_id, actor=actor, reason=reason)
    return f"new checkout link; customer notified={session.metadata.get('trigger_notified')}"


def _replay_refund(refund_id: int, actor: Any, reason: str) -> str:
    refund_requeue(refund_id=refund_id, actor=actor, reason=reason)
    refund = refund_attempt(refund_id=refund_id)
    return f"FAILED → {refund.status}"


def _replay_webhook(failure_id: int, actor: Any, reason: str) -> str:
    ok = webhook_failure_reprocess(failure_id=failure_id, actor=actor, reason=reason)
    return "reprocessed" if ok else "reprocess failed again"


def _replay_redemption(failure_id: int, actor: Any, reason: str) -> str:
    failure = VoucherRedemptionFailure.objects.get(pk=failure_id)
    voucher = voucher_redeem(code=failure.code, station_id=failure.station_id, actor=actor)
    return f"issued → {voucher.status} at {failure.station_id}"


def _guard_redemption(failure: VoucherRedemptionFailure) -> str | None:
    voucher = failure.voucher
    if voucher is None:
        return "no such voucher"
    if voucher.status == Voucher.Status.REDEEMED:
        return f"the voucher was redeemed at {voucher.redeemed_station}"
    if voucher.status == Voucher.Status.VOID:
        return "the voucher is void; issue a replacement instead"
    if not voucher.in_scope(failure.station_id):
        return f"station {failure.station_id} is still outside the voucher's scope"
    return None


def _replay_offline_refund(refund_id: int, actor: Any, reason: str) -> str:
    raise SettleInTheAdmin(
        f"Refund {refund_id} is owed offline: record its payout (who, how, when) in the admin "
        "under Payments > Refunds."
    )


class SettleInTheAdmin(Conflict):
    code = "PAY-409-REFUND-NOT-RETRYABLE"


def _guard_refund(refund: Refund) -> str | None:
    if refund.status == Refund.Status.COMPLETED:
        return "the refund already completed"
    if refund.payment.status == Payment.Status.REFUNDED:
        return "the refund already completed at the provider (charge.refunded received)"
    return None


def _guard_session(session: HostedCheckoutSession) -> str | None:
    if session.status == HostedCheckoutSession.Status.COMPLETED:
        return "the session was already paid"
    return None


def _guard_webhook(failure: WebhookFailure) -> str | None:
    if failure.event_type == MALFORMED_EVENT_TYPE:
        return "the signed body is no event: check it with Stripe, then resolve it"
    checkout = (failure.payload.get("data") or {}).get("object") or {}
    reference = checkout.get("client_reference_id")
    if failure.event_type == "checkout.session.completed" and reference:
        session = HostedCheckoutSession.objects.filter(reference=reference).first()
        if session is not None and session.status == HostedCheckoutSession.Status.COMPLETED:
            return "the session was already paid"
    return None


failure_sources.register(
    FailureSource(
        name="hosted_session",
        category="payment",
        app="payments",
        failing=lambda: HostedCheckoutSession.objects.filter(
            Q(status__in=["failed", "abandoned"])
            | Q(status__in=HostedCheckoutSession.RECOVERABLE, attempts_since_notification__gt=3)
        ),
        provider=lambda s: "checkout",
        failure_code=lambda s: "stalled" if s.stalled else s.status,
        error=lambda s: s.last_error or f"session {s.status}",
        first_seen=lambda s: s.created_at,
        last_seen=lambda s: s.updated_at,
        impact=lambda s: Impact(30 + int(s.amount // 10), f"{s.amount} {s.currency} unpaid"),
        guard=_guard_session,
        predicted=lambda s: f"{s.status} → pending with a new link",
        replay=_replay_session,
    )
)


def _predicted_refund(refund: Refund) -> str:
    """One more attempt at Stripe; said plainly when Stripe refused the last one for good
    (a card error, not an outage): it completes only if what Stripe refused has changed."""
    attempt = "one more provider attempt, same key"
    if refund.next_retry_at is None and error_code(refund.last_error).lower() in (
        "http_400",
        "http_402",
    ):
        return (
            f"FAILED → COMPLETED only if Stripe now accepts it ({attempt}); Stripe refused "
            f"the last attempt for good: {refund.last_error[:160]}"
        )
    return f"FAILED → COMPLETED ({attempt})"


failure_sources.register(
    FailureSource(
        name="refund",
        category="payment",
        app="payments",
        failing=lambda: Refund.objects.filter(status=Refund.Status.FAILED).select_related(
            "payment"
        ),
        provider=lambda r: "stripe",
        failure_code=lambda r: error_code(r.last_error),
        error=lambda r: r.last_error,
        first_seen=lambda r: r.created_at,
        last_seen=lambda r: r.updated_at,
        impact=lambda r: Impact(
            50 + int(r.amount // 10), f"{r.amount} {r.payment.currency} owed to a customer"
        ),
        guard=_guard_refund,
        predicted=_predicted_refund,
        replay=_replay_refund,
        moves_money=True,
        # A refund is dead once its automatic retries ran out.
        dead_lettered=lambda rows: rows.filter(next_retry_at__isnull=True),
    )
)

failure_sources.register(
    FailureSource(
        name="offline_refund",
        category="payment",
        app="payments",
        failing=lambda: Refund.objects.filter(status=Refund.Status.OWED).select_related("payment"),
        provider=lambda r: "offline",
        failure_code=lambda r: "refund_owed",
        error=lambda r: (
            f"refund owed: pay back {r.amount} {r.payment.currency} "
            f"({r.payment.get_method_display()}) and record the payout"
        ),
        first_seen=lambda r: r.created_at,
        last_seen=lambda r: r.created_at,
        impact=lambda r: Impact(
            50 + int(r.amount // 10), f"{r.amount} {r.payment.currency} owed to a customer"
        ),
        guard=lambda r: None,
        predicted=lambda r: "OWED → COMPLETED once staff record the payout in the admin",
        replay=_replay_offline_refund,
        moves_money=True,
    )
)


def _refund_unapplied(payment_id: int, actor: Any, reason: str) -> str:
    payment = Payment.objects.get(pk=payment_id)
    refund = refund_request(
        payment_id=payment.pk, amount=payment.amount, reason=reason, actor=actor
    )
    return f"unapplied payment → refund {refund.status}"


failure_sources.register(
    FailureSource(
        name="unapplied_payment",
        category="payment",
        app="payments",
        failing=lambda: Payment.objects.filter(status=Payment.Status.SUCCEEDED).exclude(
            unapplied_reason=""
        ),
        provider=lambda p: "stripe",
        failure_code=lambda p: "payment_unapplied",
        error=lambda p: p.unapplied_reason,
        first_seen=lambda p: p.created_at,
        last_seen=lambda p: p.created_at,
        occurrence_field="created_at",
        impact=lambda p: Impact(
            50 + int(p.amount // 10), f"{p.amount} {p.currency} received for nothing"
        ),
        guard=lambda p: None,
        # Replaying refunds it (two operators); resolving keeps the money, with a reason.
        predicted=lambda p: "refund the whole payment to the card (one refund, refund:<id> key)",
        replay=_refund_unapplied,
        moves_money=True,
    )
)

failure_sources.register(
    FailureSource(
        name="webhook_failure",
        category="payment",
        app="payments",
        failing=lambda: WebhookFailure.objects.filter(status=WebhookFailure.Status.PENDING_MANUAL),
        provider=lambda f: f.provider,
        failure_code=lambda f: f.event_type,
        error=lambda f: f.error,
        first_seen=lambda f: f.created_at,
        last_seen=lambda f: f.created_at,
        occurrence_field="attempt_count",
        impact=lambda f: Impact(60, "a critical payment event was not processed"),
        guard=_guard_webhook,
        predicted=lambda f: "PENDING_MANUAL → REPROCESSED",
        replay=_replay_webhook,
    )
)

failure_sources.register(
    FailureSource(
        name="redemption",
        # A station refusing a voucher (already redeemed, out of scope) is the redemption
        # guard working, not money lost: worked from the inbox
        # (docs/runbooks/station-redeem-anomalies.md), never paged as a payment failure.
        category="station",
        app="payments",
        failing=lambda: VoucherRedemptionFailure.objects.select_related("voucher"),
        provider=lambda f: f"station {f.station_id}",
        failure_code=lambda f: f.error_code,
        error=lambda f: f.message,
        first_seen=lambda f: f.created_at,
        last_seen=lambda f: f.created_at,
        # A refusal row is never written twice: a new refusal is a new row.
        occurrence_field="created_at",
        impact=lambda f: Impact(20, "a customer was turned away at a station"),
        guard=_guard_redemption,
        predicted=lambda f: "issued → redeemed",
        replay=_replay_redemption,
        replay_resolves=True,
    )
)
