"""Scheduled changes to the resource catalog (docs/runbooks/incident-response.md): open
slots up to a date, change a price, close a resource for maintenance, reopen it.

The catalog scheduler applies each change at its time, once: the change's row is claimed
with a lease and applied in one transaction with its resource's row locked, and it must
still be SCHEDULED (or FAILING) to apply. A resource's changes apply in order: a change
waits while an earlier one of its resource is still open (scheduled, paused, failing or
parked). A change that cannot apply retries with backoff and parks once its budget is spent;
while any change is failing or parked the scheduler's runs count as failed, so its
`consecutive_failures` keeps rising for the alert until an operator acts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bookings.errors import BookingInvalidPayload, ResourceNotFound
from bookings.models import Booking, CatalogChange, Resource
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.http.errors import Conflict

SCHEDULER_ACTOR = "catalog_scheduler"
# A change held back by an earlier one of its resource looks again this much later.
HELD_BACK_SECONDS = 60


class CatalogOutcome(StrEnum):
    APPLIED = "applied"
    HELD_BACK = "held_back"  # an earlier change of its resource is still open
    RETRY_SCHEDULED = "retry_scheduled"
    PARKED = "parked"
    ALREADY_DONE = "already_done"  # applied, paused or cancelled meanwhile; or lease lost


@dataclass(frozen=True)
class ChangeRefused(Exception):
    """Why a change cannot apply now (the next attempt may succeed: bookings moved)."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def catalog_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.CATALOG_CHANGE_MAX_ATTEMPTS,
        base_seconds=settings.CATALOG_CHANGE_BACKOFF_BASE_SECONDS,
        cap_seconds=3600,
        jitter="floor",
    )


def catalog_change_check(
    *, kind: str, bookable_until: datetime | None, price: Decimal | None
) -> None:
    problems: dict[str, str] = {}
    if kind not in CatalogChange.Kind.values:
        problems["kind"] = f"Choose one of {', '.join(CatalogChange.Kind.values)}."
    if kind == CatalogChange.Kind.OPEN_SLOTS and bookable_until is None:
        problems["bookable_until"] = "Opening slots needs the date they open up to."
    if kind == CatalogChange.Kind.PRICE_CHANGE and (price is None or price <= 0):
        problems["price"] = "A price change needs a price above 0."
    if problems:
        raise BookingInvalidPayload("The catalog change is invalid.", details=problems)


@transaction.atomic
def catalog_change_schedule(
    *,
    resource_id: int,
    kind: str,
    apply_at: datetime,
    bookable_until: datetime | None = None,
    price: Decimal | None = None,
    actor: audit.Actor,
    reason: str,
) -> CatalogChange:
    catalog_change_check(kind=kind, bookable_until=bookable_until, price=price)
    if not Resource.objects.filter(pk=resource_id).exists():
        raise ResourceNotFound()
    change = CatalogChange.objects.create(
        resource_id=resource_id,
        kind=kind,
        apply_at=apply_at,
        next_retry_at=apply_at,
        bookable_until=bookable_until if kind == CatalogChange.Kind.OPEN_SLOTS else None,
        price=price if kind == CatalogChange.Kind.PRICE_CHANGE else None,
        scheduled_by=audit.actor_label(actor),
        reason=reason,
    )
    audit.record(
        "booking.catalog_change.scheduled",
        obj=change,
        after=change.state(),
        actor=actor,
        reason=reason,
    )
    return change


def catalog_change_apply(*, change_id: int, lease_owner: str) -> CatalogOutcome:
    """The scheduler's step for one claimed change."""
    with transaction.atomic():
        change = (
            CatalogChange.objects.select_for_update()
            .filter(
                pk=change_id,
                lease_owner=lease_owner,
                status__in=[CatalogChange.Status.SCHEDULED, CatalogChange.Status.FAILING],
            )
            .first()
        )
        if change is None:
            return CatalogOutcome.ALREADY_DONE
        # The resource's lock first: an earlier change applying in another transaction has
        # committed by the time this one reads whether it is still open.
        resource = Resource.objects.select_for_update().get(pk=change.resource_id)
        earlier = CatalogChange.objects.filter(
            Q(apply_at__lt=change.apply_at) | Q(apply_at=change.apply_at, pk__lt=change.pk),
            resource_id=change.resource_id,
            status__in=CatalogChange.OPEN,
        ).exists()
        if earlier:
            change.next_retry_at = timezone.now() + timedelta(seconds=HELD_BACK_SECONDS)
            change.release_lease()
            change.save(update_fields=["next_retry_at", "lease_owner", "lease_expires_at"])
            return CatalogOutcome.HELD_BACK
        before = change.state()
        try:
            with transaction.atomic():
                resource_before, resource_after = _apply(change, resource)
        except ChangeRefused as refused:
            return _record_failure(change, refused, before=before)
        change.status = CatalogChange.Status.APPLIED
        change.applied_at = timezone.now()
        change.attempt_count += 1
        change.next_retry_at = None
        change.failure_code = ""
        change.last_error = ""
        change.release_lease()
        change.save()
        audit.record(
            "booking.catalog_change.applied",
            obj=change,
            before=before,
            after=change.state(),
            actor=SCHEDULER_ACTOR,
            metadata={"resource_before": resource_before, "resource_after": resource_after},
        )
        audit.record(
            "booking.resource.updated",
            obj=resource,
            before=resource_before,
            after=resource_after,
            actor=SCHEDULER_ACTOR,
            reason=f"scheduled change {change.pk}: {change.reason}"[:1000],
        )
        return CatalogOutcome.APPLIED


