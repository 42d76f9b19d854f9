"""Hosted checkout sessions, payments, refunds and the Stripe events that move them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable


def default_hosted_session_max_retries() -> int:
    return settings.HOSTED_RECOVERY_MAX_ATTEMPTS


class HostedCheckoutSession(ConcurrentTransitionMixin, Leased, Retryable):
    """A hosted checkout link sent to a customer, and the automation that recovers it
    (docs/runbooks/hosted-session-recovery.md).

    `version` is the optimistic lock: every write bumps it, and the recovery scheduler claims a
    session only with `UPDATE ... WHERE version = <the version it read>`.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        EXPIRED = "expired"
        FAILED = "failed"
        COMPLETED = "completed"
        ABANDONED = "abandoned"
        CANCELLED = "cancelled"

    # Sessions the recovery scheduler may pick up once next_retry_at has passed.
    RECOVERABLE = (Status.PENDING, Status.EXPIRED, Status.FAILED)
    # Sessions an operator may regenerate a checkout link for.
    REGENERABLE = (Status.PENDING, Status.EXPIRED, Status.FAILED, Status.ABANDONED)

    reference = models.CharField(max_length=100, unique=True)
    provider_session_id = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(blank=True)
    customer_phone = models.CharField(max_length=32, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = FSMField(max_length=16, choices=Status.choices, default=Status.PENDING, protected=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0, db_column="retry_count")
    max_retries = models.PositiveIntegerField(default=default_hosted_session_max_retries)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # Attempts since the customer last heard from us; > 3 is the runbook's "stalled".
    attempts_since_notification = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # recovery_attempts, automation.{last_attempt, override_next_retry_at, overrides},
    # triggered_by, triggered_at, trigger_notified: the decision trail the timeline replays.
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "expired",
                        "failed",
                        "completed",
                        "abandoned",
                        "cancelled",
                    ]
                ),
                name="hosted_session_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(attempt_count__lte=models.F("max_retries")),
                name="hosted_session_retries_within_max",
            ),
        ]
        indexes = [
            # The customer case view finds a customer's rows by contact (recovery.cases).
            models.Index(Lower("customer_email"), name="hosted_session_email_idx"),
            models.Index(fields=["customer_phone"], name="hosted_session_phone_idx"),
            models.Index(fields=["provider_session_id"], name="hosted_session_provider_idx"),
            # schedule_hosted_session_recovery: status IN (recoverable) AND next_retry_at <= now()
            # ORDER BY next_retry_at, id: the index is in claim order, so nothing is sorted.
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status__in=["pending", "expired", "failed"]),
                name="hosted_session_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.status})"

    @property
    def automation_metadata(self) -> dict[str, Any]:
        return self.metadata.get("automation") or {}

    @property
    def override_next_retry_at(self) -> str | None:
        return self.automation_metadata.get("override_next_retry_at")

    @property
    def next_notification_allowed_at(self) -> datetime | None:
        """When the customer may next hear from the automation (the cadence from the last
        message); None: now, nothing has been sent yet."""
        if self.last_notified_at is None:
            return None
        return self.last_notified_at + timedelta(
            minutes=settings.HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES
        )

    @property
    def stalled(self) -> bool:
        return self.status in self.RECOVERABLE and self.attempts_since_notification > 3

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "retry_count": self.attempt_count,
            "max_retries": self.max_retries,
            "next_retry_at": self.next_retry_at.isoformat() if self.next_retry_at else None,
            "last_notified_at": self.last_notified_at.isoformat()
            if self.last_notified_at
            else None,
            "override_next_retry_at": self.override_next_retry_at,
            "checkout_url": self.checkout_url,
            "version": self.version,
        }

    @transition(field=status, source=REGENERABLE, target=Status.PENDING)
    def regenerate(self, *, checkout_url: str, expires_at: Any, provider_session_id: str) -> None:
        self.checkout_url = checkout_url
        self.expires_at = expires_at
        self.provider_session_id = provider_session_id

    @transition(field=status, source=Status.PENDING, target=Status.EXPIRED)
    def expire(self) -> None:
        pass

    @transition(field=status, source=Status.PENDING, target=Status.FAILED)
    def fail(self, *, error: str) -> None:
        self.last_error = error

    @transition(field=status, source=REGENERABLE, target=Status.COMPLETED)
    def complete(self) -> None:
        self.completed_at = timezone.now()
        self.next_retry_at = None

    @transition(field=status, source=RECOVERABLE, target=Status.ABANDONED)
    def abandon(self) -> None:
        self.next_retry_at = None

    @transition(field=status, source=REGENERABLE, target=Status.CANCELLED)
    def cancel(self) -> None:
        self.next_retry_at = None


