"""The failure inbox: every failed, dead-lettered, stalled or manual-review item of every app
in one list, grouped by error fingerprint and sorted by customer impact.

Each kind of failure is a FailureSource that knows how to find its rows, describe them,
judge their impact, ask its domain whether a replay still makes sense (the guard) and replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from bookings.models import Booking
from notifications.models import Campaign, CampaignTarget, Notification
from opsconsole import audit
from opsconsole.errors import Conflict, NotFound
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    Voucher,
    VoucherRedemptionFailure,
    WebhookFailure,
)
from recovery.fingerprints import failure_fingerprint, normalise_error
from recovery.models import FailureResolution, FailureResolutionRequest, RecoveryItem

SOON = timedelta(hours=24)


@dataclass(frozen=True)
class Impact:
    score: int
    reason: str


@dataclass
class FailureEntry:
    source: str
    app: str
    source_id: int
    provider: str
    failure_code: str
    error: str
    first_seen: datetime
    last_seen: datetime
    impact: Impact
    admin_url: str | None
    normalised_error: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.normalised_error = normalise_error(self.error)
        self.fingerprint = failure_fingerprint(
            app=self.app,
            source=self.source,
            provider=self.provider,
            failure_code=self.failure_code,
            error=self.error,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_id": self.source_id,
            "provider": self.provider,
            "failure_code": self.failure_code,
            "error": self.error[:500],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "impact": self.impact.score,
            "impact_reason": self.impact.reason,
            "admin_url": self.admin_url,
        }


@dataclass(frozen=True)
class FailureSource:
    name: str
    app: str
    failing: Callable[[], models.QuerySet]
    provider: Callable[[Any], str]
    failure_code: Callable[[Any], str]
    error: Callable[[Any], str]
    first_seen: Callable[[Any], datetime]
    last_seen: Callable[[Any], datetime]
    impact: Callable[[Any], Impact]
    # None: replay makes sense; otherwise why it no longer does.
    guard: Callable[[Any], str | None]
    predicted: Callable[[Any], str]
    replay: Callable[[int, Any, str], str]
    moves_money: bool = False
    # A source that can hold a great many failures stores each row's fingerprint when the
    # failure is written; the inbox then groups it in SQL. `ranks_first` narrows rows to those
    # whose impact may beat the source's usual one (few), so impact stays exact.
    fingerprint_field: str = ""
    first_seen_field: str = "created_at"
    last_seen_expression: Any = None
    ranks_first: Callable[[models.QuerySet], models.QuerySet] | None = None
    # The column that moves when the row fails again (a change time, or an attempt count):
    # a resolution covers the occurrence it saw, not the row forever.
    occurrence_field: str = "updated_at"

    def entry(self, row: Any) -> FailureEntry:
        return FailureEntry(
            source=self.name,
            app=self.app,
            source_id=row.pk,
            provider=self.provider(row),
            failure_code=self.failure_code(row) or "unknown",
            error=self.error(row) or "",
            first_seen=self.first_seen(row),
            last_seen=self.last_seen(row),
            impact=self.impact(row),
            admin_url=_admin_url(row),
        )

    def occurrence_match(self, *, outer: bool, row: Any = None) -> Q:
        """Resolutions (or requests) of the row's current occurrence: correlated to the outer
        row in SQL, or for one loaded `row`."""
        field = self.occurrence_field
        value = OuterRef(field) if outer else getattr(row, field)
        if field.endswith("_at"):
            return Q(occurrence_at=value, occurrence_count__isnull=True)
        return Q(occurrence_count=value, occurrence_at__isnull=True)

    def occurrence_of(self, row: Any) -> dict[str, Any]:
        field = self.occurrence_field
        key = "occurrence_at" if field.endswith("_at") else "occurrence_count"
        return {key: getattr(row, field)}

    def open_rows(self) -> models.QuerySet:
        legacy = Q(occurrence_at__isnull=True, occurrence_count__isnull=True)
        resolved = FailureResolution.objects.filter(
            legacy | self.occurrence_match(outer=True),
            source=self.name,
            source_id=OuterRef("pk"),
        )
        return self.failing().exclude(Exists(resolved))


def _admin_url(row: Any) -> str | None:
    opts = row._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    except NoReverseMatch:
        return None


def _code(error: str) -> str:
    return (error or "").split(":", 1)[0].strip()[:60]


def _booking_of(payload: Any) -> Booking | None:
    booking_id = payload.get("booking_id") if isinstance(payload, dict) else None
    if not isinstance(booking_id, int):
        return None
    return Booking.objects.filter(pk=booking_id).first()


def _soon_booking_ids() -> list[int]:
    """Live bookings that start within SOON: a failure that touches one ranks first."""
    now = timezone.now()
    return list(
        Booking.objects.exclude(status=Booking.Status.CANCELLED)
        .filter(start_time__gte=now, start_time__lte=now + SOON)
        .values_list("pk", flat=True)
    )


def _booking_impact(booking: Booking | None, base: Impact) -> Impact:
    now = timezone.now()
    live = booking is not None and booking.status != Booking.Status.CANCELLED
    if live and now <= booking.start_time <= now + SOON:
        return Impact(100, f"booking {booking.pk} starts within 24 hours")
    return base


# ---------------------------------------------------------------------------- replays


def _replay_delivery(item_id: int, actor: Any, reason: str) -> str:
    from recovery import services

    item = RecoveryItem.objects.get(pk=item_id)
    before = item.status
    services.recovery_item_replay(
        integration_id=item.integration_id, item_id=item_id, actor=actor, reason=reason
    )
    return f"{before} → replayed"


def _replay_session(session_id: int, actor: Any, reason: str) -> str:
    from payments.services import hosted_session_regenerate

    session = hosted_session_regenerate(session_id=session_id, actor=actor, reason=reason)
    return f"new checkout link; customer notified={session.metadata.get('trigger_notified')}"


def _replay_refund(refund_id: int, actor: Any, reason: str) -> str:
    from payments.refunds import refund_attempt, refund_requeue

    refund_requeue(refund_id=refund_id, actor=actor, reason=reason)
    refund = refund_attempt(refund_id=refund_id)
    return f"FAILED → {refund.status}"


def _replay_webhook(failure_id: int, actor: Any, reason: str) -> str:
    from payments.webhooks import webhook_failure_reprocess

    ok = webhook_failure_reprocess(failure_id=failure_id, actor=actor, reason=reason)
    return "reprocessed" if ok else "reprocess failed again"


def _replay_notification(notification_id: int, actor: Any, reason: str) -> str:
    from notifications.services import notification_requeue

    notification_requeue(notification_id=notification_id, actor=actor, reason=reason)
    return "DEAD → PENDING"


def _replay_target(target_id: int, actor: Any, reason: str) -> str:
    from notifications.campaigns import campaign_target_requeue

    campaign_target_requeue(target_id=target_id, actor=actor, reason=reason)
    return "failed → pending"


def _replay_redemption(failure_id: int, actor: Any, reason: str) -> str:
    from payments.vouchers import voucher_redeem

    failure = VoucherRedemptionFailure.objects.get(pk=failure_id)
    voucher = voucher_redeem(code=failure.code, station_id=failure.station_id, actor=actor)
    failure_resolve(
        source="redemption", source_id=failure_id, actor=actor, reason=f"redeemed: {reason}"
    )
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


def _replay_cancellation(booking_id: int, actor: Any, reason: str) -> str:
    from bookings.services import booking_cancel

    result = booking_cancel(booking_id=booking_id, actor=actor, reason=reason)
    return f"CANCELLING → {result.booking.status}"


# ---------------------------------------------------------------------------- guards


def _guard_delivery(item: RecoveryItem) -> str | None:
    booking = _booking_of(item.payload)
    if booking is not None and booking.status == Booking.Status.CANCELLED:
        return f"booking {booking.pk} was cancelled; delivering {item.event_type} is moot"
    return None


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
    checkout = (failure.payload.get("data") or {}).get("object") or {}
    reference = checkout.get("client_reference_id")
    if failure.event_type == "checkout.session.completed" and reference:
        session = HostedCheckoutSession.objects.filter(reference=reference).first()
        if session is not None and session.status == HostedCheckoutSession.Status.COMPLETED:
            return "the session was already paid"
    return None


def _guard_notification(notification: Notification) -> str | None:
    if notification.subject_type == "bookings.booking" and notification.subject_id.isdigit():
        booking = Booking.objects.filter(pk=int(notification.subject_id)).first()
        if booking is not None and booking.status == Booking.Status.CANCELLED:
            return f"booking {booking.pk} was cancelled"
    return None


def _guard_target(target: CampaignTarget) -> str | None:
    if target.status == CampaignTarget.Status.INVALID:
        return "the number is invalid; fix the data instead of replaying"
    if target.campaign.status != Campaign.Status.RUNNING:
        return f"the campaign is {target.campaign.status}"
    return None


SOURCES: dict[str, FailureSource] = {
    source.name: source
    for source in (
        FailureSource(
            name="integration_delivery",
            app="recovery",
            failing=lambda: RecoveryItem.objects.filter(
                status__in=RecoveryItem.REPLAYABLE
            ).select_related("integration"),
            provider=lambda item: item.integration.name,
            failure_code=lambda item: item.failure_code,
            error=lambda item: item.failure_detail,
            first_seen=lambda item: item.created_at,
            last_seen=lambda item: item.last_attempt_at or item.updated_at,
            impact=lambda item: _booking_impact(_booking_of(item.payload), Impact(10, "")),
            guard=_guard_delivery,
            predicted=lambda item: f"{item.status} → replayed",
            replay=_replay_delivery,
            fingerprint_field="failure_fingerprint",
            last_seen_expression=Coalesce("last_attempt_at", "updated_at"),
            ranks_first=lambda rows: rows.filter(payload__booking_id__in=_soon_booking_ids()),
        ),
        FailureSource(
            name="hosted_session",
            app="payments",
            failing=lambda: HostedCheckoutSession.objects.filter(
                models.Q(status__in=["failed", "abandoned"])
                | models.Q(
                    status__in=HostedCheckoutSession.RECOVERABLE, attempts_since_notification__gt=3
                )
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
        ),
        FailureSource(
            name="refund",
            app="payments",
            failing=lambda: Refund.objects.filter(status=Refund.Status.FAILED).select_related(
                "payment"
            ),
            provider=lambda r: "stripe",
            failure_code=lambda r: _code(r.last_error),
            error=lambda r: r.last_error,
            first_seen=lambda r: r.created_at,
            last_seen=lambda r: r.updated_at,
            impact=lambda r: Impact(
                50 + int(r.amount // 10), f"{r.amount} {r.payment.currency} owed to a customer"
            ),
            guard=_guard_refund,
            predicted=lambda r: "FAILED → COMPLETED (one more provider attempt, same key)",
            replay=_replay_refund,
            moves_money=True,
        ),
        FailureSource(
            name="webhook_failure",
            app="payments",
            failing=lambda: WebhookFailure.objects.filter(
                status=WebhookFailure.Status.PENDING_MANUAL
            ),
            provider=lambda f: f.provider,
            failure_code=lambda f: f.event_type,
            error=lambda f: f.error,
            first_seen=lambda f: f.created_at,
            last_seen=lambda f: f.created_at,
            occurrence_field="reprocess_attempts",
            impact=lambda f: Impact(60, "a critical payment event was not processed"),
            guard=_guard_webhook,
            predicted=lambda f: "PENDING_MANUAL → REPROCESSED",
            replay=_replay_webhook,
        ),
        FailureSource(
            name="notification",
            app="notifications",
            failing=lambda: Notification.objects.filter(status=Notification.Status.DEAD),
            provider=lambda n: n.channel,
            failure_code=lambda n: _code(n.last_error),
            error=lambda n: n.last_error,
            first_seen=lambda n: n.created_at,
            last_seen=lambda n: n.created_at,
            occurrence_field="attempts",
            impact=lambda n: Impact(5, "a customer message was not delivered"),
            guard=_guard_notification,
            predicted=lambda n: "DEAD → PENDING",
            replay=_replay_notification,
        ),
        FailureSource(
            name="campaign_target",
            app="notifications",
            failing=lambda: CampaignTarget.objects.filter(
                status__in=[CampaignTarget.Status.FAILED, CampaignTarget.Status.INVALID]
            ).select_related("campaign"),
            provider=lambda t: "whatsapp",
            failure_code=lambda t: _code(t.last_error) or t.status,
            error=lambda t: t.last_error,
            first_seen=lambda t: t.updated_at,
            last_seen=lambda t: t.updated_at,
            impact=lambda t: Impact(1, "a campaign message was not sent"),
            guard=_guard_target,
            predicted=lambda t: f"{t.status} → pending",
            replay=_replay_target,
        ),
        FailureSource(
            name="redemption",
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
        ),
        FailureSource(
            name="cancellation",
            app="bookings",
            failing=lambda: Booking.objects.filter(status=Booking.Status.CANCELLING),
            provider=lambda b: "bookings",
            failure_code=lambda b: b.cancellation_step or "cancelling",
            error=lambda b: b.cancellation_error,
            first_seen=lambda b: b.updated_at,
            last_seen=lambda b: b.updated_at,
            impact=lambda b: _booking_impact(b, Impact(40, "a cancellation is half done")),
            guard=lambda b: None,
            predicted=lambda b: "CANCELLING → CANCELLED (the saga resumes; refund key reused)",
            replay=_replay_cancellation,
            moves_money=True,
        ),
    )
}


@dataclass
class FailureGroup:
    """One fingerprint's open failures: those grouped in Python (`entries`) and those grouped
    in SQL by their stored fingerprint (`stored_count`, read on demand)."""

    fingerprint: str
    app: str
    source: str
    provider: str
    failure_code: str
    normalised_error: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    impact: Impact = field(default_factory=lambda: Impact(0, ""))
    entries: list[FailureEntry] = field(default_factory=list)
    stored_count: int = 0

    @property
    def count(self) -> int:
        return self.stored_count + len(self.entries)

    def add(self, entry: FailureEntry) -> None:
        self.entries.append(entry)
        self._widen(entry.first_seen, entry.last_seen, entry.impact)

    def add_stored(
        self, *, count: int, first_seen: datetime, last_seen: datetime, impact: Impact
    ) -> None:
        self.stored_count += count
        self._widen(first_seen, last_seen, impact)

    def _widen(self, first_seen: datetime, last_seen: datetime, impact: Impact) -> None:
        self.first_seen = min(self.first_seen or first_seen, first_seen)
        self.last_seen = max(self.last_seen or last_seen, last_seen)
        if impact.score > self.impact.score:
            self.impact = impact

    def _stored_rows(self) -> models.QuerySet:
        failure_source = SOURCES[self.source]
        return failure_source.open_rows().filter(
            **{failure_source.fingerprint_field: self.fingerprint}
        )

    def source_ids(self) -> list[int]:
        """Every open failure in the group (what a bulk action freezes)."""
        ids = [entry.source_id for entry in self.entries]
        if self.stored_count:
            ids += self._stored_rows().order_by("pk").values_list("pk", flat=True)
        return ids

    def top_entries(self, limit: int) -> list[FailureEntry]:
        """The group's first `limit` failures, highest impact first, then oldest first."""
        entries = list(self.entries)
        if self.stored_count:
            failure_source = SOURCES[self.source]
            rows = self._stored_rows()
            order = (failure_source.first_seen_field, "pk")
            picked = list(rows.order_by(*order)[:limit])
            if failure_source.ranks_first:
                picked += failure_source.ranks_first(rows).order_by(*order)[:limit]
            seen: set[int] = set()
            for row in picked:
                if row.pk not in seen:
                    seen.add(row.pk)
                    entries.append(failure_source.entry(row))
        entries.sort(key=lambda e: (-e.impact.score, e.first_seen))
        return entries[:limit]

    def as_dict(self, *, with_items: bool = False, item_limit: int = 50) -> dict[str, Any]:
        top = self.top_entries(max(5, item_limit) if with_items else 5)
        data = {
            "fingerprint": self.fingerprint,
            "app": self.app,
            "source": self.source,
            "provider": self.provider,
            "failure_code": self.failure_code,
            "normalised_error": self.normalised_error,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "impact": self.impact.score,
            "impact_reason": self.impact.reason,
            "sample_ids": [e.source_id for e in top[:5]],
        }
        if with_items:
            data["items"] = [e.as_dict() for e in top[:item_limit]]
        return data


