"""Campaigns (docs/runbooks/whatsapp-send-failures.md): the campaign, its targets, and the staged
import of a large list."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable


class Campaign(FSMModelMixin, models.Model):
    """A WhatsApp campaign: start, stop (pause), quiet hours and a throttle
    (docs/runbooks/whatsapp-send-failures.md)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"

    name = models.CharField(max_length=200)
    template = models.CharField(max_length=200)
    status = FSMField(max_length=16, choices=Status.choices, default=Status.DRAFT, protected=True)
    throttle_per_minute = models.PositiveIntegerField(default=60)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    quiet_hours_timezone = models.CharField(max_length=64, default="UTC")
    # The provider said 429: nothing is sent for this campaign before this time.
    throttled_until = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    stalled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class ImportState(models.TextChoices):
        IMPORTING = "importing"  # a large list: the target importer adds it in batches
        COMPLETE = "complete"

    # Large target lists are imported after the request (CampaignTargetImport); a campaign
    # starts only once its list is complete.
    import_state = models.CharField(
        max_length=16,
        choices=ImportState.choices,
        default=ImportState.COMPLETE,
        db_default=ImportState.COMPLETE,
    )
    targets_total = models.PositiveIntegerField(default=0, db_default=0)
    targets_imported = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "running", "paused", "completed"]),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(import_state__in=["importing", "complete"]),
                name="campaign_import_state_valid",
            ),
            # Nothing is sent before the whole list is in.
            models.CheckConstraint(
                condition=Q(status="draft") | Q(import_state="complete"),
                name="campaign_sends_only_a_complete_list",
            ),
            models.CheckConstraint(
                condition=Q(targets_imported__lte=models.F("targets_total")),
                name="campaign_imported_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @transition(field=status, source=[Status.DRAFT, Status.PAUSED], target=Status.RUNNING)
    def start(self) -> None:
        now = timezone.now()
        self.started_at = self.started_at or now
        self.last_progress_at = now
        self.stalled_at = None

    @transition(field=status, source=Status.RUNNING, target=Status.PAUSED)
    def stop(self) -> None:
        pass

    @transition(field=status, source=Status.RUNNING, target=Status.COMPLETED)
    def complete(self) -> None:
        pass


class CampaignTargetImport(Leased):
    """A campaign's large target list, staged by the request that created the campaign and
    added in batches by the target importer (notifications.workers).

    `imported` counts the list's entries already added; each batch adds the next slice and
    moves it in one transaction, and the (campaign, phone) pair is unique, so a run that
    dies mid-batch, or a second run, adds no target twice. The list is emptied once
    imported: the targets hold the numbers from then on."""

    campaign = models.OneToOneField(
        Campaign, on_delete=models.PROTECT, related_name="target_import"
    )
    phones = models.JSONField(default=list, blank=True)
    total = models.PositiveIntegerField()
    imported = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(imported__lte=models.F("total")), name="campaign_import_within_total"
            ),
        ]
        indexes = [
            # The importer's claim: imports not completed, by next_retry_at.
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(completed_at__isnull=True),
                name="campaign_import_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"import of campaign {self.campaign_id}: {self.imported} of {self.total}"


class CampaignTarget(FSMModelMixin, Leased, Retryable):
    """One number of a campaign; its status moves only through the transitions below."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RETRY_SCHEDULED = "retry_scheduled"
        SENT = "sent"
        FAILED = "failed"
        INVALID = "invalid"

    SENDABLE = (Status.PENDING, Status.RETRY_SCHEDULED)

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="targets")
    phone = models.CharField(max_length=32)
    status = FSMField(max_length=16, choices=Status.choices, default=Status.PENDING, protected=True)
    attempt_count = models.PositiveIntegerField(default=0, db_column="attempts")
    # Due as soon as it is added; never unscheduled (a sent target is no longer SENDABLE).
    next_retry_at = models.DateTimeField(default=timezone.now, db_column="next_attempt_at")
    last_error = models.TextField(blank=True)
    # The codes for what went wrong: send_failed (the provider refused or failed),
    # invalid_number, rate_limited; "" after a success.
    error_code = models.CharField(max_length=32, blank=True, default="", db_default="")
    provider_message_id = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone"], name="campaign_target_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "retry_scheduled", "sent", "failed", "invalid"]),
                name="campaign_target_status_valid",
            ),
        ]
        indexes = [
            # The customer case view finds a customer's rows by contact (recovery.cases).
            models.Index(fields=["phone"], name="campaign_target_phone_idx"),
            # The dispatcher's claim: one campaign's sendable targets by next_retry_at.
            models.Index(
                fields=["campaign", "next_retry_at", "id"],
                condition=Q(status__in=["pending", "retry_scheduled"]),
                name="campaign_target_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"target #{self.pk} ({self.status})"

    @transition(
        field=status,
        source=SENDABLE,
        target=RETURN_VALUE(Status.SENT, Status.RETRY_SCHEDULED, Status.FAILED, Status.INVALID),
    )
    def record_send(self, *, outcome: str) -> str:
        """The dispatcher's answer for one send: sent, retry_scheduled, failed or invalid."""
        return outcome

    @transition(field=status, source=Status.FAILED, target=Status.PENDING)
    def requeue(self) -> None:
        self.attempt_count = 0
        self.next_retry_at = timezone.now()
