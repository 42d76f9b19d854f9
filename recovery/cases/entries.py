"""A case's timeline entries: one per record, with what support needs to read in a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bookings.models import Booking, BookingHold
from notifications.models import CampaignTarget, CommunicationLog, Notification
from opsconsole.models import AuditEvent
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    Voucher,
    VoucherRedemption,
    VoucherRedemptionFailure,
    WebhookFailure,
)
from recovery.models import RecoveryItem

Cursor = tuple[datetime, str, int]


@dataclass
class Entry:
    at: datetime
    kind: str
    id: int
    title: str
    status: str
    details: dict[str, Any] = field(default_factory=dict)
    # The failure sources this row may be open in; the case marks the ones that are.
    failure_sources: tuple[str, ...] = ()
    failure: dict[str, Any] | None = None
    admin_url: str | None = None

    @property
    def key(self) -> Cursor:
        return (self.at, self.kind, self.id)


def money(value: Any) -> str:
    return str(value)


def booking_entry(b: Booking) -> Entry:
    return Entry(
        b.created_at,
        "booking",
        b.pk,
        f"Booking {b.pk} on resource {b.resource_id}",
        f"{b.status} / {b.payment_status}",
        {
            "start_time": b.start_time,
            "end_time": b.end_time,
            "status": b.status,
            "payment_status": b.payment_status,
            "payment_id": b.payment_id,
            "cancellation_step": b.cancellation_step,
        },
        ("cancellation",),
    )


def hold_entry(h: BookingHold) -> Entry:
    return Entry(
        h.created_at,
        "hold",
        h.pk,
        f"Hold {h.pk} on resource {h.resource_id}",
        h.status,
        {"start_time": h.start_time, "end_time": h.end_time, "expires_at": h.expires_at},
    )


def payment_entry(p: Payment) -> Entry:
    return Entry(
        p.created_at,
        "payment",
        p.pk,
        f"Payment {p.reference}: {p.amount} {p.currency} ({p.method})",
        p.status,
        {
            "amount": money(p.amount),
            "amount_refunded": money(p.amount_refunded),
            "currency": p.currency,
            "method": p.method,
            "subject": p.subject,
            "provider_payment_id": p.provider_payment_id,
            "unapplied_reason": p.unapplied_reason,
        },
        ("unapplied_payment",),
    )


def refund_entry(r: Refund) -> Entry:
    return Entry(
        r.created_at,
        "refund",
        r.pk,
        f"Refund {r.pk} of payment {r.payment_id}: {r.amount}",
        r.status,
        {
            "amount": money(r.amount),
            "payment_id": r.payment_id,
            "attempts": r.attempt_count,
            "last_error": r.last_error,
            "provider_refund_id": r.provider_refund_id,
            "payout_method": r.payout_method,
            "paid_out_at": r.paid_out_at,
        },
        ("refund", "offline_refund"),
    )


def session_entry(s: HostedCheckoutSession) -> Entry:
    return Entry(
        s.created_at,
        "hosted_session",
        s.pk,
        f"Hosted checkout {s.reference}: {s.amount} {s.currency}",
        s.status,
        {
            "reference": s.reference,
            "amount": money(s.amount),
            "currency": s.currency,
            "customer_email": s.customer_email,
            "customer_phone": s.customer_phone,
            "retry_count": s.attempt_count,
            "last_error": s.last_error,
            "provider_session_id": s.provider_session_id,
        },
        ("hosted_session",),
    )


def voucher_entry(v: Voucher) -> Entry:
    return Entry(
        v.issued_at,
        "voucher",
        v.pk,
        f"Voucher {v.pk}: {v.value} {v.currency}",
        v.status,
        {
            "code": v.code,
            "value": money(v.value),
            "currency": v.currency,
            "customer_email": v.customer_email,
            "redeemed_station": v.redeemed_station,
        },
    )


def redemption_entry(r: VoucherRedemption) -> Entry:
    return Entry(
        r.created_at,
        "redemption",
        r.pk,
        f"Voucher {r.voucher_id} redeemed at {r.station_id}",
        "redeemed",
        {"voucher_id": r.voucher_id, "station_id": r.station_id, "request_id": r.request_id},
    )


def refusal_entry(r: VoucherRedemptionFailure) -> Entry:
    return Entry(
        r.created_at,
        "redemption_refused",
        r.pk,
        f"Redemption refused at {r.station_id}",
        r.error_code,
        {
            "voucher_id": r.voucher_id,
            "station_id": r.station_id,
            "message": r.message,
            "request_id": r.request_id,
        },
        ("redemption",),
    )


def notification_entry(n: Notification) -> Entry:
    return Entry(
        n.created_at,
        "notification",
        n.pk,
        f"{n.channel} {n.template}",
        n.status,
        {
            "channel": n.channel,
            "template": n.template,
            "recipient": n.recipient,
            "attempts": n.attempt_count,
            "last_error": n.last_error,
            "delivery_status": n.delivery_status,
            "sent_at": n.sent_at,
        },
        ("notification",),
    )


def message_entry(m: CommunicationLog) -> Entry:
    return Entry(
        m.created_at,
        "message",
        m.pk,
        f"{m.channel} {m.template} via {m.provider}",
        m.status,
        {
            "channel": m.channel,
            "template": m.template,
            "recipient": m.recipient,
            "provider": m.provider,
            "provider_message_id": m.provider_message_id,
            "failure_code": m.failure_code,
        },
    )


def campaign_message_entry(t: CampaignTarget) -> Entry:
    return Entry(
        t.updated_at,
        "campaign_message",
        t.pk,
        f"Campaign {t.campaign_id} message",
        t.status,
        {
            "campaign_id": t.campaign_id,
            "phone": t.phone,
            "attempts": t.attempt_count,
            "error_code": t.error_code,
            "provider_message_id": t.provider_message_id,
        },
        ("campaign_target",),
    )


def delivery_entry(i: RecoveryItem) -> Entry:
    return Entry(
        i.created_at,
        "delivery",
        i.pk,
        f"{i.event_type} to integration {i.integration_id}",
        i.status,
        {
            "event_type": i.event_type,
            "integration_id": i.integration_id,
            "attempt_count": i.attempt_count,
            "failure_code": i.failure_code,
            "event_id": i.event_id,
        },
        ("integration_delivery",),
    )


def stripe_object(payload: Any) -> dict[str, Any]:
    """The object a stored Stripe event is about (the payment intent, the charge)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    found = data.get("object") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def webhook_failure_entry(w: WebhookFailure) -> Entry:
    intent = stripe_object(w.payload)
    amount = intent.get("amount_received") or intent.get("amount")
    return Entry(
        w.created_at,
        "webhook_failure",
        w.pk,
        f"Stripe {w.event_type} {w.event_id} not processed",
        w.status,
        {
            "event_id": w.event_id,
            "event_type": w.event_type,
            "error": w.error[:500],
            "payment_intent": intent.get("id", ""),
            "amount_cents": amount,
            "currency": str(intent.get("currency") or "").upper(),
        },
        ("webhook_failure",),
    )


def audit_entry(a: AuditEvent) -> Entry:
    return Entry(
        a.created_at,
        "audit",
        a.pk,
        a.event,
        a.object_type,
        {
            "object_type": a.object_type,
            "object_id": a.object_id,
            "actor": a.actor,
            "reason": a.reason,
            "request_id": a.request_id,
        },
    )
