"""5-minute holds (docs/runbooks/bookings-payments-notifications.md): create under the
per-client cap, confirm, expire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bookings.errors import (
    HoldExpired,
    HoldNotFound,
    ResourceNotFound,
    SlotNotOpen,
    SlotUnavailable,
    TooManyActiveHolds,
)
from bookings.events import booking_event
from bookings.models import Booking, BookingHold, Resource
from bookings.services.events import _emit_on_commit
from bookings.services.hold_statement import (
    CAP_SLOT_CONSTRAINT,
    _hold_in_one_statement,
    _violated,
)
from bookings.signals import booking_hold_expired
from notifications.services import notify_fail_open
from opsconsole.db.transactions import retry_on_deadlock
from opsconsole.evidence import audit

WORKER_ACTOR = "worker:booking_hold_expiry_worker"


def booking_hold_create(
    *, resource_id: int, start_time: datetime, end_time: datetime, holder: AbstractBaseUser
) -> BookingHold:
    """Hold a slot for 5 minutes. The exclusion constraint keeps holds apart and the unique
    (holder, cap_slot) pair keeps a client within the cap, so on PostgreSQL the usual hold
    is one statement (the hold and its audit row). Whatever that statement cannot settle
    alone goes the locked way: a taken slot (an overdue hold in it is expired there), all
    of the client's places taken (overdue holds give theirs back there), or two of the
    client's own requests racing for one place."""
    if connection.vendor == "postgresql":
        hold = _hold_in_one_statement(
            resource_id=resource_id, start_time=start_time, end_time=end_time, holder=holder
        )
        if hold is not None:
            return hold
    for _ in range(3):
        try:
            return _hold_under_locks(
                resource_id=resource_id, start_time=start_time, end_time=end_time, holder=holder
            )
        except _CapSlotTaken:
            continue  # a one-statement hold of the same client took the place just now
    raise TooManyActiveHolds(details={"max": settings.BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT})


class _CapSlotTaken(Exception):
    pass


@retry_on_deadlock()
def _hold_under_locks(
    *, resource_id: int, start_time: datetime, end_time: datetime, holder: AbstractBaseUser
) -> BookingHold:
    """The locked check answers 409 first; the exclusion constraint is the guarantee if
    anything ever gets past it."""
    with transaction.atomic():
        cap = settings.BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT
        active, taken = _lock_and_check_hold(
            resource_id=resource_id,
            holder_id=holder.pk,
            start_time=start_time,
            end_time=end_time,
            cap=cap,
        )
        if active >= cap:
            raise TooManyActiveHolds(details={"active_holds": active, "max": cap})
        # Only a taken slot can hold an overdue hold to expire: the free path pays nothing.
        if taken and _expire_overdue_holds(
            resource_id=resource_id, start_time=start_time, end_time=end_time
        ):
            taken = BookingHold.objects.filter(
                resource_id=resource_id,
                occupies_slot=True,
                start_time__lt=end_time,
                end_time__gt=start_time,
            ).exists()
        if taken:
            raise SlotUnavailable(details={"resource_id": resource_id})
        now = timezone.now()
        expires_at = now + timedelta(seconds=settings.BOOKING_HOLD_SECONDS)
        # No savepoint of its own: a violation ends this atomic block by raising, which rolls
        # it back (to the caller's savepoint when nested), so nothing runs after the error.
        try:
            hold = BookingHold.objects.create(
                resource_id=resource_id,
                holder=holder,
                start_time=start_time,
                end_time=end_time,
                expires_at=expires_at,
                next_check_at=expires_at,
                cap_slot=_free_cap_slot(holder.pk, now=now, cap=cap),
            )
        except IntegrityError as exc:
            violated = _violated(exc)
            if violated == "exclusion":
                raise SlotUnavailable(details={"resource_id": resource_id}) from exc
            if violated == CAP_SLOT_CONSTRAINT:
                raise _CapSlotTaken() from exc
            raise
        audit.record(
            "booking.hold.created",
            obj=hold,
            after=hold.state(),
            actor=holder,
            metadata={"resource_id": resource_id, "start_time": start_time.isoformat()},
        )
    return hold


