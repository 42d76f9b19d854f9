"""The cancellation saga (docs/runbooks/bookings-payments-notifications.md): mark, refund,
complete, or stop for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from bookings.errors import (
    BookingInvalidPayload,
    BookingNotCancellable,
    BookingNotFound,
    CancellationFailed,
    CancellationWindowClosed,
)
from bookings.events import booking_event
from bookings.models import Booking, BookingHold, RefundFailure
from bookings.services.events import _emit_booking_cancelled
from bookings.services.fulfilment import fulfilment_void
from opsconsole.evidence import audit
from opsconsole.models import OPERATE_PERMISSION
from opsconsole.monitoring.alerts import alert_raise
from payments.adapters import RefundProvider
from payments.models import Payment, Refund
from payments.refunds import refund_request

logger = structlog.get_logger(__name__)


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
    if booking.customer_id != actor.pk and not getattr(actor, "has_perm", lambda _: False)(
        OPERATE_PERMISSION
    ):
        raise BookingNotFound()
    return booking


def acts_as_staff(actor: AbstractBaseUser | str) -> bool:
    """Operators (and the platform itself) may cancel past the client's window, with a
    reason; everyone else reaching a booking is its customer."""
    return isinstance(actor, str) or bool(
        getattr(actor, "has_perm", lambda _: False)(OPERATE_PERMISSION)
    )


def client_cancel_deadline(booking: Booking) -> datetime:
    return booking.start_time - timedelta(minutes=settings.BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES)


def _cancellation_refusal(booking: Booking, *, actor: AbstractBaseUser | str, reason: str) -> None:
    """The cancellation policy, checked under the booking's row lock (so a check-in racing
    the cancel is either seen here or refused after it). Raises when `actor` may not cancel
    `booking` now; a CANCELLING booking is a saga to resume, not a new decision."""
    label = audit.actor_label(actor)
    if acts_as_staff(actor):
        late = timezone.now() >= client_cancel_deadline(booking)
        if (booking.status == Booking.Status.CHECKED_IN or late) and not reason.strip():
            # Past what the customer may do themselves: staff say why, for the audit row.
            raise BookingInvalidPayload(
                "Cancelling a checked-in or started booking needs a reason.",
                details={"fields": {"reason": ["Required for a checked-in or late cancel."]}},
            )
        return
    if booking.status == Booking.Status.CANCELLING:
        # The customer may retry their own cancellation; one staff started (say, of a
        # checked-in booking, under review) is not theirs to push to a refund.
        if booking.cancelled_by != label:
            raise BookingNotCancellable(details={"status": booking.status})
        return
    if booking.status != Booking.Status.CONFIRMED:
        raise BookingNotCancellable(
            "Only a confirmed booking that is not checked in can be cancelled; ask staff.",
            details={"status": booking.status},
        )
    deadline = client_cancel_deadline(booking)
    if timezone.now() >= deadline:
        raise CancellationWindowClosed(
            details={"status": booking.status, "cancel_by": deadline.isoformat()}
        )


@dataclass(frozen=True)
class CancellationResult:
    booking: Booking
    refund_processed: bool
    already_cancelled: bool = False
    # Paid offline: the refund is owed to the customer, paid back by staff (no provider).
    refund_owed: bool = False


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
    """The cancellation saga: mark cancelling, refund, complete, notify the waitlist.

    A customer cancels a CONFIRMED booking until BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES before
    its start; later, or once checked in, only staff can, with a reason (409 otherwise,
    nothing changed).

    A failed step leaves the booking CANCELLING for manual review, raises an alert and
    answers 503; a failed refund also opens a RefundFailure (PENDING_MANUAL). Calling it
    again resumes the saga: the refund row and its provider key are reused, never doubled.
    """
    booking = _booking_mark_cancelling(booking_id=booking_id, actor=actor, reason=reason)
    if booking.status == Booking.Status.CANCELLED:
        return CancellationResult(booking=booking, refund_processed=False, already_cancelled=True)
    step = "process_refund"
    refund_owed = False
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
            refund_owed = refund.status == Refund.Status.OWED
            if refund.status not in (Refund.Status.COMPLETED, Refund.Status.OWED):
                _refund_failure_open(booking_id=booking.pk, refund=refund)
                raise SagaStepFailed(step, refund.last_error or "refund not completed")
            refund_processed = refund.status == Refund.Status.COMPLETED
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
    return CancellationResult(
        booking=booking, refund_processed=refund_processed, refund_owed=refund_owed
    )


@transaction.atomic
def _booking_mark_cancelling(*, booking_id: int, actor: AbstractBaseUser, reason: str) -> Booking:
    booking = booking_get_for(booking_id=booking_id, actor=actor, for_update=True)
    if booking.status == Booking.Status.CANCELLED:
        return booking
    if booking.status not in Booking.CANCELLABLE:
        raise BookingNotCancellable(details={"status": booking.status})
    _cancellation_refusal(booking, actor=actor, reason=reason)
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
    fulfilment_void(booking, actor=actor)
    audit.record(
        "booking.cancelled",
        obj=booking,
        before=before,
        after=booking.state(),
        actor=actor,
        reason=booking.cancellation_reason,
    )
    booking_event(booking, "booking.cancelled")
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
        fulfilment_void(booking, actor=actor)
    elif resolution == "restore":
        booking.restore()
    else:
        raise ValueError(f"unknown resolution {resolution!r}")
    booking.save()
    for failure in RefundFailure.objects.select_for_update().filter(
        booking=booking, status=RefundFailure.Status.PENDING_MANUAL
    ):
        failure.resolve(resolution=f"{resolution}: {reason}", resolved_by=audit.actor_label(actor))
        failure.save()
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
