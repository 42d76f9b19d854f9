"""Vouchers (docs/runbooks/station-redeem-anomalies.md): issue, redeem once at a station in scope,
void and replace."""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.http.context import current_request_id
from opsconsole.http.errors import ApplicationError, Conflict, DependencyUnavailable, NotFound
from payments.adapters import default_voucher_renderer
from payments.errors import PaymentsInvalidPayload
from payments.events import voucher_event
from payments.models import Voucher, VoucherRedemption, VoucherRedemptionFailure
from storefront.models import LOYALTY_REDEMPTIONS
from storefront.surfaces import surface_served

# No 0/O/1/I: codes are read aloud and typed at stations.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class VoucherNotFound(NotFound):
    code = "PAY-404-VOUCHER-NOT-FOUND"
    default_message = "Voucher not found."


class VoucherAlreadyRedeemed(Conflict):
    code = "PAY-409-VOUCHER-ALREADY-REDEEMED"
    default_message = "This voucher has already been redeemed."


class VoucherVoid(Conflict):
    code = "PAY-409-VOUCHER-VOID"
    default_message = "This voucher is void."


class VoucherExpired(Conflict):
    code = "PAY-409-VOUCHER-EXPIRED"
    default_message = "This voucher has expired."


class StationScopeMismatch(ApplicationError):
    status_code = 403
    code = "PAY-403-STATION-SCOPE-MISMATCH"
    default_message = "This voucher cannot be redeemed at this station."


class RedemptionsSuspended(DependencyUnavailable):
    """An operator suspended loyalty redemptions (Admin -> Storefront surfaces): nothing is
    redeemed until they resume them."""

    code = "PAY-503-REDEMPTIONS-SUSPENDED"
    default_message = (
        "Voucher redemptions are suspended for now; nothing was redeemed. Try again later."
    )
    # A suspension lasts minutes at least: stations retry no sooner than this.
    retry_after_seconds = 60


def new_voucher_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


@transaction.atomic
def voucher_issue(
    *,
    description: str,
    value: Decimal,
    station_scope: str = "*",
    customer_email: str = "",
    actor: audit.Actor = None,
    replaces: Voucher | None = None,
    reason: str = "",
    expires_at: datetime | None = None,
) -> Voucher:
    voucher = Voucher.objects.create(
        expires_at=expires_at,
        code=new_voucher_code(),
        description=description,
        value=value,
        station_scope=station_scope,
        customer_email=customer_email,
        replaces=replaces,
    )
    audit.record(
        "payments.voucher.issued",
        obj=voucher,
        after=voucher.state(),
        actor=actor,
        reason=reason,
        metadata={"replaces": replaces.code if replaces else None},
    )
    return voucher


NOT_REDEEMABLE_HERE = "This voucher is not redeemable here."


def voucher_redeem(*, code: str, station_id: str, actor: audit.Actor) -> Voucher:
    """Redeem, and keep a refused redemption as an anomaly for the failure inbox. While
    loyalty redemptions are suspended nothing is looked up or changed: the refusal is the
    surface's span and log line, not an anomaly of this voucher."""
    if not surface_served(LOYALTY_REDEMPTIONS, station_id=station_id[:100]):
        raise RedemptionsSuspended(details={"surface": LOYALTY_REDEMPTIONS.name})
    try:
        return _voucher_redeem(code=code, station_id=station_id, actor=actor)
    except (VoucherAlreadyRedeemed, StationScopeMismatch, VoucherVoid) as exc:
        # Written after the refused transaction rolled back: the refusal itself is kept,
        # with the details staff need (where it was redeemed, why it was voided).
        VoucherRedemptionFailure.objects.create(
            code=code.strip().upper()[:32],
            voucher=Voucher.objects.filter(code=code.strip().upper()).first(),
            station_id=station_id[:100],
            error_code=exc.code,
            message=f"{exc.message} {json.dumps(exc.details, sort_keys=True)}"
            if exc.details
            else exc.message,
            actor=audit.actor_label(actor),
            request_id=current_request_id(),
        )
        # The station hears only that it cannot redeem this code: not where it was
        # redeemed, why it was voided or which stations may.
        raise type(exc)(NOT_REDEEMABLE_HERE, details={"code": code.strip().upper()[:32]}) from exc


