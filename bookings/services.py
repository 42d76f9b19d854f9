"""Every write to holds and bookings (seed 003)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from bookings.errors import (
    BookingAlreadyPaid,
    BookingInvalidPayload,
    BookingNotCancellable,
    BookingNotFound,
    CancellationFailed,
    HoldExpired,
    HoldNotFound,
    ResourceNotFound,
    SlotUnavailable,
    TooManyActiveHolds,
)
from bookings.models import Booking, BookingHold, RefundFailure, Resource
from bookings.signals import booking_cancelled, booking_hold_expired
from notifications.services import notify_fail_open
from opsconsole import audit
from opsconsole.alerts import alert_raise
from opsconsole.models import OPERATE_PERMISSION
from opsconsole.transactions import retry_on_deadlock
from payments.adapters import RefundProvider
from payments.models import Payment, Refund
from payments.refunds import payment_record, refund_request

logger = structlog.get_logger(__name__)

EXCLUSION_VIOLATION = "23P01"
WORKER_ACTOR = "worker:booking_hold_expiry_worker"


def _emit_on_commit(signal: Signal, event: str, **payload: object) -> None:
    def send() -> None:
        logger.info(event, **{k: str(v) for k, v in payload.items()})
        for receiver, response in signal.send_robust(sender=Booking, **payload):
            if isinstance(response, Exception):
                logger.error(
                    "event_receiver_failed",
                    event=event,
                    receiver=str(receiver),
                    error=repr(response),
                )

    transaction.on_commit(send)


def _emit_booking_cancelled(booking: Booking) -> None:
    """The seed's `booking.cancelled`, after commit: the waitlist hears the slot is free."""
    _emit_on_commit(
        booking_cancelled,
        "booking.cancelled",
        booking_id=booking.pk,
        resource_id=booking.resource_id,
        start_time=booking.start_time,
        end_time=booking.end_time,
    )


def _is_exclusion_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    return (
        getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    ) == EXCLUSION_VIOLATION


# ---------------------------------------------------------------------------- holds


@retry_on_deadlock()
def booking_hold_create(
    *, resource_id: int, start_time: datetime, end_time: datetime, holder: AbstractBaseUser
) -> BookingHold:
    """Hold a slot for 5 minutes. The locked check answers 409 first; the exclusion
    constraint is the guarantee if anything ever gets past it."""
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
            )
        except IntegrityError as exc:
            if _is_exclusion_violation(exc):
                raise SlotUnavailable(details={"resource_id": resource_id}) from exc
            raise
        audit.record(
            "booking.hold.created",
            obj=hold,
            after=hold.state(),
            actor=holder,
            metadata={"resource_id": resource_id, "start_time": start_time.isoformat()},
        )
    return hold


# Advisory-lock namespace for "one client's holds are counted one request at a time".
HOLD_CAP_LOCK_NAMESPACE = 0x484F4C44  # "HOLD"