def failure_groups(*, app: str = "", source: str = "") -> list[FailureGroup]:
    groups: dict[str, FailureGroup] = {}
    for name, failure_source in SOURCES.items():
        if (source and name != source) or (app and failure_source.app != app):
            continue
        rows = failure_source.open_rows()
        if failure_source.fingerprint_field:
            stored = rows.exclude(**{failure_source.fingerprint_field: ""})
            _add_stored_groups(failure_source, stored, groups)
            # Rows written before fingerprints were stored (or by hand) are grouped here.
            rows = rows.filter(**{failure_source.fingerprint_field: ""})
        for row in rows:
            entry = failure_source.entry(row)
            _group_of(groups, entry.fingerprint, entry).add(entry)
    return sorted(groups.values(), key=lambda g: (-g.impact.score, -g.count, g.fingerprint))


def _group_of(
    groups: dict[str, FailureGroup], fingerprint: str, entry: FailureEntry
) -> FailureGroup:
    return groups.setdefault(
        fingerprint,
        FailureGroup(
            fingerprint=fingerprint,
            app=entry.app,
            source=entry.source,
            provider=entry.provider,
            failure_code=entry.failure_code,
            normalised_error=entry.normalised_error,
        ),
    )


def _add_stored_groups(
    failure_source: FailureSource, rows: models.QuerySet, groups: dict[str, FailureGroup]
) -> None:
    """Count, first and last seen per stored fingerprint in one GROUP BY; describe each group
    by its newest row; take the impact from the usual row and the few that rank first."""
    key = failure_source.fingerprint_field
    aggregates = list(
        rows.values(key)
        .annotate(
            rows=Count("pk"),
            first=Min(failure_source.first_seen_field),
            last=Max(failure_source.last_seen_expression),
            newest=Max("pk"),
        )
        .order_by()
    )
    newest = {row.pk: row for row in rows.filter(pk__in=[a["newest"] for a in aggregates])}
    ranked: dict[str, Impact] = {}
    if failure_source.ranks_first:
        for row in failure_source.ranks_first(rows):
            impact = failure_source.impact(row)
            fingerprint = getattr(row, key)
            if fingerprint not in ranked or impact.score > ranked[fingerprint].score:
                ranked[fingerprint] = impact
    for aggregate in aggregates:
        representative = newest.get(aggregate["newest"])
        if representative is None:  # it changed state since the count: the next load shows it
            continue
        entry = failure_source.entry(representative)
        impact = entry.impact
        if (other := ranked.get(aggregate[key])) and other.score > impact.score:
            impact = other
        _group_of(groups, aggregate[key], entry).add_stored(
            count=aggregate["rows"],
            first_seen=aggregate["first"],
            last_seen=aggregate["last"],
            impact=impact,
        )


