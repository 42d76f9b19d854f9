"""Opening a case (audited: who looked at whom, and why) and acting on its open failures
through the failure inbox's own guards and services."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from opsconsole.access.personal_data import can_see_personal_data, mask_code, mask_json, mask_text
from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.http.errors import Conflict, InvalidInput
from payments.offline_refunds import refund_settle_offline
from recovery.cases.customer import CaseNotFound, Customer, customer_of
from recovery.cases.entries import Entry
from recovery.cases.money import reconciliation
from recovery.cases.refs import Identity, UnknownRef, unseal
from recovery.cases.search import Match, find
from recovery.cases.timeline import KINDS, InvalidTimelineCursor, decode_cursor, page
from recovery.inbox.groups import (
    FailureNotOpen,
    ResolveOutcome,
    failure_resolve_by_operator,
    open_rows,
)
from recovery.inbox.replay_guard import guarded_replay

# Which timeline kind a failure source's rows appear as.
SOURCE_KINDS = {
    "cancellation": "booking",
    "refund": "refund",
    "offline_refund": "refund",
    "unapplied_payment": "payment",
    "hosted_session": "hosted_session",
    "notification": "notification",
    "campaign_target": "campaign_message",
    "integration_delivery": "delivery",
    "webhook_failure": "webhook_failure",
    "redemption": "redemption_refused",
}
PERSONAL_DETAILS = ("customer_email", "customer_phone", "recipient", "phone")
RECENT_MESSAGES = 50


class CaseReasonRequired(InvalidInput):
    code = "OPS-400-CASE-REASON-REQUIRED"
    default_message = "Say why you open this customer's case (CASE_REASON_REQUIRED is set)."


class MovesMoneyUseTheInbox(Conflict):
    code = "OPS-409-SECOND-OPERATOR-REQUIRED"
    default_message = (
        "Replaying this failure moves money: replay it from the failure inbox, where a "
        "second operator approves the run."
    )


def identity_of(ref: str) -> Identity:
    try:
        return unseal(ref)
    except UnknownRef as exc:
        raise CaseNotFound("No such case.") from exc


def case_search(*, term: str, viewer: Any) -> list[dict[str, Any]]:
    return [_masked_match(match, viewer) for match in find(term)]


def _masked_match(match: Match, viewer: Any) -> dict[str, Any]:
    body = match.as_dict()
    if not can_see_personal_data(viewer):
        body["contact"] = mask_text(body["contact"])
        body["code"] = mask_code(body["code"])
    return body


def case_open(
    *, ref: str, viewer: Any, reason: str, cursor: str | None, limit: int
) -> dict[str, Any]:
    """One page of the customer's case; every opening is an audit row naming the customer
    by ref kind and a hash, never by email or phone."""
    reason = reason.strip()
    if settings.CASE_REASON_REQUIRED and not reason:
        raise CaseReasonRequired()
    identity = identity_of(ref)
    try:
        after = decode_cursor(cursor) if cursor else None
    except InvalidTimelineCursor as exc:
        raise InvalidInput(
            "cursor is not one this API issued", details={"field": "cursor"}
        ) from exc
    customer = customer_of(identity)
    with transaction.atomic():
        audit.record(
            "case.opened",
            object_type="customer",
            object_id=identity.fingerprint,
            actor=viewer,
            reason=reason,
            metadata={"ref_kind": identity.kind, "page": "next" if after else "first"},
        )
    entries, next_cursor = page(customer, cursor=after, limit=limit)
    _mark_open_failures(entries)
    personal = can_see_personal_data(viewer)
    return {
        "ref": ref,
        "kind": identity.kind,
        "customer": _customer_summary(customer, personal),
        "timeline": [_entry_body(entry, personal) for entry in entries],
        "next_cursor": next_cursor,
        "money": reconciliation(customer),
        "customer_saw": _messages_seen(customer, personal),
    }


def _customer_summary(customer: Customer, personal: bool) -> dict[str, Any]:
    show = (lambda v: v) if personal else mask_text
    return {
        "user_ids": customer.user_ids,
        "emails": [show(e) for e in customer.emails],
        "phones": [show(p) for p in customer.phones],
        "counts": {
            "bookings": len(customer.booking_ids),
            "holds": len(customer.hold_ids),
            "payments": len(customer.payment_ids),
            "refunds": len(customer.refund_ids),
            "hosted_sessions": len(customer.session_ids),
            "vouchers": len(customer.voucher_ids),
        },
    }


def _messages_seen(customer: Customer, personal: bool) -> list[dict[str, Any]]:
    """The messages actually sent to the customer, newest first: the communication log's
    (recovery messages) and the notifications' (booking confirmations, reminders)."""
    kinds = {k.name: k for k in KINDS}
    seen: list[dict[str, Any]] = []
    if (logged := kinds["message"].rows(customer)) is not None:
        for m in logged.filter(status="sent").order_by("-created_at", "-pk")[:RECENT_MESSAGES]:
            seen.append(
                {
                    "channel": m.channel,
                    "template": m.template,
                    "at": m.created_at,
                    "provider": m.provider,
                    "provider_message_id": m.provider_message_id,
                    "status": m.status,
                    "recipient": m.recipient,
                }
            )
    if (notified := kinds["notification"].rows(customer)) is not None:
        sent = notified.filter(status="SENT").order_by("-created_at", "-pk")[:RECENT_MESSAGES]
        for n in sent:
            seen.append(
                {
                    "channel": n.channel,
                    "template": n.template,
                    "at": n.created_at,
                    "provider": "",
                    "provider_message_id": n.external_id,
                    "status": "sent",
                    "recipient": n.recipient,
                }
            )
    seen.sort(key=lambda m: m["at"], reverse=True)
    for message in seen:
        if not personal:
            message["recipient"] = mask_text(message["recipient"])
    return seen[:RECENT_MESSAGES]


