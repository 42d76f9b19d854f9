from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable


class Resource(models.Model):
    """Something that can be booked: a court, a room, a desk. Its price, whether it is open
    and how far ahead it can be booked change by hand or on schedule (CatalogChange)."""

    name = models.CharField(max_length=200, unique=True)
    # False: closed (for maintenance, or for good); new holds are refused.
    active = models.BooleanField(default=True)
    # The price of one slot, in EUR (None: not sold on its own, e.g. only in a bundle).
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # Slots are open for booking up to this moment (None: no limit).
    bookable_until = models.DateTimeField(null=True, blank=True)
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


class Fulfillment(Leased, Retryable):
    """What a paid booking is owed once: its entry code, its confirmation and its partner
    event (`booking.fulfilled`), written in one transaction by the fulfillment processor
    (docs/runbooks/incident-response.md). One row per booking, so nothing is fulfilled twice."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        FULFILLED = "FULFILLED"
        # Retries spent, or a failure no retry mends: an operator looks (the failure inbox).
        PARKED = "PARKED"
        # The booking was cancelled or is no longer paid before its turn came.
        VOIDED = "VOIDED"

    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, related_name="fulfillment")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Shown at the door; unique among fulfilled bookings.
    entry_code = models.CharField(max_length=16, blank=True)
    notification_id = models.BigIntegerField(null=True, blank=True)
    # Why no confirmation was sent (a walk-in with no email address gets the code at the desk).
    confirmation_note = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "FULFILLED", "PARKED", "VOIDED"]),
                name="fulfillment_status_valid",
            ),
            models.UniqueConstraint(
                fields=["entry_code"],
                condition=~Q(entry_code=""),
                name="fulfillment_entry_code_unique",
            ),
            models.CheckConstraint(
                condition=~Q(status="FULFILLED") | ~Q(entry_code=""),
                name="fulfillment_fulfilled_has_code",
            ),
        ]
        indexes = [
            # The processor's claim: status = PENDING AND next_retry_at <= now().
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status="PENDING"),
                name="fulfillment_due_idx",
            ),
            models.Index(
                fields=["-updated_at"], condition=Q(status="PARKED"), name="fulfillment_parked_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"fulfillment of booking {self.booking_id} ({self.status})"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempt_count,
            "failure_code": self.failure_code,
            "notification_id": self.notification_id,
        }


class CatalogChange(Leased, Retryable):
    """A change to a resource that applies at its time (docs/runbooks/incident-response.md):
    the catalog scheduler applies each once, in order per resource; one that fails holds
    back the later changes of its resource until it applies or an operator cancels it."""

    class Kind(models.TextChoices):
        OPEN_SLOTS = "open_slots", "Open slots up to a date"
        PRICE_CHANGE = "price_change", "Change the price"
        CLOSE = "close", "Close (maintenance)"
        REOPEN = "reopen", "Reopen"

    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED"
        # Paused by an operator: not applied, and holding back its resource's later changes.
        PAUSED = "PAUSED"
        APPLIED = "APPLIED"
        # Tried and failed; retried with backoff while it is FAILING.
        FAILING = "FAILING"
        PARKED = "PARKED"
        CANCELLED = "CANCELLED"

    # Changes still to apply: they hold back their resource's later ones.
    OPEN = (Status.SCHEDULED, Status.PAUSED, Status.FAILING, Status.PARKED)

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="changes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # open_slots: the new bookable_until; price_change: the new price.
    bookable_until = models.DateTimeField(null=True, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    apply_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    failure_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    scheduled_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["apply_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["SCHEDULED", "PAUSED", "APPLIED", "FAILING", "PARKED", "CANCELLED"]
                ),
                name="catalog_change_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["open_slots", "price_change", "close", "reopen"]),
                name="catalog_change_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(kind="open_slots") | Q(bookable_until__isnull=False),
                name="catalog_change_open_slots_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(kind="price_change") | Q(price__gt=0),
                name="catalog_change_price_positive",
            ),
        ]
        indexes = [
            # The scheduler's claim: due rows by their time.
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status__in=["SCHEDULED", "FAILING"]),
                name="catalog_change_due_idx",
            ),
            # What holds a change back: its resource's earlier open changes.
            models.Index(
                fields=["resource", "apply_at", "id"],
                condition=Q(status__in=["SCHEDULED", "PAUSED", "FAILING", "PARKED"]),
                name="catalog_change_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.resource} at {self.apply_at:%Y-%m-%d %H:%M}"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kind": self.kind,
            "apply_at": self.apply_at.isoformat(),
            "attempts": self.attempt_count,
            "failure_code": self.failure_code,
        }


class Bundle(Leased):
    """Resources sold together at one price. The bundle guardrail worker checks it against
    its parts on a schedule; a part closed or repriced since the bundle was priced stops it
    selling until an operator fixes or overrides it (docs/runbooks/incident-response.md)."""

    class Status(models.TextChoices):
        SELLING = "SELLING"
        STOPPED = "STOPPED"

    name = models.CharField(max_length=200, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SELLING)
    # Why it stopped (the guardrail's finding), kept until it sells again.
    stop_code = models.CharField(max_length=64, blank=True)
    stop_reason = models.TextField(blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # An operator's override: sells despite the finding, until its parts change again.
    override_reason = models.TextField(blank=True)
    overridden_by = models.CharField(max_length=150, blank=True)
    override_fingerprint = models.CharField(max_length=64, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["SELLING", "STOPPED"]), name="bundle_status_valid"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="bundle_price_positive"),
        ]
        indexes = [models.Index(fields=["next_check_at", "id"], name="bundle_due_idx")]

    def __str__(self) -> str:
        return self.name

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stop_code": self.stop_code,
            "stop_reason": self.stop_reason,
            "override_reason": self.override_reason,
        }


class BundlePart(models.Model):
    """A resource in a bundle, with the price it had when the bundle was priced."""

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="parts")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="bundle_parts")
    priced_at = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "resource"], name="bundle_part_unique")
        ]

    def __str__(self) -> str:
        return f"{self.resource} in {self.bundle}"


# The nudges' rows (their planning and sending: bookings/nudges.py).
from bookings.nudge_models import ContactPreference, Nudge, Referral  # noqa: E402

__all__ = [
    "Booking",
    "BookingHold",
    "Bundle",
    "BundlePart",
    "CatalogChange",
    "ContactPreference",
    "Fulfillment",
    "Nudge",
    "Referral",
    "RefundFailure",
    "Resource",
    "WaitlistEntry",
]