def failure_group(fingerprint: str) -> FailureGroup | None:
    return next((g for g in failure_groups() if g.fingerprint == fingerprint), None)


class SecondOperatorRequired(Conflict):
    code = "OPS-409-SECOND-OPERATOR-REQUIRED"
    default_message = "This failure moves money: another operator must confirm its resolution."


class FailureNotOpen(NotFound):
    code = "OPS-404-NOT-FOUND"
    default_message = "No open failure with this id."


def failure_resolve(*, source: str, source_id: int, actor: audit.Actor, reason: str) -> bool:
    """Close a failure's current occurrence without replaying it; audited, and it leaves
    the inbox until the row fails again. False when it was resolved already.

    Callers that are not the bulk engine (whose money-moving runs were approved by a second
    operator already) go through `failure_resolve_by_operator`."""
    from django.db import IntegrityError, transaction

    failure_source = SOURCES[source]
    row = failure_source.failing().filter(pk=source_id).first()
    occurrence = failure_source.occurrence_of(row) if row is not None else {}
    try:
        with transaction.atomic():
            _record_resolution(
                source=source,
                source_id=source_id,
                occurrence=occurrence,
                actor=actor,
                reason=reason,
            )
    except IntegrityError:
        return False  # this occurrence is resolved already
    return True