def _mark_open_failures(entries: list[Entry]) -> None:
    wanted: dict[str, dict[int, Entry]] = defaultdict(dict)
    for entry in entries:
        for source in entry.failure_sources:
            wanted[source][entry.id] = entry
    for source_name, by_id in wanted.items():
        failure_source = failure_sources.get(source_name)
        for row in open_rows(failure_source).filter(pk__in=list(by_id)):
            entry = by_id[row.pk]
            entry.failure = {
                "source": source_name,
                "source_id": row.pk,
                "failure_code": failure_source.failure_code(row) or "unknown",
                "guard": failure_source.guard(row),
                "predicted": failure_source.predicted(row),
                "moves_money": failure_source.moves_money,
                "actions": _actions(source_name, failure_source.moves_money),
            }


def _actions(source: str, moves_money: bool) -> list[str]:
    if source == "offline_refund":
        return ["settle", "resolve"]
    return ["resolve"] if moves_money else ["replay", "resolve"]


def _entry_body(entry: Entry, personal: bool) -> dict[str, Any]:
    details = dict(entry.details)
    if not personal:
        for name in PERSONAL_DETAILS:
            if details.get(name):
                details[name] = mask_text(str(details[name]))
        if details.get("code"):
            details["code"] = mask_code(details["code"])
        details = mask_json(details)
    return {
        "at": entry.at,
        "kind": entry.kind,
        "id": entry.id,
        "title": entry.title,
        "status": entry.status,
        "details": details,
        "failure": entry.failure,
    }


def _failure_in_case(ref: str, source: str, source_id: int) -> failure_sources.FailureSource:
    """The failure, if it is one of this customer's and open; 404 otherwise."""
    if source not in SOURCE_KINDS:
        raise FailureNotOpen("No such failure source on a case.")
    customer = customer_of(identity_of(ref))
    kind = next(k for k in KINDS if k.name == SOURCE_KINDS[source])
    rows = kind.rows(customer)
    if rows is None or not rows.filter(pk=source_id).exists():
        raise FailureNotOpen("This case has no such failure.")
    failure_source = failure_sources.get(source)
    if not open_rows(failure_source).filter(pk=source_id).exists():
        raise FailureNotOpen()
    return failure_source


def case_failure_replay(*, ref: str, source: str, source_id: int, actor: Any, reason: str) -> str:
    """Replay one open failure from the case, as the inbox would: its guard first (a replay
    that no longer makes sense resolves it with the guard's reason), then its source's own
    replay service. Money-moving replays need the inbox's approved run."""
    failure_source = _failure_in_case(ref, source, source_id)
    if failure_source.moves_money:
        raise MovesMoneyUseTheInbox()
    row = open_rows(failure_source).get(pk=source_id)
    replayed, detail = guarded_replay(failure_source, row, actor, reason)
    outcome = detail if replayed else f"resolved: {detail}"
    with transaction.atomic():
        audit.record(
            "case.failure.replayed",
            object_type=row._meta.label_lower,
            object_id=source_id,
            actor=actor,
            reason=reason,
            metadata={"source": source, "outcome": outcome, "case_kind": identity_of(ref).kind},
        )
    return outcome


def case_failure_resolve(
    *, ref: str, source: str, source_id: int, actor: Any, reason: str
) -> ResolveOutcome:
    _failure_in_case(ref, source, source_id)
    return failure_resolve_by_operator(
        source=source, source_id=source_id, actor=actor, reason=reason
    )


def case_refund_settle(
    *,
    ref: str,
    refund_id: int,
    actor: Any,
    reason: str,
    method: str,
    reference: str,
    paid_out_at: datetime | None,
) -> str:
    _failure_in_case(ref, "offline_refund", refund_id)
    refund = refund_settle_offline(
        refund_id=refund_id,
        method=method,
        reference=reference,
        paid_out_at=paid_out_at,
        actor=actor,
        reason=reason,
    )
    return refund.status


__all__ = ["CaseNotFound", "FailureNotOpen"]
