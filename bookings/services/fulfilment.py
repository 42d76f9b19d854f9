"""What a paid booking is owed, once: its entry code, its confirmation (an email with the
code) and its partner event `booking.fulfilled` (docs/runbooks/incident-response.md).

A booking becomes owed in the transaction that marks it PAID (`fulfilment_owe`); the
fulfillment processor then writes all three in one transaction with the booking's row
locked, so a crash leaves either nothing or everything, and the one row per booking means a
second processor finds it done. A failed attempt retries with backoff and parks with its
error once the budget is spent or when no retry can mend it."""

from __future__ import annotations

import secrets
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings.events import booking_event
from bookings.models import Booking, Fulfillment
from notifications.services import notification_enqueue
from opsconsole.evidence import audit
from opsconsole.failures.retry import RetryPolicy
from opsconsole.workers import wakes

logger = structlog.get_logger(__name__)

PROCESSOR = "fulfillment_processor"
PROCESSOR_ACTOR = PROCESSOR
# Letters and digits a guest reads out at the door without confusing any two.
ENTRY_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ENTRY_CODE_LENGTH = 8


class FulfilmentOutcome(StrEnum):
    FULFILLED = "fulfilled"
    RETRY_SCHEDULED = "retry_scheduled"
    PARKED = "parked"
    VOIDED = "voided"  # cancelled or unpaid before its turn
    ALREADY_DONE = "already_done"  # another processor got there, or the lease was lost


class FulfilmentProblem(Exception):
    """A failure of one attempt, with its code (the next attempt may succeed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


NO_ADDRESS = "no email address: give the entry code at the desk (Admin → Fulfillments)"


def fulfilment_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.FULFILLMENT_MAX_ATTEMPTS,
        base_seconds=settings.FULFILLMENT_BACKOFF_BASE_SECONDS,
        cap_seconds=3600,
        jitter="floor",
    )


def fulfilment_owe(booking: Booking) -> Fulfillment:
    """Inside the transaction that marks `booking` PAID: it is owed its fulfilment, now."""
    fulfillment, created = Fulfillment.objects.get_or_create(
        booking=booking, defaults={"next_retry_at": timezone.now()}
    )
    if created:
        transaction.on_commit(lambda: wakes.wake(PROCESSOR, "booking_paid"))
    return fulfillment


def _new_entry_code() -> str:
    return "".join(secrets.choice(ENTRY_CODE_ALPHABET) for _ in range(ENTRY_CODE_LENGTH))


def fulfilment_process(*, fulfillment_id: int, lease_owner: str) -> FulfilmentOutcome:
    """The processor's step for one claimed row."""
    with transaction.atomic():
        fulfillment = (
            Fulfillment.objects.select_for_update()
            .filter(pk=fulfillment_id, lease_owner=lease_owner, status=Fulfillment.Status.PENDING)
            .first()
        )
        if fulfillment is None:
            return FulfilmentOutcome.ALREADY_DONE
        booking = (
            Booking.objects.select_for_update()
            .select_related("customer")
            .get(pk=fulfillment.booking_id)
        )
        before = fulfillment.state()
        if booking.status in (Booking.Status.CANCELLING, Booking.Status.CANCELLED) or (
            booking.payment_status != Booking.PaymentStatus.PAID
        ):
            fulfillment.status = Fulfillment.Status.VOIDED
            fulfillment.last_error = f"booking is {booking.status}, {booking.payment_status}"
            fulfillment.next_retry_at = None
            fulfillment.release_lease()
            fulfillment.save()
            audit.record(
                "booking.fulfillment.voided",
                obj=fulfillment,
                before=before,
                after=fulfillment.state(),
                actor=PROCESSOR_ACTOR,
                metadata={"booking_id": booking.pk, "why": fulfillment.last_error},
            )
            return FulfilmentOutcome.VOIDED
        try:
            with transaction.atomic():  # a savepoint: a failure undoes only this attempt
                _fulfil(fulfillment, booking)
        except Exception as exc:
            return _record_failure(fulfillment, booking, exc, before=before)
        audit.record(
            "booking.fulfilled",
            obj=fulfillment,
            before=before,
            after=fulfillment.state(),
            actor=PROCESSOR_ACTOR,
            metadata={"booking_id": booking.pk},
        )
        return FulfilmentOutcome.FULFILLED