def _free_cap_slot(holder_id: int, *, now: datetime, cap: int) -> int:
    """The client's first free place, under the client's lock and below the cap: overdue
    holds give their places back first (they stay ACTIVE, confirmable in their grace)."""
    BookingHold.objects.filter(
        holder_id=holder_id, status=BookingHold.Status.ACTIVE, expires_at__lte=now
    ).exclude(cap_slot=None).update(cap_slot=None)
    used = set(
        BookingHold.objects.filter(holder_id=holder_id, status=BookingHold.Status.ACTIVE)
        .exclude(cap_slot=None)
        .values_list("cap_slot", flat=True)
    )
    free = set(range(1, cap + 1)) - used
    if not free:  # a one-statement hold of the client took the last place since the count
        raise TooManyActiveHolds(details={"active_holds": cap, "max": cap})
    return min(free)


# Advisory-lock namespace for "one client's holds are counted one request at a time".
HOLD_CAP_LOCK_NAMESPACE = 0x484F4C44  # "HOLD"


def _check_open(bookable_until: datetime | None, end_time: datetime) -> None:
    """A slot past the resource's bookable_until is not open yet (the catalog scheduler opens
    slots up to a date, docs/runbooks/incident-response.md)."""
    if bookable_until is not None and end_time > bookable_until:
        raise SlotNotOpen(details={"bookable_until": bookable_until.isoformat()})