def _voucher_redeem(*, code: str, station_id: str, actor: audit.Actor) -> Voucher:
    """Exactly one redemption per voucher: the row lock orders racing stations, and the
    redemption's unique voucher column refuses a second one whatever happens."""
    try:
        with transaction.atomic():
            voucher = Voucher.objects.select_for_update().filter(code=code.strip().upper()).first()
            if voucher is None:
                raise VoucherNotFound()
            if voucher.status == Voucher.Status.VOID:
                raise VoucherVoid(details={"code": voucher.code, "reason": voucher.void_reason})
            if voucher.status == Voucher.Status.REDEEMED:
                raise VoucherAlreadyRedeemed(
                    details={
                        "code": voucher.code,
                        "redeemed_at": voucher.redeemed_at.isoformat()
                        if voucher.redeemed_at
                        else None,
                        "redeemed_station": voucher.redeemed_station,
                    }
                )
            if voucher.expires_at is not None and voucher.expires_at <= timezone.now():
                raise VoucherExpired(
                    details={"code": voucher.code, "expires_at": voucher.expires_at.isoformat()}
                )
            if not voucher.in_scope(station_id):
                raise StationScopeMismatch(
                    details={
                        "code": voucher.code,
                        "station_id": station_id,
                        "station_scope": voucher.station_scope,
                    }
                )
            before = voucher.state()
            voucher.redeem(station_id=station_id)
            voucher.save()
            VoucherRedemption.objects.create(
                voucher=voucher,
                station_id=station_id,
                redeemed_by=audit.actor_label(actor),
                request_id=current_request_id(),
            )
            audit.record(
                "payments.voucher.redeemed",
                obj=voucher,
                before=before,
                after=voucher.state(),
                actor=actor,
                metadata={"station_id": station_id},
            )
            voucher_event(voucher, "voucher.redeemed")
    except IntegrityError as exc:
        raise VoucherAlreadyRedeemed() from exc
    return voucher


@transaction.atomic
def voucher_void(*, voucher_id: int, actor: audit.Actor, reason: str) -> Voucher:
    voided_now = False

    def void(voucher: Voucher) -> tuple[str, ...] | None:
        nonlocal voided_now
        if voucher.status == Voucher.Status.VOID:
            return None
        voucher.void(reason=reason)
        voided_now = True
        return ()  # a transition: every field it touched

    voucher = audit.audited_update(
        Voucher.objects.filter(pk=voucher_id),
        not_found=VoucherNotFound,
        change=void,
        state=Voucher.state,
        event="payments.voucher.voided",
        actor=actor,
        reason=reason,
    )
    if voided_now:
        voucher_event(voucher, "voucher.voided")
    return voucher


@transaction.atomic
def voucher_replace(*, voucher_id: int, actor: audit.Actor, reason: str) -> Voucher:
    """Runbook: void the voucher (if not already) and issue a replacement with the same value."""
    original = voucher_void(voucher_id=voucher_id, actor=actor, reason=reason)
    existing = Voucher.objects.filter(replaces=original).first()
    if existing is not None:
        return existing  # replaced already; a second click does not issue a second voucher
    return voucher_issue(
        description=original.description,
        value=original.value,
        station_scope=original.station_scope,
        customer_email=original.customer_email,
        actor=actor,
        replaces=original,
        reason=reason,
        expires_at=original.expires_at,
    )


def voucher_preview(voucher: Voucher) -> dict[str, Any]:
    """The PNG, or the degraded answer with the code: previews fail open to the code view."""
    preview = default_voucher_renderer().render(
        code=voucher.code, description=voucher.description, value=str(voucher.value)
    )
    ok = preview.status == "ok"
    return {
        "status": preview.status,
        "degraded": not ok,
        "voucher_code": voucher.code,
        "content_type": "image/png" if ok else None,
        "image_base64": base64.b64encode(preview.png).decode() if ok else None,
        "message": "" if ok else "Voucher previews unavailable; fallback to code view.",
    }


STATION = r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}"
# "*" (every station) or a comma-separated list of station ids.
STATION_SCOPE = re.compile(rf"^(\*|{STATION}(,{STATION})*)$")


class VoucherNotRescopable(Conflict):
    code = "PAY-409-VOUCHER-NOT-RESCOPABLE"
    default_message = "Only an issued voucher's station scope can be changed."


def station_scope_problem(scope: str) -> str:
    if not STATION_SCOPE.match(scope or "") or len(scope) > 500:
        return "Station ids (letters, digits, _ and -) separated by commas, or * for all."
    return ""


@transaction.atomic
def voucher_rescope(
    *, voucher_id: int, station_scope: str, actor: audit.Actor, reason: str
) -> Voucher:
    """The station runbook's remedy for a scope mismatch: the voucher may be redeemed at
    `station_scope` from now on. Audited with the reason; a redeemed or void voucher keeps
    its history unchanged."""
    if not reason.strip():
        raise PaymentsInvalidPayload(details={"fields": {"reason": ["A reason is required."]}})
    if problem := station_scope_problem(station_scope):
        raise PaymentsInvalidPayload(details={"fields": {"station_scope": [problem]}})

    def rescope(voucher: Voucher) -> list[str] | None:
        if voucher.status != Voucher.Status.ISSUED:
            raise VoucherNotRescopable(details={"status": voucher.status})
        if voucher.station_scope == station_scope:
            return None
        voucher.station_scope = station_scope
        return ["station_scope"]

    return audit.audited_update(
        Voucher.objects.filter(pk=voucher_id),
        not_found=VoucherNotFound,
        change=rescope,
        state=Voucher.state,
        event="payments.voucher.rescoped",
        actor=actor,
        reason=reason,
    )