def _resource_state(resource: Resource) -> dict[str, object]:
    return {
        "active": resource.active,
        "price": str(resource.price) if resource.price is not None else None,
        "bookable_until": resource.bookable_until.isoformat() if resource.bookable_until else None,
    }


def _apply(change: CatalogChange, resource: Resource) -> tuple[dict, dict]:
    before = _resource_state(resource)
    if change.kind == CatalogChange.Kind.OPEN_SLOTS:
        assert change.bookable_until is not None  # the table's check constraint
        if resource.bookable_until and change.bookable_until < resource.bookable_until:
            raise ChangeRefused(
                "WOULD_CLOSE_OPEN_SLOTS",
                f"slots are open up to {resource.bookable_until:%Y-%m-%d %H:%M}; opening up to "
                f"{change.bookable_until:%Y-%m-%d %H:%M} would close slots customers may hold",
            )
        resource.bookable_until = change.bookable_until
    elif change.kind == CatalogChange.Kind.PRICE_CHANGE:
        resource.price = change.price
    elif change.kind == CatalogChange.Kind.CLOSE:
        live = list(
            Booking.objects.filter(
                resource_id=resource.pk, status__in=Booking.LIVE, end_time__gt=timezone.now()
            ).values_list("pk", flat=True)[:20]
        )
        if live:
            named = ", ".join(f"booking {pk}" for pk in live)
            raise ChangeRefused(
                "LIVE_BOOKINGS",
                f"{len(live)} live booking(s) still to come on {resource.name} ({named}): "
                "cancel them (Admin → Bookings), or cancel this change and schedule the "
                "closing after them",
            )
        resource.active = False
    elif change.kind == CatalogChange.Kind.REOPEN:
        resource.active = True
    resource.save(update_fields=["active", "price", "bookable_until"])
    return before, _resource_state(resource)


def _record_failure(
    change: CatalogChange, refused: ChangeRefused, *, before: dict[str, object]
) -> CatalogOutcome:
    parked = change.count_failed_attempt(catalog_retry_policy())
    change.status = CatalogChange.Status.PARKED if parked else CatalogChange.Status.FAILING
    change.failure_code = refused.code
    change.last_error = refused.message
    change.release_lease()
    change.save()
    audit.record(
        "booking.catalog_change.parked" if parked else "booking.catalog_change.failed",
        obj=change,
        before=before,
        after=change.state(),
        actor=SCHEDULER_ACTOR,
        metadata={"error": refused.message[:500]},
    )
    return CatalogOutcome.PARKED if parked else CatalogOutcome.RETRY_SCHEDULED


def catalog_changes_failing() -> str:
    """The changes failing or parked, in the operator's words ("" if none): the scheduler's
    runs count as failed until an operator retries, pauses or cancels them."""
    failing = list(
        CatalogChange.objects.filter(
            status__in=[CatalogChange.Status.FAILING, CatalogChange.Status.PARKED]
        )
        .select_related("resource")
        .order_by("apply_at", "pk")[:4]
    )
    if not failing:
        return ""
    first = failing[0]
    more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
    return (
        f"catalog change {first.pk} ({first}) is {first.status}{more}: {first.failure_code}: "
        f"{first.last_error} (Admin → Catalog changes)"
    )[:1000]


# What an operator may do to a change: from which statuses, to which, and its audit event.
_OPERATOR_MOVES = {
    "pause": ((CatalogChange.Status.SCHEDULED, CatalogChange.Status.FAILING), "PAUSED", "paused"),
    "resume": ((CatalogChange.Status.PAUSED,), "SCHEDULED", "resumed"),
    "retry": ((CatalogChange.Status.FAILING, CatalogChange.Status.PARKED), "SCHEDULED", "retried"),
    "cancel": (tuple(CatalogChange.OPEN), "CANCELLED", "cancelled"),
}
CATALOG_MOVES = tuple(_OPERATOR_MOVES)


class ChangeNotMovable(Conflict):
    code = "BKG-409-CATALOG-CHANGE-NOT-OPEN"
    default_message = "The catalog change is not in a state that allows this."


@transaction.atomic
def catalog_change_move(
    *, change_id: int, move: str, actor: audit.Actor, reason: str
) -> CatalogChange:
    """Pause, resume, retry now or cancel a change (audited). A resumed or retried change is
    due at its time, or now when that has passed, with a fresh retry budget."""
    sources, target, event = _OPERATOR_MOVES[move]
    change = CatalogChange.objects.select_for_update().get(pk=change_id)
    if change.status not in sources:
        raise ChangeNotMovable(
            f"A {change.status} change cannot be {event}.", details={"status": change.status}
        )
    before = change.state()
    change.status = target
    change.release_lease()
    if target == CatalogChange.Status.SCHEDULED:
        change.attempt_count = 0
        change.next_retry_at = max(change.apply_at, timezone.now())
    else:
        change.next_retry_at = None
    if target in (CatalogChange.Status.SCHEDULED, CatalogChange.Status.CANCELLED):
        # The failure it had stays in the audit row's before-state.
        change.failure_code = change.last_error = ""
    change.save()
    audit.record(
        f"booking.catalog_change.{event}",
        obj=change,
        before=before,
        after=change.state(),
        actor=actor,
        reason=reason,
    )
    return change