class Payment(FSMModelMixin, models.Model):
    """Money received for something: a booking paid by card or recorded offline."""

    class Method(models.TextChoices):
        CARD = "card"  # online, through the payment provider
        CASH = "cash"
        BANK_TRANSFER = "bank_transfer"
        CARD_TERMINAL = "card_terminal"

    OFFLINE_METHODS = (Method.CASH, Method.BANK_TRANSFER, Method.CARD_TERMINAL)

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"  # a card payment the provider confirmed
        RECORDED = "recorded"  # taken offline, recorded by staff
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"

    reference = models.CharField(max_length=100, unique=True)
    # What was paid for, e.g. booking:42 (payments does not import the apps that use it).
    subject = models.CharField(max_length=100, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    method = models.CharField(max_length=16, choices=Method.choices)
    provider_payment_id = models.CharField(max_length=200, blank=True)
    status = FSMField(
        max_length=20, choices=Status.choices, default=Status.SUCCEEDED, protected=True
    )
    # What the provider says was refunded so far (a partial refund leaves the rest paid).
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # Why a payment that arrived could not be applied to what it paid for (the booking was
    # already paid or cancelled): kept, and in the failure inbox for a refund decision.
    unapplied_reason = models.CharField(max_length=300, blank=True)
    recorded_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The offline duplicate check: one subject, same amount, last 5 minutes.
            models.Index(fields=["subject", "amount", "-created_at"], name="payment_duplicate_idx"),
            # Stripe's webhooks find the payment by its intent; the inbox lists the few
            # payments that could not be applied. Neither may read the whole table.
            models.Index(
                fields=["provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payment_provider_id_idx",
            ),
            models.Index(
                fields=["id"],
                condition=Q(status="succeeded") & ~Q(unapplied_reason=""),
                name="payment_unapplied_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.status})"

    @transition(
        field=status,
        source=[Status.SUCCEEDED, Status.RECORDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED],
        target=RETURN_VALUE(Status.PARTIALLY_REFUNDED, Status.REFUNDED),
    )
    def record_refunded(self, *, amount_refunded: Decimal) -> str:
        """The total refunded so far (the provider's figure, or a settled refund's amount):
        all of it refunds the payment, less leaves the rest paid."""
        self.amount_refunded = amount_refunded
        if amount_refunded >= self.amount:
            return self.Status.REFUNDED
        return self.Status.PARTIALLY_REFUNDED


def default_refund_max_attempts() -> int:
    return settings.REFUND_MAX_ATTEMPTS


class Refund(ConcurrentTransitionMixin, Leased, Retryable):
    """A refund of a payment (docs/runbooks/bookings-payments-notifications.md): PENDING first,
    then the provider, then the outcome.

    The provider call carries `refund:<id>` as its idempotency key, so a retry after a crash
    cannot refund twice; the partial unique index below refuses a second live refund.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        # A payment taken offline (cash, transfer, terminal) is paid back offline: the refund
        # is owed until staff record who paid it out, how and when. Never sent to Stripe.
        OWED = "OWED"

    class PayoutMethod(models.TextChoices):
        CASH = "cash"
        BANK_TRANSFER = "bank_transfer"
        CARD_TERMINAL = "card_terminal"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.TextField(blank=True)
    status = FSMField(max_length=16, choices=Status.choices, default=Status.PENDING, protected=True)
    attempt_count = models.PositiveIntegerField(default=0, db_column="attempts")
    max_attempts = models.PositiveIntegerField(default=default_refund_max_attempts)
    last_error = models.TextField(blank=True)
    provider_refund_id = models.CharField(max_length=200, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # An offline refund's settlement: who paid it out, how, when, and their reference.
    payout_method = models.CharField(max_length=16, choices=PayoutMethod.choices, blank=True)
    payout_reference = models.CharField(max_length=200, blank=True)
    paid_out_at = models.DateTimeField(null=True, blank=True)
    paid_out_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "COMPLETED", "FAILED", "OWED"]),
                name="refund_status_valid",
            ),
            # A settled offline refund says how and when it was paid out.
            models.CheckConstraint(
                condition=Q(paid_out_by="") | (~Q(payout_method="") & Q(paid_out_at__isnull=False)),
                name="refund_payout_complete",
            ),
            # One refund row per payment, whatever its state: a retried or concurrent refund
            # request finds this row instead of creating a second refund for the transaction.
            models.UniqueConstraint(fields=["payment"], name="refund_one_per_payment"),
        ]
        indexes = [
            # refund.updated finds the refund by Stripe's id; the inbox lists the owed ones.
            models.Index(
                fields=["provider_refund_id"],
                condition=~Q(provider_refund_id=""),
                name="refund_provider_id_idx",
            ),
            models.Index(fields=["id"], condition=Q(status="OWED"), name="refund_owed_idx"),
        ]

    def __str__(self) -> str:
        return f"refund:{self.pk} {self.amount} ({self.status})"

    @property
    def provider_idempotency_key(self) -> str:
        return f"refund:{self.pk}"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempt_count,
            "last_error": self.last_error,
            "next_retry_at": self.next_retry_at.isoformat() if self.next_retry_at else None,
            "provider_refund_id": self.provider_refund_id,
            "payout_method": self.payout_method,
            "payout_reference": self.payout_reference,
            "paid_out_at": self.paid_out_at.isoformat() if self.paid_out_at else None,
            "paid_out_by": self.paid_out_by,
        }

    @transition(field=status, source=Status.OWED, target=Status.COMPLETED)
    def settle_offline(
        self, *, payout_method: str, payout_reference: str, paid_out_at: Any, paid_out_by: str
    ) -> None:
        self.payout_method = payout_method
        self.payout_reference = payout_reference
        self.paid_out_at = paid_out_at
        self.paid_out_by = paid_out_by
        self.completed_at = timezone.now()

    @transition(field=status, source=[Status.PENDING, Status.FAILED], target=Status.COMPLETED)
    def complete(self, *, provider_refund_id: str) -> None:
        self.attempt_count += 1
        self.provider_refund_id = provider_refund_id
        self.completed_at = timezone.now()
        self.last_error = ""
        self.next_retry_at = None

    @transition(field=status, source=[Status.PENDING, Status.FAILED], target=Status.FAILED)
    def fail(self, *, error: str, next_retry_at: Any) -> None:
        self.attempt_count += 1
        self.last_error = error
        self.next_retry_at = next_retry_at
