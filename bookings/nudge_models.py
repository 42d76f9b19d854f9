"""The nudges' rows, sent by bookings/nudges.py: the loyalty nudges (a voucher about to
expire, a referral to thank) and the onboarding sequence (a customer who signed up and has
not booked), each sent once (docs/runbooks/incident-response.md). A nudge is owed when its
row exists; the unique (kind, subject) pair is what makes "once" hold however often the
planners run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable


class ContactPreference(models.Model):
    """A customer's say in the nudges we send: their consent and their timezone (quiet hours
    are read in it). No row: no consent, the console's timezone."""

    customer = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_preference"
    )
    nudges_allowed = models.BooleanField(default=False)
    timezone = models.CharField(max_length=64, default="Europe/Lisbon")
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"contact preference of {self.customer_id}"


class Referral(models.Model):
    """A customer who brought another; thanked once the referred customer's booking is paid."""

    referrer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referrals_made"
    )
    referred = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referred_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(referrer=models.F("referred")), name="referral_not_self"
            )
        ]

    def __str__(self) -> str:
        return f"referral of {self.referred_id} by {self.referrer_id}"


class Nudge(Leased, Retryable):
    class Kind(models.TextChoices):
        VOUCHER_EXPIRING = "voucher_expiring"
        REFERRAL_THANKS = "referral_thanks"
        ONBOARDING_1 = "onboarding_1"
        ONBOARDING_2 = "onboarding_2"
        ONBOARDING_3 = "onboarding_3"

    LOYALTY_KINDS = (Kind.VOUCHER_EXPIRING, Kind.REFERRAL_THANKS)
    ONBOARDING_KINDS = (Kind.ONBOARDING_1, Kind.ONBOARDING_2, Kind.ONBOARDING_3)

    class Status(models.TextChoices):
        PENDING = "PENDING"
        SENT = "SENT"
        # Not sent, on purpose: no consent, a suppressed address, no longer relevant.
        SKIPPED = "SKIPPED"
        # Retries spent: the failure inbox shows it.
        PARKED = "PARKED"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What the nudge is about: "voucher:12", "referral:3", "user:40".
    subject = models.CharField(max_length=64)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="nudges"
    )
    recipient = models.EmailField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    skip_reason = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    communication_log_id = models.BigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="nudge_once_per_subject"),
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "SENT", "SKIPPED", "PARKED"]),
                name="nudge_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status="PENDING"),
                name="nudge_due_idx",
            ),
            # /metrics: the parked ones by kind, and the last day's sends.
            models.Index(fields=["kind"], condition=Q(status="PARKED"), name="nudge_parked_idx"),
            models.Index(
                fields=["sent_at", "kind"], condition=Q(status="SENT"), name="nudge_sent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.status})"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempt_count,
            "skip_reason": self.skip_reason,
            "failure_code": self.failure_code,
        }