def _fulfil(fulfillment: Fulfillment, booking: Booking) -> None:
    for _ in range(5):  # a clash of two random codes is rare; the unique index decides
        code = _new_entry_code()
        if not Fulfillment.objects.filter(entry_code=code).exists():
            break
    email = getattr(booking.customer, "email", "")
    # A customer with no address (a walk-in paid at the desk) is still fulfilled: the desk
    # reads the code from the fulfilment's page; no retry would find an address.
    notification = (
        notification_enqueue(
            channel="email",
            to=email,
            template="booking_fulfilled",
            context={
                "booking_id": booking.pk,
                "start_time": booking.start_time.isoformat(),
                "entry_code": code,
            },
            subject_type="bookings.booking",
            subject_id=booking.pk,
        )
        if email
        else None
    )
    booking_event(booking, "booking.fulfilled")
    fulfillment.status = Fulfillment.Status.FULFILLED
    fulfillment.entry_code = code
    fulfillment.notification_id = notification.pk if notification else None
    fulfillment.confirmation_note = "" if notification else NO_ADDRESS
    fulfillment.fulfilled_at = timezone.now()
    fulfillment.attempt_count += 1
    fulfillment.next_retry_at = None
    fulfillment.failure_code = ""
    fulfillment.last_error = ""
    fulfillment.release_lease()
    try:
        fulfillment.save()
    except IntegrityError as exc:  # the code was taken in between: this attempt retries
        raise FulfilmentProblem("ENTRY_CODE_CLASH", "the entry code was taken") from exc


def _record_failure(
    fulfillment: Fulfillment, booking: Booking, exc: Exception, *, before: dict[str, object]
) -> FulfilmentOutcome:
    fulfillment.refresh_from_db()
    parked = fulfillment.count_failed_attempt(fulfilment_retry_policy())
    fulfillment.failure_code = (
        exc.code if isinstance(exc, FulfilmentProblem) else type(exc).__name__
    )
    fulfillment.last_error = str(exc)[:2000]
    fulfillment.status = Fulfillment.Status.PARKED if parked else Fulfillment.Status.PENDING
    fulfillment.release_lease()
    fulfillment.save()
    audit.record(
        "booking.fulfillment.parked" if parked else "booking.fulfillment.retry_scheduled",
        obj=fulfillment,
        before=before,
        after=fulfillment.state(),
        actor=PROCESSOR_ACTOR,
        metadata={"booking_id": booking.pk, "error": fulfillment.last_error[:500]},
    )
    logger.warning(
        "fulfillment_failed",
        booking_id=booking.pk,
        attempts=fulfillment.attempt_count,
        parked=parked,
        failure_code=fulfillment.failure_code,
    )
    return FulfilmentOutcome.PARKED if parked else FulfilmentOutcome.RETRY_SCHEDULED


@transaction.atomic
def fulfilment_retry(*, fulfillment_id: int, actor: audit.Actor, reason: str) -> Fulfillment:
    """An operator sends a parked fulfilment round again (the failure inbox's replay): due
    now, with a fresh retry budget."""
    fulfillment = Fulfillment.objects.select_for_update().get(pk=fulfillment_id)
    if fulfillment.status != Fulfillment.Status.PARKED:
        return fulfillment
    before = fulfillment.state()
    fulfillment.status = Fulfillment.Status.PENDING
    fulfillment.attempt_count = 0
    fulfillment.next_retry_at = timezone.now()
    fulfillment.save()
    audit.record(
        "booking.fulfillment.requeued",
        obj=fulfillment,
        before=before,
        after=fulfillment.state(),
        actor=actor,
        reason=reason,
    )
    return fulfillment


def fulfilment_void(booking: Booking, *, actor: audit.Actor) -> None:
    """Inside the transaction that cancels `booking`: its fulfilment is void, so its entry
    code no longer stands for a booking (a door system learns it from `booking.cancelled`),
    and one not done yet is never done."""
    fulfillment = (
        Fulfillment.objects.select_for_update()
        .filter(booking=booking)
        .exclude(status=Fulfillment.Status.VOIDED)
        .first()
    )
    if fulfillment is None:
        return
    before = fulfillment.state()
    fulfillment.status = Fulfillment.Status.VOIDED
    fulfillment.next_retry_at = None
    fulfillment.confirmation_note = "booking cancelled: the entry code no longer admits anyone"
    fulfillment.release_lease()
    fulfillment.save()
    audit.record(
        "booking.fulfillment.voided",
        obj=fulfillment,
        before=before,
        after=fulfillment.state(),
        actor=actor,
        metadata={"booking_id": booking.pk, "why": "booking cancelled"},
    )
