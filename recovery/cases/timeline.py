"""A case's timeline: every kind of record about the customer, merged in time order and
paged by keyset (time, kind, id), so the thousandth page costs what the first does."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Lower
from django.utils.dateparse import parse_datetime

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
from recovery.cases.customer import Customer
from recovery.cases.entries import (
    Cursor,
    Entry,
    audit_entry,
    booking_entry,
    campaign_message_entry,
    delivery_entry,
    hold_entry,
    message_entry,
    notification_entry,
    payment_entry,
    redemption_entry,
    refund_entry,
    refusal_entry,
    session_entry,
    voucher_entry,
    webhook_failure_entry,
)
from recovery.models import RecoveryItem


class InvalidTimelineCursor(ValueError):
    pass


@dataclass(frozen=True)
class TimelineKind:
    name: str
    rows: Callable[[Customer], QuerySet | None]
    time_field: str
    entry: Callable[[Any], Entry]


def encode_cursor(key: Cursor) -> str:
    raw = json.dumps([key[0].isoformat(), key[1], key[2]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, kind, pk = json.loads(raw)
        moment = parse_datetime(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidTimelineCursor(cursor) from exc
    if moment is None or not isinstance(kind, str) or not isinstance(pk, int):
        raise InvalidTimelineCursor(cursor)
    return (moment, kind, pk)


def _after(rows: QuerySet, kind: str, time_field: str, cursor: Cursor | None) -> QuerySet:
    if cursor is not None:
        at, cursor_kind, cursor_id = cursor
        if kind > cursor_kind:
            rows = rows.filter(**{f"{time_field}__gte": at})
        elif kind == cursor_kind:
            rows = rows.filter(
                Q(**{f"{time_field}__gt": at}) | Q(**{time_field: at, "pk__gt": cursor_id})
            )
        else:
            rows = rows.filter(**{f"{time_field}__gt": at})
    return rows.order_by(time_field, "pk")


def page(
    customer: Customer, *, cursor: Cursor | None, limit: int
) -> tuple[list[Entry], str | None]:
    """One page: each kind's next `limit + 1` rows after the cursor, merged; a next cursor
    when anything is left."""
    merged: list[Entry] = []
    for kind in KINDS:
        rows = kind.rows(customer)
        if rows is None:
            continue
        batch = _after(rows, kind.name, kind.time_field, cursor)[: limit + 1]
        merged.extend(kind.entry(row) for row in batch)
    merged.sort(key=lambda entry: entry.key)
    entries = merged[:limit]
    more = len(merged) > limit
    return entries, encode_cursor(entries[-1].key) if more and entries else None


def _keyed(rows: QuerySet, key: str, ids: list[int]) -> QuerySet | None:
    """Deliveries whose payload names one of `ids` under `key` (its partial index)."""
    return rows.filter(**{"payload__has_key": key, f"payload__{key}__in": ids}) if ids else None


def deliveries(customer: Customer) -> QuerySet | None:
    parts = [
        _keyed(RecoveryItem.objects, key, ids)
        for key, ids in (
            ("booking_id", customer.booking_ids),
            ("payment_id", customer.payment_ids),
            ("voucher_id", customer.voucher_ids),
            ("session_id", customer.session_ids),
        )
    ]
    present = [part for part in parts if part is not None]
    if not present:
        return None
    # Unordered parts: a compound statement takes no ORDER BY in its members (SQLite refuses
    # one, and the model's default ordering would add it).
    ids = present[0].order_by().values("pk")
    for part in present[1:]:
        ids = ids.union(part.order_by().values("pk"))
    return RecoveryItem.objects.filter(pk__in=ids)


def webhook_failures(customer: Customer) -> QuerySet | None:
    if not customer.booking_ids:
        return None
    booking = KeyTransform(
        "booking_id",
        KeyTransform("metadata", KeyTransform("object", KeyTransform("data", "payload"))),
    )
    return WebhookFailure.objects.alias(metadata_booking=booking).filter(
        metadata_booking__in=[str(pk) for pk in customer.booking_ids]
    )


AUDITED = (
    ("bookings.booking", "booking_ids"),
    ("bookings.bookinghold", "hold_ids"),
    ("payments.payment", "payment_ids"),
    ("payments.refund", "refund_ids"),
    ("payments.hostedcheckoutsession", "session_ids"),
    ("payments.voucher", "voucher_ids"),
)


def audit_events(customer: Customer) -> QuerySet | None:
    parts = [
        Q(object_type=object_type, object_id__in=[str(pk) for pk in ids])
        for object_type, attribute in AUDITED
        if (ids := getattr(customer, attribute))
    ]
    if not parts:
        return None
    match = parts[0]
    for part in parts[1:]:
        match |= part
    return AuditEvent.objects.filter(match)


def _by(
    ids_attribute: str, model: Any, column: str = "pk"
) -> Callable[[Customer], QuerySet | None]:
    def rows(customer: Customer) -> QuerySet | None:
        ids = getattr(customer, ids_attribute)
        return model.objects.filter(**{f"{column}__in": ids}) if ids else None

    return rows


def _to(model: Any) -> Callable[[Customer], QuerySet | None]:
    def rows(customer: Customer) -> QuerySet | None:
        if not customer.contacts:
            return None
        return model.objects.alias(recipient_lower=Lower("recipient")).filter(
            recipient_lower__in=customer.contacts
        )

    return rows


KINDS = (
    TimelineKind("audit", audit_events, "created_at", audit_entry),
    TimelineKind("booking", _by("booking_ids", Booking), "created_at", booking_entry),
    TimelineKind(
        "campaign_message", _by("target_ids", CampaignTarget), "updated_at", campaign_message_entry
    ),
    TimelineKind("delivery", deliveries, "created_at", delivery_entry),
    TimelineKind("hold", _by("hold_ids", BookingHold), "created_at", hold_entry),
    TimelineKind(
        "hosted_session", _by("session_ids", HostedCheckoutSession), "created_at", session_entry
    ),
    TimelineKind("message", _to(CommunicationLog), "created_at", message_entry),
    TimelineKind("notification", _to(Notification), "created_at", notification_entry),
    TimelineKind("payment", _by("payment_ids", Payment), "created_at", payment_entry),
    TimelineKind(
        "redemption",
        _by("voucher_ids", VoucherRedemption, "voucher_id"),
        "created_at",
        redemption_entry,
    ),
    TimelineKind(
        "redemption_refused",
        _by("voucher_ids", VoucherRedemptionFailure, "voucher_id"),
        "created_at",
        refusal_entry,
    ),
    TimelineKind("refund", _by("refund_ids", Refund), "created_at", refund_entry),
    TimelineKind("voucher", _by("voucher_ids", Voucher), "issued_at", voucher_entry),
    TimelineKind("webhook_failure", webhook_failures, "created_at", webhook_failure_entry),
)


# Each kind's record, for the admin's link from a timeline row to the record's own page.
KIND_MODELS: dict[str, type] = {
    "audit": AuditEvent,
    "booking": Booking,
    "campaign_message": CampaignTarget,
    "delivery": RecoveryItem,
    "hold": BookingHold,
    "hosted_session": HostedCheckoutSession,
    "message": CommunicationLog,
    "notification": Notification,
    "payment": Payment,
    "redemption": VoucherRedemption,
    "redemption_refused": VoucherRedemptionFailure,
    "refund": Refund,
    "voucher": Voucher,
    "webhook_failure": WebhookFailure,
}