def _lock_and_check_hold(
    *, resource_id: int, holder_id: int, start_time: datetime, end_time: datetime, cap: int
) -> tuple[int, bool]:
    """Take the resource's row lock (holds for one resource are created one at a time) and
    the client's lock (racing requests cannot pass the cap together), then read, in one
    statement after both are held, how many holds the client has (counting stops at the cap)
    and whether the slot is taken. Two round trips on PostgreSQL; raises ResourceNotFound.

    Every hold takes its resource lock before its client lock, so no two requests wait on
    each other in a cycle."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        if not Resource.objects.select_for_update().filter(pk=resource_id, active=True).exists():
            raise ResourceNotFound()
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
            "SELECT pg_advisory_xact_lock(%s, (%s %% 2147483647)::int4) "
            "FROM bookings_resource WHERE id = %s AND active FOR UPDATE",
            [HOLD_CAP_LOCK_NAMESPACE, holder_id, resource_id],
        )
        if cursor.fetchone() is None:
            raise ResourceNotFound()
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
        if customer.email:
            # Fails open: queued in a savepoint; the worker sends and retries it later.
            notify_fail_open(
                channel="email",
                to=customer.email,
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


# ---------------------------------------------------------------------------- cancellation


def booking_get_for(
    *, booking_id: int, actor: AbstractBaseUser | str, for_update: bool = False
) -> Booking:
    """The booking's customer or an operator; anyone else gets the same 404 as a missing one.

    A string actor is the platform itself (a worker, or a bulk action that operators
    approved): only code passes one, never a request, so it may act on any booking."""
    queryset = Booking.objects.select_for_update() if for_update else Booking.objects
    booking = queryset.filter(pk=booking_id).first()
    if booking is None:
        raise BookingNotFound()
    if isinstance(actor, str):
        return booking
    if booking.customer_id != actor.pk and not actor.has_perm(OPERATE_PERMISSION):
        raise BookingNotFound()
    return booking


@transaction.atomic
def booking_attach_payment(*, booking_id: int, payment_id: int, actor: audit.Actor) -> Booking:
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    booking.payment_id = payment_id
    booking.payment_status = Booking.PaymentStatus.PAID
    booking.save(update_fields=["payment_id", "payment_status", "updated_at"])
    audit.record(
        "booking.payment_attached", obj=booking, after={"payment_id": payment_id}, actor=actor
    )
    return booking


@dataclass(frozen=True)
class CancellationResult:
    booking: Booking
    refund_processed: bool
    already_cancelled: bool = False


class SagaStepFailed(Exception):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


def booking_cancel(
    *,
    booking_id: int,
    actor: AbstractBaseUser,
    reason: str,
    refund_provider: RefundProvider | None = None,
) -> CancellationResult:
    """Seed 003's cancellation saga: mark cancelling, refund, complete, notify the waitlist.

    A failed step leaves the booking CANCELLING for manual review, raises an alert and
    answers 503; a failed refund also opens a RefundFailure (PENDING_MANUAL). Calling it
    again resumes the saga: the refund row and its provider key are reused, never doubled.
    """
    booking = _booking_mark_cancelling(booking_id=booking_id, actor=actor, reason=reason)
    if booking.status == Booking.Status.CANCELLED:
        return CancellationResult(booking=booking, refund_processed=False, already_cancelled=True)
    step = "process_refund"
    try:
        refund_processed = False
        if booking.payment_id:
            payment = Payment.objects.get(pk=booking.payment_id)
            refund = refund_request(
                payment_id=payment.pk,
                amount=payment.amount,
                reason=f"booking {booking.pk} cancelled: {reason}",
                actor=actor,
                provider=refund_provider,
            )
            if refund.status != Refund.Status.COMPLETED:
                _refund_failure_open(booking_id=booking.pk, refund=refund)
                raise SagaStepFailed(step, refund.last_error or "refund not completed")
            refund_processed = True
        step = "complete_cancellation"
        booking = _booking_complete_cancellation(
            booking_id=booking.pk, actor=actor, refund_processed=refund_processed
        )
    except Exception as exc:
        logger.exception("booking_cancellation_failed", booking_id=booking.pk, step=step)
        _booking_cancellation_stuck(booking_id=booking.pk, step=step, error=str(exc), actor=actor)
        raise CancellationFailed(
            details={"booking_id": booking.pk, "status": "CANCELLING", "failed_step": step}
        ) from exc
    return CancellationResult(booking=booking, refund_processed=refund_processed)


@transaction.atomic
def _booking_mark_cancelling(*, booking_id: int, actor: AbstractBaseUser, reason: str) -> Booking:
    booking = booking_get_for(booking_id=booking_id, actor=actor, for_update=True)
    if booking.status == Booking.Status.CANCELLED:
        return booking
    if booking.status not in Booking.CANCELLABLE:
        raise BookingNotCancellable(details={"status": booking.status})
    before = booking.state()
    booking.start_cancelling(reason=reason, actor_name=audit.actor_label(actor))
    booking.save()
    audit.record(
        "booking.cancelling",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        reason=reason,
    )
    return booking


@transaction.atomic
def _refund_failure_open(*, booking_id: int, refund: Refund) -> None:
    """The compensation: a manual task for the refund, one open per booking."""
    if RefundFailure.objects.filter(
        booking_id=booking_id, status=RefundFailure.Status.PENDING_MANUAL
    ).exists():
        return
    failure = RefundFailure.objects.create(
        booking_id=booking_id, refund_id=refund.pk, error=refund.last_error or "refund failed"
    )
    audit.record(
        "booking.refund_failure.opened",
        obj=failure,
        after={"status": failure.status, "refund_id": refund.pk, "error": failure.error},
    )


@transaction.atomic
def _booking_complete_cancellation(
    *, booking_id: int, actor: audit.Actor, refund_processed: bool = False
) -> Booking:
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    if booking.status == Booking.Status.CANCELLED:
        return booking  # a concurrent cancel of the same booking finished first
    before = booking.state()
    booking.complete_cancellation()
    if refund_processed:
        booking.payment_status = Booking.PaymentStatus.REFUNDED
    booking.save()
    BookingHold.objects.filter(pk=booking.hold_id).update(occupies_slot=False)
    audit.record(
        "booking.cancelled",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        reason=booking.cancellation_reason,
    )
    _emit_booking_cancelled(booking)
    return booking


@transaction.atomic
def _booking_cancellation_stuck(
    *, booking_id: int, step: str, error: str, actor: audit.Actor
) -> None:
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    if booking.status != Booking.Status.CANCELLING:
        return
    before = booking.state()
    booking.cancellation_step = step
    booking.cancellation_error = error[:2000]
    booking.save()
    audit.record(
        "booking.cancellation_failed",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        metadata={"failed_step": step},
    )
    alert_raise(
        kind="cancellation-failed",
        severity="critical",
        obj=booking,
        message=f"Booking {booking.pk} is stuck in CANCELLING at step {step}: {error[:200]}",
        details={"failed_step": step},
    )


@transaction.atomic
def booking_cancellation_resolve(
    *, booking_id: int, resolution: str, actor: audit.Actor, reason: str
) -> Booking:
    """Manual review of a stuck cancellation: `complete` it or `restore` the booking."""
    booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
    if booking is None:
        raise BookingNotFound()
    if booking.status != Booking.Status.CANCELLING:
        raise BookingNotCancellable(
            "Only bookings stuck in CANCELLING can be resolved.", details={"status": booking.status}
        )
    before = booking.state()
    if resolution == "complete":
        booking.complete_cancellation()
        BookingHold.objects.filter(pk=booking.hold_id).update(occupies_slot=False)
    elif resolution == "restore":
        booking.restore()
    else:
        raise ValueError(f"unknown resolution {resolution!r}")
    booking.save()
    RefundFailure.objects.filter(
        booking=booking, status=RefundFailure.Status.PENDING_MANUAL
    ).update(
        status=RefundFailure.Status.RESOLVED,
        resolution=f"{resolution}: {reason}",
        resolved_by=audit.actor_label(actor),
        resolved_at=timezone.now(),
    )
    audit.record(
        "booking.cancellation_resolved",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        reason=reason,
        metadata={"resolution": resolution},
    )
    if resolution == "complete":
        _emit_booking_cancelled(booking)
    return booking


# ---------------------------------------------------------------------------- offline payments

OFFLINE_DUPLICATE_WINDOW = timedelta(minutes=5)


def _key_digest(actor: AbstractBaseUser, idempotency_key: str) -> str:
    # Keys are per caller, so the caller is part of the reference.
    raw = f"{getattr(actor, 'pk', actor)}:{idempotency_key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class OfflinePaymentResult:
    payment: Payment
    booking: Booking
    duplicate: bool


@retry_on_deadlock()
def booking_offline_payment_record(
    *,
    booking_id: int,
    amount: Decimal,
    method: str,
    actor: AbstractBaseUser,
    idempotency_key: str = "",
) -> OfflinePaymentResult:
    """Staff record cash or a transfer for a booking (seed 003). The booking's row lock
    serializes recordings; the same booking and amount within 5 minutes is the same payment;
    a booking already paid refuses another (409); the booking is marked PAID in the same
    transaction as the payment row.

    With an Idempotency-Key the payment's reference is derived from it, and references are
    unique: a retry that takes over a crashed request's key finds the payment the crashed
    request made, whenever it comes, and never makes a second one."""
    reference = (
        f"offline_{booking_id}_{_key_digest(actor, idempotency_key)}"
        if idempotency_key
        else f"offline_{booking_id}_{uuid.uuid4().hex[:12]}"
    )
    with transaction.atomic():
        booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
        if booking is None:
            raise BookingNotFound()
        subject = f"booking:{booking.pk}"
        existing = Payment.objects.filter(reference=reference).first() or (
            Payment.objects.filter(
                subject=subject,
                amount=amount,
                created_at__gt=timezone.now() - OFFLINE_DUPLICATE_WINDOW,
            )
            .order_by("-id")
            .first()
        )
        if existing is not None:
            return OfflinePaymentResult(payment=existing, booking=booking, duplicate=True)
        if booking.payment_status == Booking.PaymentStatus.PAID:
            raise BookingAlreadyPaid(
                details={"booking_id": booking.pk, "payment_id": booking.payment_id}
            )
        if booking.status not in Booking.LIVE or booking.status == Booking.Status.CANCELLING:
            raise BookingNotCancellable(
                "Only a confirmed or checked-in booking can be paid.",
                code="BKG-409-BOOKING-NOT-PAYABLE",
                details={"status": booking.status},
            )
        payment = payment_record(
            reference=reference,
            subject=subject,
            amount=amount,
            currency="EUR",
            method=method,
            actor=actor,
        )
        before = {"payment_status": booking.payment_status, "payment_id": booking.payment_id}
        booking.payment_status = Booking.PaymentStatus.PAID
        booking.payment_id = payment.pk
        booking.save(update_fields=["payment_status", "payment_id", "updated_at"])
        audit.record(
            "booking.paid",
            obj=booking,
            before=before,
            after={"payment_status": booking.payment_status, "payment_id": payment.pk},
            actor=actor,
            metadata={"method": method, "amount": str(amount)},
        )
    return OfflinePaymentResult(payment=payment, booking=booking, duplicate=False)


# ---------------------------------------------------------------------------- resources

RESOURCE_EDITABLE_FIELDS = ("name", "active")


def resource_check_fields(changes: dict[str, object]) -> None:
    problems = {
        n: "This field cannot be changed." for n in set(changes) - {*RESOURCE_EDITABLE_FIELDS}
    }
    if "name" in changes and not str(changes["name"] or "").strip():
        problems["name"] = "A name is required."
    if problems:
        raise BookingInvalidPayload("The resource is invalid.", details=problems)


def _resource_state(resource: Resource) -> dict[str, object]:
    return {"name": resource.name, "active": resource.active}


@transaction.atomic
def resource_create(*, name: str, active: bool = True, actor: audit.Actor, reason: str) -> Resource:
    resource_check_fields({"name": name, "active": active})
    resource = Resource.objects.create(name=name, active=active)
    audit.record(
        "booking.resource.created",
        obj=resource,
        after=_resource_state(resource),
        actor=actor,
        reason=reason,
    )
    return resource


@transaction.atomic
def resource_update(
    *, resource_id: int, changes: dict[str, object], actor: audit.Actor, reason: str
) -> Resource:
    """Rename or (de)activate a resource; holds already taken are not touched."""
    resource_check_fields(changes)
    resource = Resource.objects.select_for_update().filter(pk=resource_id).first()
    if resource is None:
        raise ResourceNotFound()
    before = _resource_state(resource)
    for name, value in changes.items():
        setattr(resource, name, value)
    resource.save(update_fields=list(changes))
    audit.record(
        "booking.resource.updated",
        obj=resource,
        before=before,
        after=_resource_state(resource),
        actor=actor,
        reason=reason,
    )
    return resource
