"""Stripe's webhook events, each processed once, and the critical ones kept for manual work."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

from opsconsole.db.retryable import Retryable


class StripeEvent(FSMModelMixin, models.Model):
    """Each Stripe event id, processed once however often and however concurrently it arrives."""

    class Status(models.TextChoices):
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100, db_index=True)
    status = FSMField(
        max_length=16, choices=Status.choices, default=Status.PROCESSING, protected=True
    )
    deliveries = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    # The API version Stripe rendered the event with (the endpoint's); a version other than
    # the pinned STRIPE_API_VERSION raises an alert, since object shapes differ between them.
    api_version = models.CharField(max_length=64, blank=True, default="", db_default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.event_type} ({self.status})"

    @transition(field=status, source=[Status.PROCESSING, Status.FAILED], target=Status.PROCESSED)
    def mark_processed(self) -> None:
        self.processed_at = timezone.now()
        self.error = ""

    @transition(field=status, source=[Status.PROCESSING, Status.FAILED], target=Status.FAILED)
    def mark_failed(self, *, error: str) -> None:
        self.error = error[:2000]

    @transition(field=status, source=[Status.PROCESSING, Status.FAILED], target=Status.PROCESSING)
    def reprocess(self) -> None:
        pass


class WebhookFailure(FSMModelMixin, Retryable):
    """A critical webhook we could not process; kept whole for manual reprocessing."""

    class Status(models.TextChoices):
        # The event names something not here yet (Stripe does not order its events: a
        # refund before its payment): our own worker runs it again with backoff, and a
        # person is asked only once those retries are spent.
        RETRYING = "RETRYING"
        PENDING_MANUAL = "PENDING_MANUAL"
        REPROCESSED = "REPROCESSED"

    provider = models.CharField(max_length=50)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    error = models.TextField()
    status = FSMField(
        max_length=16, choices=Status.choices, default=Status.PENDING_MANUAL, protected=True
    )
    # Reprocessing runs so far; RETRYING rows run again at next_retry_at.
    attempt_count = models.PositiveIntegerField(default=0, db_column="reprocess_attempts")
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the retention job replaced this row's customer data with hashes (None: not yet).
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"],
                condition=Q(status__in=["PENDING_MANUAL", "RETRYING"]),
                name="webhook_failure_one_open_per_event",
            )
        ]
        # The customer case view: a failed payment webhook is found by its event, by the
        # Stripe object it is about, and by the booking its metadata names.
        indexes = [
            models.Index(fields=["event_id"], name="webhook_failure_event_idx"),
            models.Index(
                KeyTransform("id", KeyTransform("object", KeyTransform("data", "payload"))),
                name="webhook_failure_object_idx",
            ),
            models.Index(
                KeyTransform(
                    "booking_id",
                    KeyTransform(
                        "metadata", KeyTransform("object", KeyTransform("data", "payload"))
                    ),
                ),
                name="webhook_failure_booking_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id} ({self.status})"

    @transition(
        field=status, source=[Status.PENDING_MANUAL, Status.RETRYING], target=Status.REPROCESSED
    )
    def mark_reprocessed(self, *, resolved_by: str) -> None:
        self.resolved_by = resolved_by
        self.resolved_at = timezone.now()
        self.next_retry_at = None

    @transition(field=status, source=Status.RETRYING, target=Status.PENDING_MANUAL)
    def give_up_retrying(self) -> None:
        self.next_retry_at = None