def _record_resolution(
    *,
    source: str,
    source_id: int,
    occurrence: dict[str, Any],
    actor: audit.Actor,
    reason: str,
    requested_by: str = "",
) -> FailureResolution:
    resolution = FailureResolution.objects.create(
        source=source,
        source_id=source_id,
        reason=reason,
        resolved_by=audit.actor_label(actor),
        requested_by=requested_by,
        **occurrence,
    )
    audit.record(
        "recovery.failure.resolved",
        obj=resolution,
        after={"source": source, "source_id": source_id, "requested_by": requested_by},
        actor=actor,
        reason=reason,
    )
    return resolution


@dataclass(frozen=True)
class ResolveOutcome:
    resolved: bool
    awaiting_second_operator: bool
    requested_by: str = ""


def failure_resolve_by_operator(
    *, source: str, source_id: int, actor: Any, reason: str
) -> ResolveOutcome:
    """An operator resolves an open failure (API and admin). A failure that moves money
    needs two operators: the first call records a request, a different operator's call
    completes it, and the same operator's second call is refused."""
    from django.db import IntegrityError, transaction

    failure_source = SOURCES[source]
    with transaction.atomic():
        row = (
            failure_source.open_rows().select_for_update(of=("self",)).filter(pk=source_id).first()
        )
        if row is None:
            raise FailureNotOpen()
        occurrence = failure_source.occurrence_of(row)
        if not failure_source.moves_money:
            _record_resolution(
                source=source,
                source_id=source_id,
                occurrence=occurrence,
                actor=actor,
                reason=reason,
            )
            return ResolveOutcome(resolved=True, awaiting_second_operator=False)
        request = (
            FailureResolutionRequest.objects.select_for_update()
            .filter(failure_source.occurrence_match(outer=False, row=row))
            .filter(source=source, source_id=source_id)
            .first()
        )
        actor_name = audit.actor_label(actor)
        if request is None:
            try:
                with transaction.atomic():
                    request = FailureResolutionRequest.objects.create(
                        source=source,
                        source_id=source_id,
                        reason=reason,
                        requested_by=actor_name,
                        requested_by_user=actor if getattr(actor, "pk", None) else None,
                        **occurrence,
                    )
            except IntegrityError as exc:  # another operator's request landed first
                raise SecondOperatorRequired(
                    "Another operator asked to resolve this failure just now; reload."
                ) from exc
            audit.record(
                "recovery.failure.resolution_requested",
                obj=request,
                after={"source": source, "source_id": source_id},
                actor=actor,
                reason=reason,
            )
            return ResolveOutcome(
                resolved=False, awaiting_second_operator=True, requested_by=actor_name
            )
        if request.requested_by == actor_name:
            raise SecondOperatorRequired(details={"requested_by": request.requested_by})
        _record_resolution(
            source=source,
            source_id=source_id,
            occurrence=occurrence,
            actor=actor,
            reason=f"{request.reason} / confirmed: {reason}",
            requested_by=request.requested_by,
        )
        request.delete()
        return ResolveOutcome(
            resolved=True, awaiting_second_operator=False, requested_by=request.requested_by
        )
