"""What operators and the recovery workers keep: manual review, sweep retries, failure
resolutions and bulk actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class ManualReviewItem(FSMModelMixin, models.Model):
    """A failure the DLQ sweeper handed to a human: older than 24 hours, or not transient."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    source = models.CharField(max_length=50, help_text="integration_delivery, notification, refund")
    source_id = models.BigIntegerField()
    summary = models.CharField(max_length=300)
    error = models.TextField(blank=True)
    failed_at = models.DateTimeField()
    status = FSMField(max_length=16, choices=Status.choices, default=Status.OPEN, protected=True)
    resolution = models.CharField(max_length=20, blank=True, help_text="retried or dismissed")
    resolution_reason = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["failed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id"],
                condition=Q(status="open"),
                name="manual_review_one_open_per_source",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "resolved"]), name="manual_review_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.source_id}: {self.summary}"

    @transition(field=status, source=Status.OPEN, target=Status.RESOLVED)
    def resolve(self, *, resolution: str, reason: str, resolved_by: str) -> None:
        self.resolution = resolution
        self.resolution_reason = reason
        self.resolved_by = resolved_by
        self.resolved_at = timezone.now()


class SweepRetry(models.Model):
    """The sweeper retries a recent transient failure on every sweep
    (docs/runbooks/bookings-payments-notifications.md), once per occurrence: a retry that fails
    again is a new occurrence for the next sweep. This row says an occurrence was retried, so
    concurrent sweeps never retry it twice."""

    source = models.CharField(max_length=50)
    source_id = models.BigIntegerField()
    # The failure's last-seen time when it was retried (null: rows from before).
    failed_at = models.DateTimeField(null=True, blank=True)
    retried_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id", "failed_at"],
                name="sweep_retry_once_per_occurrence",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.source_id} retried {self.retried_at:%Y-%m-%d %H:%M}"


class FailureResolution(models.Model):
    """A failure closed without a replay (a replay guard's verdict or an operator's call).

    The failure inbox leaves these out; the row says who or what closed it and why.
    """

    source = models.CharField(max_length=50)
    source_id = models.BigIntegerField()
    # Which occurrence of the failure was resolved: the row's change time or attempt count
    # when it was closed. When the row fails again that value moves on, and the failure is
    # open again (the inbox and the DLQ sweeper see it). Both null: rows resolved before
    # occurrences were kept, which stay resolved.
    occurrence_at = models.DateTimeField(null=True, blank=True)
    occurrence_count = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField()
    resolved_by = models.CharField(max_length=150)
    # A failure that moves money is resolved by two operators: who asked, who agreed.
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id", "occurrence_at", "occurrence_count"],
                name="failure_occurrence_resolved_once",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.source_id} resolved: {self.reason[:60]}"


class FailureResolutionRequest(models.Model):
    """The first operator's half of resolving a failure that moves money; a second operator
    completes it. One pending request per failure occurrence."""

    source = models.CharField(max_length=50)
    source_id = models.BigIntegerField()
    occurrence_at = models.DateTimeField(null=True, blank=True)
    occurrence_count = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField()
    requested_by = models.CharField(max_length=150)
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id", "occurrence_at", "occurrence_count"],
                name="failure_resolution_requested_once",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.source_id} resolution asked by {self.requested_by}"


class BulkAction(FSMModelMixin, models.Model):
    """A tracked bulk replay or resolution (from the failure inbox or the admin's replay of
    many items): frozen ids, dry run, approval where money moves, pacing,
    pause/resume/abort."""

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval"
        READY = "ready"  # dry run done; an operator starts it
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        ABORTED = "aborted"

    class Mode(models.TextChoices):
        REPLAY = "replay"  # each item replayed (or resolved where its guard says so)
        RESOLVE = "resolve"  # each item closed with the action's reason, none replayed

    status = FSMField(max_length=20, choices=Status.choices, protected=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.REPLAY)
    source = models.CharField(max_length=50)
    provider = models.CharField(max_length=200, blank=True)
    filter_description = models.JSONField(default=dict)
    preview = models.JSONField(default=dict, help_text="The dry run: count, sample, transitions")
    moves_money = models.BooleanField(default=False)
    rate_per_second = models.FloatField(default=1.0)
    reason = models.TextField()
    created_by = models.CharField(max_length=150)
    approved_by = models.CharField(max_length=150, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    replayed = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The request that created it: the replays' audit rows and traces join back to it.
    request_id = models.CharField(max_length=128, blank=True)
    traceparent = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(processed__lte=models.F("total")), name="bulk_action_progress_valid"
            ),
            models.CheckConstraint(
                condition=Q(rate_per_second__gt=0), name="bulk_action_rate_positive"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Bulk action #{self.pk} {self.source} ({self.status}, {self.processed}/{self.total})"
        )

    @transition(field=status, source=Status.AWAITING_APPROVAL, target=Status.READY)
    def approve(self, *, approved_by: str) -> None:
        self.approved_by = approved_by

    @transition(field=status, source=[Status.READY, Status.PAUSED], target=Status.RUNNING)
    def start(self) -> None:
        self.started_at = self.started_at or timezone.now()

    @transition(field=status, source=Status.RUNNING, target=Status.PAUSED)
    def pause(self) -> None:
        pass

    @transition(field=status, source=Status.RUNNING, target=Status.COMPLETED)
    def complete(self) -> None:
        self.finished_at = timezone.now()

    @transition(
        field=status,
        source=[Status.AWAITING_APPROVAL, Status.READY, Status.RUNNING, Status.PAUSED],
        target=Status.ABORTED,
    )
    def abort(self) -> None:
        self.finished_at = timezone.now()


class BulkActionItem(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"  # claimed; never picked again, even after a crash
        REPLAYED = "replayed"
        RESOLVED = "resolved"  # the domain said a replay no longer makes sense
        FAILED = "failed"

    action = models.ForeignKey(BulkAction, on_delete=models.PROTECT, related_name="items")
    source_id = models.BigIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["action", "id"]
        constraints = [
            # Each frozen item is replayed at most once per action.
            models.UniqueConstraint(fields=["action", "source_id"], name="bulk_action_item_once")
        ]
        indexes = [
            models.Index(
                fields=["action", "id"],
                condition=Q(outcome="pending"),
                name="bulk_action_item_todo_idx",
            )
        ]

    def __str__(self) -> str:
        return f"action {self.action_id} item {self.source_id}: {self.outcome}"


class ProviderPacer(models.Model):
    """Which worker process paces a provider's bulk actions, until when: a lease row, not a
    session advisory lock, so it holds behind a transaction pooler (PgBouncer), where a
    session is not the worker's own, and without a transaction open for a whole run."""

    provider = models.CharField(max_length=200, primary_key=True)
    owner = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.provider}: {self.owner} until {self.expires_at:%H:%M:%S}"
