from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PUSH = "push", "Push"


class CommunicationLog(models.Model):
    """One message sent (or tried) to a customer: which channel, which template, what came back.

    Written for every send, sandbox or real, so "did we tell the customer?" has one answer.
    """

    class Status(models.TextChoices):
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"  # the channel is switched off on purpose

    channel = models.CharField(max_length=16, choices=Channel.choices)
    template = models.CharField(max_length=200)
    recipient = models.CharField(max_length=320)
    status = models.CharField(max_length=16, choices=Status.choices)
    provider = models.CharField(max_length=50, help_text="sandbox, or the HTTP adapter's name")
    provider_message_id = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_detail = models.TextField(blank=True)
    # What the message was about, e.g. payments.hostedcheckoutsession / 42.
    subject_type = models.CharField(max_length=100)
    subject_id = models.CharField(max_length=64)
    triggered_by = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=200)
    context = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the retention job replaced this row's customer data with hashes (None: not yet).
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "communication_log"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["sent", "failed", "skipped"]),
                name="communication_log_status_valid",
            ),
        ]
        indexes = [
            # The customer case view finds a customer's rows by contact (recovery.cases).
            models.Index(Lower("recipient"), name="communication_recipient_idx"),
            # A subject's timeline: every message about one session, in time order.
            models.Index(
                fields=["subject_type", "subject_id", "id"], name="communication_subject_idx"
            ),
            # The retention job: rows not yet redacted, by id (see recovery/reports/retention.py).
            models.Index(
                fields=["id"],
                condition=Q(redacted_at__isnull=True),
                name="communication_unredacted_idx",
            ),
        ]

    def __str__(self) -> str:
        # No recipient: titles and breadcrumbs are seen by staff without personal data.
        return f"{self.channel}:{self.template} #{self.pk} ({self.status})"


def default_notification_max_attempts() -> int:
    return settings.NOTIFICATION_MAX_ATTEMPTS


class Notification(ConcurrentTransitionMixin, Leased, Retryable):
    """A message to send, retried on the recovery engine until sent or dead-lettered
    (docs/runbooks/bookings-payments-notifications.md)."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RETRYING = "RETRYING"
        SENT = "SENT"
        DEAD = "DEAD"  # attempts exhausted or a permanent error; kept for review
        SKIPPED = "SKIPPED"  # its channel is switched off on purpose; never sent, not an error

    SENDABLE = (Status.PENDING, Status.RETRYING)

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=320)
    template = models.CharField(max_length=200)
    context = models.JSONField(default=dict, blank=True)
    status = FSMField(max_length=16, choices=Status.choices, default=Status.PENDING, protected=True)
    attempt_count = models.PositiveIntegerField(default=0, db_column="attempts")
    max_attempts = models.PositiveIntegerField(default=default_notification_max_attempts)
    # Due as soon as it is queued.
    next_retry_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_error = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    # What the provider reported after sending (its tracking webhook): delivered, bounced,
    # complained; blank until it says.
    delivery_status = models.CharField(max_length=20, blank=True)
    delivery_status_at = models.DateTimeField(null=True, blank=True)
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "RETRYING", "SENT", "DEAD", "SKIPPED"]),
                name="notification_status_valid",
            )
        ]
        indexes = [
            # The customer case view finds a customer's rows by contact (recovery.cases).
            models.Index(Lower("recipient"), name="notification_recipient_idx"),
            # The sender's claim: status IN (PENDING, RETRYING) AND next_retry_at <= now().
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status__in=["PENDING", "RETRYING"]),
                name="notification_due_idx",
            ),
            # The email provider's tracking webhook finds the message by the provider's id.
            models.Index(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="notification_external_id_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.template} #{self.pk} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        return f"notification:{self.pk}"

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempt_count,
            "last_error": self.last_error,
            "next_retry_at": self.next_retry_at.isoformat() if self.next_retry_at else None,
        }

    def _attempted(self, error: str) -> None:
        self.attempt_count += 1
        self.last_error = error
        self.release_lease()

    @transition(field=status, source=SENDABLE, target=Status.SENT)
    def mark_sent(self, *, external_id: str) -> None:
        self._attempted("")
        self.external_id = external_id
        self.sent_at = timezone.now()
        self.next_retry_at = None

    @transition(field=status, source=SENDABLE, target=Status.RETRYING)
    def schedule_retry(self, *, error: str, next_retry_at: Any) -> None:
        self._attempted(error)
        self.next_retry_at = next_retry_at

    @transition(field=status, source=SENDABLE, target=Status.DEAD)
    def dead_letter(self, *, error: str) -> None:
        self._attempted(error)
        self.next_retry_at = None

    @transition(field=status, source=Status.DEAD, target=Status.PENDING)
    def requeue(self) -> None:
        self.attempt_count = 0
        self.next_retry_at = timezone.now()


class NotificationAttempt(models.Model):
    notification = models.ForeignKey(
        Notification, on_delete=models.PROTECT, related_name="attempt_log"
    )
    attempt_number = models.PositiveIntegerField()
    succeeded = models.BooleanField()
    error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)
    attempted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["notification", "id"]

    def __str__(self) -> str:
        return f"notification {self.notification_id} attempt {self.attempt_number}"


class PushToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_tokens"
    )
    token = models.CharField(max_length=500, unique=True)
    valid = models.BooleanField(default=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "valid"], name="push_token_user_valid_idx")]

    def __str__(self) -> str:
        return f"push token {self.pk} ({'valid' if self.valid else 'invalid'})"


class SuppressedRecipient(models.Model):
    """An address that must not be written to again: it bounced hard or complained. Messages
    for it are kept as SKIPPED, never sent (docs/runbooks/bookings-payments-notifications.md)."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=320)
    reason = models.CharField(max_length=30, help_text="bounced or complained")
    provider_event_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "recipient"], name="suppressed_once")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.recipient} ({self.reason})"


# Campaigns live in their own module; importing them here registers them with
# the app and keeps `from notifications.models import Campaign` working.
from notifications.models.campaigns import (  # noqa: E402
    Campaign,
    CampaignTarget,
    CampaignTargetImport,
)

__all__ = [
    "Campaign",
    "CampaignTarget",
    "CampaignTargetImport",
    "Channel",
    "CommunicationLog",
    "Notification",
    "NotificationAttempt",
    "PushToken",
    "SuppressedRecipient",
]
