from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from opsconsole.db.leases import Leased


class Resource(models.Model):
    """Something that can be booked: a court, a room, a desk."""

    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BookingHold(ConcurrentTransitionMixin, Leased):
    """A slot held for a customer for 5 minutes while they pay
    (docs/runbooks/bookings-payments-notifications.md).

    `occupies_slot` is what the exclusion constraint (migration 0002, PostgreSQL) looks at:
    true while the hold is ACTIVE and while the booking it became is live, so holds and
    bookings are kept apart by one constraint on one table.
    """

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        EXPIRED = "EXPIRED"
        CONFIRMED = "CONFIRMED"

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="holds")
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="booking_holds"
    )
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    status = FSMField(max_length=16, choices=Status.choices, default=Status.ACTIVE, protected=True)
    occupies_slot = models.BooleanField(default=True)
    expires_at = models.DateTimeField()
    # When the expiry worker looks at this hold next (expires_at, or later in the grace period).
    next_check_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Which of the client's BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT places this ACTIVE hold takes:
    # the unique pair below is the cap's guarantee, so a hold is created in one statement
    # without locking the client (None: holds from before, or whose expiry released it).
    cap_slot = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["holder", "cap_slot"],
                condition=Q(status="ACTIVE", cap_slot__isnull=False),
                name="booking_hold_one_per_cap_slot",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["ACTIVE", "EXPIRED", "CONFIRMED"]),
                name="booking_hold_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")), name="booking_hold_period_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="EXPIRED", occupies_slot=True),
                name="booking_hold_expired_frees_slot",
            ),
        ]
        indexes = [
            # The per-client cap: holder = %s AND status = ACTIVE (a client holds a few).
            models.Index(
                fields=["holder"],
                condition=Q(status="ACTIVE"),
                name="booking_hold_active_holder_idx",
            ),
            # The expiry worker: status = ACTIVE AND next_check_at <= now() ORDER BY next_check_at.
            models.Index(
                fields=["next_check_at", "id"],
                condition=Q(status="ACTIVE"),
                name="booking_hold_due_idx",
            ),
            # The overlap check: one resource's slot-occupying rows by time.
            models.Index(
                fields=["resource", "start_time", "end_time"],
                condition=Q(occupies_slot=True),
                name="booking_hold_occupying_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} {self.resource_id} {self.start_time:%Y-%m-%d %H:%M} ({self.status})"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "occupies_slot": self.occupies_slot,
            "expires_at": self.expires_at.isoformat(),
        }

    @transition(field=status, source=Status.ACTIVE, target=Status.EXPIRED)
    def expire(self) -> None:
        self.occupies_slot = False
        self.released_at = timezone.now()
        self.release_lease()

    @transition(field=status, source=Status.ACTIVE, target=Status.CONFIRMED)
    def confirm(self) -> None:
        self.release_lease()


class Booking(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "CONFIRMED"
        CHECKED_IN = "CHECKED_IN"
        CANCELLING = "CANCELLING"
        CANCELLED = "CANCELLED"

    # Bookings that keep their slot. CANCELLING keeps it too: a cancellation stuck for review
    # may be resolved by restoring the booking, and its slot must still be there.
    LIVE = (Status.CONFIRMED, Status.CHECKED_IN, Status.CANCELLING)
    CANCELLABLE = (Status.CONFIRMED, Status.CHECKED_IN, Status.CANCELLING)

    hold = models.OneToOneField(BookingHold, on_delete=models.PROTECT, related_name="booking")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="bookings")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings"
    )
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    status = FSMField(
        max_length=16, choices=Status.choices, default=Status.CONFIRMED, protected=True
    )

    class PaymentStatus(models.TextChoices):
        UNPAID = "UNPAID"
        PAID = "PAID"
        REFUNDED = "REFUNDED"

    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID
    )
    # Set when paid; the cancellation saga refunds it (payments.Payment, referenced by id).
    payment_id = models.BigIntegerField(null=True, blank=True)
    cancellation_step = models.CharField(max_length=50, blank=True)
    cancellation_error = models.TextField(blank=True)
    cancellation_reason = models.TextField(blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["CONFIRMED", "CHECKED_IN", "CANCELLING", "CANCELLED"]),
                name="booking_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="booking_status_idx"),
            models.Index(fields=["resource", "start_time"], name="booking_resource_start_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"booking {self.pk} {self.resource_id} {self.start_time:%Y-%m-%d %H:%M} ({self.status})"
        )

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cancellation_step": self.cancellation_step,
            "cancellation_error": self.cancellation_error,
        }

    @transition(field=status, source=Status.CONFIRMED, target=Status.CHECKED_IN)
    def check_in(self) -> None:
        pass

    @transition(field=status, source=CANCELLABLE, target=Status.CANCELLING)
    def start_cancelling(self, *, reason: str, actor_name: str) -> None:
        self.cancellation_reason = reason
        self.cancelled_by = actor_name
        self.cancellation_step = "mark_cancelling"
        self.cancellation_error = ""

    @transition(field=status, source=Status.CANCELLING, target=Status.CANCELLED)
    def complete_cancellation(self) -> None:
        self.cancellation_step = "completed"
        self.cancellation_error = ""
        self.cancelled_at = timezone.now()

    @transition(field=status, source=Status.CANCELLING, target=Status.CONFIRMED)
    def restore(self) -> None:
        self.cancellation_step = ""
        self.cancellation_error = ""


class RefundFailure(FSMModelMixin, models.Model):
    """The saga's compensation when a cancellation's refund fails: a task for a human."""

    class Status(models.TextChoices):
        PENDING_MANUAL = "PENDING_MANUAL"
        RESOLVED = "RESOLVED"

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="refund_failures")
    refund_id = models.BigIntegerField(null=True, blank=True)
    error = models.TextField()
    status = FSMField(
        max_length=16, choices=Status.choices, default=Status.PENDING_MANUAL, protected=True
    )
    resolution = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING_MANUAL", "RESOLVED"]),
                name="refund_failure_status_valid",
            ),
            # One open manual task per booking, however often the saga is retried.
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(status="PENDING_MANUAL"),
                name="refund_failure_one_open_per_booking",
            ),
        ]

    def __str__(self) -> str:
        return f"refund failure for booking {self.booking_id} ({self.status})"

    @transition(field=status, source=Status.PENDING_MANUAL, target=Status.RESOLVED)
    def resolve(self, *, resolution: str, resolved_by: str) -> None:
        self.resolution = resolution
        self.resolved_by = resolved_by
        self.resolved_at = timezone.now()


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "WAITING"
        NOTIFIED = "NOTIFIED"

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="waitlist")
    email = models.EmailField()
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "waitlist entries"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["resource", "start_time"],
                condition=Q(status="WAITING"),
                name="waitlist_waiting_idx",
            )
        ]

    def __str__(self) -> str:
        return f"waitlist #{self.pk} for {self.resource_id} ({self.status})"