def _lock_and_check_hold(
    *, resource_id: int, holder_id: int, start_time: datetime, end_time: datetime, cap: int
) -> tuple[int, bool]:
    """Take the resource's row lock (holds for one resource are created one at a time) and
    the client's lock (racing requests cannot pass the cap together), then read, in one
    statement after both are held, how many holds the client has (counting stops at the cap)
    and whether the slot is taken. Two round trips on PostgreSQL; raises ResourceNotFound.

    Every hold takes its resource lock before its client lock, so no two requests wait on
    each other in a cycle. The resource's lock is FOR NO KEY UPDATE: a one-statement hold's
    foreign-key check takes KEY SHARE on the same row while this hold may be waiting on that
    one's cap place, and FOR UPDATE would close that circle into a deadlock."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        resource = Resource.objects.select_for_update().filter(pk=resource_id, active=True).first()
        if resource is None:
            raise ResourceNotFound()
        _check_open(resource.bookable_until, end_time)
        active = BookingHold.objects.filter(
            holder_id=holder_id, status=BookingHold.Status.ACTIVE, expires_at__gt=now
        )[:cap].count()
        taken = BookingHold.objects.filter(
            resource_id=resource_id,
            occupies_slot=True,
            start_time__lt=end_time,
            end_time__gt=start_time,
        ).exists()
        return active, taken
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, (%s %% 2147483647)::int4), bookable_until "
            "FROM bookings_resource WHERE id = %s AND active FOR NO KEY UPDATE",
            [HOLD_CAP_LOCK_NAMESPACE, holder_id, resource_id],
        )
        locked = cursor.fetchone()
        if locked is None:
            raise ResourceNotFound()
        _check_open(locked[1], end_time)
        # A new statement, so a new snapshot: it sees what the lock holders committed.
        cursor.execute(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM bookings_bookinghold"
            " WHERE holder_id = %s AND status = 'ACTIVE' AND expires_at > %s LIMIT %s) capped),"
            " EXISTS (SELECT 1 FROM bookings_bookinghold WHERE resource_id = %s"
            " AND occupies_slot AND start_time < %s AND end_time > %s)",
            [holder_id, now, cap, resource_id, end_time, start_time],
        )
        active, taken = cursor.fetchone()
    return int(active), bool(taken)


def _expire_overdue_holds(*, resource_id: int, start_time: datetime, end_time: datetime) -> int:
    """A hold frees its slot at 5:00, whether or not the expiry worker has run.
    Hold creation (under the resource's lock) expires the overlapping holds past their
    expiry itself, since an exclusion constraint cannot read the clock. A hold whose row is
    locked has a confirm in flight: it keeps its grace and is skipped (the slot stays taken).
    The waitlist is not told: the slot goes straight to the new hold."""
    overdue = BookingHold.objects.select_for_update(skip_locked=True).filter(
        resource_id=resource_id,
        status=BookingHold.Status.ACTIVE,
        occupies_slot=True,
        expires_at__lte=timezone.now(),
        start_time__lt=end_time,
        end_time__gt=start_time,
    )
    expired = 0
    for hold in overdue:
        before = hold.state()
        hold.expire()
        hold.save()
        audit.record(
            "booking.hold.expired",
            obj=hold,
            before=before,
            after=hold.state(),
            actor="hold-creation",
            reason="its slot was held again after it expired",
        )
        expired += 1
    return expired


def hold_confirm_deadline(hold: BookingHold) -> datetime:
    """A confirm may arrive this late (network delay tolerance) while the hold is ACTIVE."""
    return hold.expires_at + timedelta(seconds=settings.BOOKING_HOLD_GRACE_SECONDS)


@dataclass(frozen=True)
class Confirmation:
    booking: Booking
    created: bool


@retry_on_deadlock()
def booking_hold_confirm(*, hold_id: int, customer: AbstractBaseUser) -> Confirmation:
    """Idempotent: confirming a confirmed hold returns its booking. Serialized against the
    expiry worker by the hold's row lock: whichever locks first wins."""
    with transaction.atomic():
        # Missing and "not yours" look the same to the caller.
        hold = BookingHold.objects.select_for_update().filter(pk=hold_id, holder=customer).first()
        if hold is None:
            raise HoldNotFound()
        if hold.status == BookingHold.Status.CONFIRMED:
            return Confirmation(booking=Booking.objects.get(hold=hold), created=False)
        if hold.status == BookingHold.Status.EXPIRED or timezone.now() > hold_confirm_deadline(
            hold
        ):
            raise HoldExpired(
                details={"hold_id": hold.pk, "expires_at": hold.expires_at.isoformat()}
            )
        before = hold.state()
        hold.confirm()
        hold.save()
        booking = Booking.objects.create(
            hold=hold,
            resource_id=hold.resource_id,
            customer=customer,
            start_time=hold.start_time,
            end_time=hold.end_time,
        )
        audit.record(
            "booking.confirmed",
            obj=booking,
            after=booking.state(),
            actor=customer,
            metadata={"hold_id": hold.pk, "hold_before": before},
        )
        booking_event(booking, "booking.confirmed")
        if email := getattr(customer, "email", ""):
            # Fails open: queued in a savepoint; the worker sends and retries it later.
            notify_fail_open(
                channel="email",
                to=email,
                template="booking_confirmed",
                context={"booking_id": booking.pk, "start_time": booking.start_time.isoformat()},
                subject_type="bookings.booking",
                subject_id=booking.pk,
            )
    return Confirmation(booking=booking, created=True)


def booking_hold_expire(*, hold_id: int, lease_owner: str = "") -> str:
    """The expiry worker's step for one hold: idempotent, serialized with confirm."""
    with transaction.atomic():
        hold = BookingHold.objects.select_for_update().get(pk=hold_id)
        if hold.status != BookingHold.Status.ACTIVE:
            BookingHold.objects.filter(pk=hold_id, lease_owner=lease_owner).update(
                lease_owner="", lease_expires_at=None
            )
            return f"already_{hold.status.lower()}"
        if lease_owner and hold.lease_owner != lease_owner:
            return "lease_lost"
        deadline = hold_confirm_deadline(hold)
        if timezone.now() < deadline:
            # Still in its grace period: look again when it ends.
            hold.next_check_at = deadline
            hold.lease_owner, hold.lease_expires_at = "", None
            hold.save()
            return "requeued"
        before = hold.state()
        hold.expire()
        hold.save()
        audit.record(
            "booking.hold.expired", obj=hold, before=before, after=hold.state(), actor=WORKER_ACTOR
        )
        _emit_on_commit(
            booking_hold_expired,
            "booking.hold.expired",
            hold_id=hold.pk,
            resource_id=hold.resource_id,
            start_time=hold.start_time,
            end_time=hold.end_time,
        )
    return "expired"
