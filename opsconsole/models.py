from __future__ import annotations

from django.conf import settings
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from opsconsole.access.roles import PERMISSION_NAMES

VIEW_PERMISSION = "platform.member_admin.view"
OPERATE_PERMISSION = "platform.member_admin.operate"
BOOK_PERMISSION = "platform.booking.book"
PERSONAL_DATA_PERMISSION = "platform.view_personal_data"
INGEST_PERMISSION = "platform.events.ingest"


class AuditEvent(models.Model):
    """What happened, to what, by whom, why, and the state before and after.

    Written by services in the same transaction as the change it describes; never edited.
    """

    event = models.CharField(max_length=200)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    before_state = models.JSONField(null=True, blank=True)
    after_state = models.JSONField(null=True, blank=True)
    actor = models.CharField(max_length=150, help_text="Username, or worker:<name> for workers.")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    # The caller's X-Request-ID when it was well-formed (it follows the operation through
    # workers to partners), else the server's own id.
    request_id = models.CharField(max_length=128, blank=True)
    # Minted here for every request and worker run, never taken from a caller: the id a
    # lookup trusts, since anyone can send another request's X-Request-ID as their own.
    server_request_id = models.CharField(max_length=32, blank=True, default="", db_default="")
    traceparent = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Every worker outcome inserts a row here, so each index is paid per item: plain
        # btrees for the equality lookups (no LIKE-pattern twins, which nothing queries).
        indexes = [
            models.Index(fields=["object_type", "object_id", "-created_at"]),
            # A changelist filtered by event reads it newest first, straight off this index.
            models.Index(fields=["event", "-created_at"], name="audit_event_idx"),
            models.Index(fields=["request_id"], name="audit_request_id_idx"),
            models.Index(fields=["server_request_id"], name="audit_server_request_id_idx"),
            # The overview's recent operator actions: people, not workers (few rows).
            models.Index(
                fields=["-id"],
                condition=models.Q(actor_user__isnull=False),
                name="audit_operator_actions_idx",
            ),
        ]
        # The operator permissions hang off this model because every operator
        # action ends in an audit row; the data migration creates them with the groups.
        permissions = list(PERMISSION_NAMES.items())

    def __str__(self) -> str:
        return f"{self.event} {self.object_type}:{self.object_id}"


class IdempotencyKey(models.Model):
    """A stored outcome for an Idempotency-Key, so a retried request never acts twice."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    owner = models.CharField(max_length=64, help_text="Key space: one per API user.")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique_owner"),
            models.CheckConstraint(
                condition=models.Q(state__in=["in_flight", "completed"]),
                name="idempotency_key_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner}:{self.key} ({self.state})"


class WorkerSwitch(models.Model):
    """The operator's kill switch for one worker; absent means the settings default."""

    name = models.CharField(max_length=100, primary_key=True)
    enabled = models.BooleanField()
    reason = models.TextField(blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "worker switches"

    def __str__(self) -> str:
        return f"{self.name}: {'enabled' if self.enabled else 'disabled'}"


class WorkerStatus(models.Model):
    """What a worker last reported: heartbeat, last run and its failure streak."""

    # Its switch changes and runs on request are audited under the worker's name.
    audit_object_type = "platform.worker"

    name = models.CharField(max_length=100, primary_key=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_run_started_at = models.DateTimeField(null=True, blank=True)
    last_run_finished_at = models.DateTimeField(null=True, blank=True)
    last_triggered_by = models.CharField(max_length=50, blank=True)
    last_run_summary = models.JSONField(default=dict, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    runs_total = models.PositiveBigIntegerField(default=0)
    items_processed_total = models.PositiveBigIntegerField(default=0)
    outcome_totals = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "worker statuses"

    def __str__(self) -> str:
        return self.name


class WorkerListener(models.Model):
    """One always-running worker process (`manage.py run_worker NAME --listen`, or
    opsconsole.workers.listeners): what wakes it and how far behind it runs. Each process
    refreshes its row every few seconds; a row not refreshed for LISTENER_STALE_SECONDS is a
    listener that died (the worker's schedule still runs its work, a minute later)."""

    owner = models.CharField(max_length=200, primary_key=True)  # host:pid
    worker = models.CharField(max_length=100, db_index=True)
    # listen (PostgreSQL LISTEN/NOTIFY), redis (a Redis channel) or poll (neither).
    wake_source = models.CharField(max_length=16)
    # Whether its LISTEN connection or subscription holds (polling meanwhile when not).
    connected = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # The longest wait, since its previous report, from a row falling due to its claim.
    lag_ms = models.PositiveIntegerField(default=0)
    wakes_total = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.worker} listener {self.owner} ({self.wake_source})"


class Alert(models.Model):
    """Something a human must look at (a stuck cancellation, a large refund that failed).

    Raised by services in the transaction that found the problem; acknowledged in the admin.
    """

    class Severity(models.TextChoices):
        WARNING = "warning"
        CRITICAL = "critical"

    kind = models.CharField(max_length=100, db_index=True, help_text="e.g. cancellation-failed")
    severity = models.CharField(max_length=16, choices=Severity.choices)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The open-alerts list: unacknowledged, newest first.
            models.Index(
                fields=["-id"],
                condition=models.Q(acknowledged_at__isnull=True),
                name="alert_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind} {self.object_type}:{self.object_id}"


class IntegrationProbe(models.Model):
    """The last probe of an outside dependency, shared by every process
    (docs/runbooks/voucher-preview-failures.md)."""

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=8, help_text="green, amber or red")
    detail = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class ConsoleBanner(models.Model):
    """The banner operators set to tell everyone in the console what is happening
    (docs/runbooks/incident-response.md)."""

    class Level(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    message = models.TextField()
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.WARNING)
    reason = models.TextField(help_text="Why it is set, for the audit log.")
    active = models.BooleanField(default=True)
    set_by = models.CharField(max_length=150, blank=True)
    cleared_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # At most one banner shows at a time.
            models.UniqueConstraint(
                fields=["active"], condition=models.Q(active=True), name="one_active_banner"
            )
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:60]}"


class RateCounter(models.Model):
    """One rate limit's count for one caller (`key`): hits in the current window and in the
    one before it, for a sliding estimate. Written by one upsert per hit (rate_counters)."""

    key = models.CharField(max_length=200, primary_key=True)
    window_start = models.BigIntegerField(help_text="The current window's start, Unix seconds.")
    hits = models.IntegerField()
    previous_hits = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"


class Incident(FSMModelMixin, models.Model):
    """An incident while it runs and after (docs/runbooks/incident-response.md): notes as it
    goes, a readyz snapshot each minute and every failed server action captured while it is
    open, and on resolution the write-up the `incident_resolution` audit entry carries."""

    class Severity(models.TextChoices):
        SEV1 = "sev1", "SEV1: customers cannot book or pay"
        SEV2 = "sev2", "SEV2: a recovery path is down"
        SEV3 = "sev3", "SEV3: degraded, with a workaround"

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.SEV2)
    status = FSMField(default=Status.OPEN, choices=Status.choices, protected=True)
    opened_by = models.CharField(max_length=150)
    opened_at = models.DateTimeField(auto_now_add=True)
    summary = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    blast_radius = models.TextField(blank=True, help_text="Who and what was affected.")
    trace_ids = models.TextField(blank=True, help_text="Trace ids to keep, one per line.")
    links = models.TextField(
        blank=True, help_text="Dashboards, tickets, retrospective; one per line."
    )
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(
                fields=["status"], condition=models.Q(status="open"), name="incident_open_idx"
            )
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    @transition(field=status, source=Status.OPEN, target=Status.RESOLVED)
    def resolve(self) -> None:
        """Closed with its write-up (the service records who, when and the audit entry)."""


class IncidentNote(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notes")
    author = models.CharField(max_length=150)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:60]}"


class IncidentCapture(models.Model):
    """Postmortem material kept while an incident is open: a readyz payload, or a
    `server_action_failed` event, with its trace id."""

    class Kind(models.TextChoices):
        READYZ = "readyz"
        FAILED_ACTION = "server_action_failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="captures")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    captured_at = models.DateTimeField(auto_now_add=True)
    trace_id = models.CharField(max_length=32, blank=True)
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["captured_at", "id"]
        indexes = [models.Index(fields=["incident", "kind", "captured_at"])]

    def __str__(self) -> str:
        return f"{self.kind} at {self.captured_at:%H:%M:%S}"


class BackupDrillRun(models.Model):
    """One backup drill (docs/runbooks/backup-restore-drill.md): dump, off-host copy, restore
    from the copy, row-count parity and smoke checks on the restored database. The last one
    shows in readyz."""

    class Status(models.TextChoices):
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    triggered_by = models.CharField(max_length=50, default="manual")
    copied_to = models.CharField(max_length=500, blank=True)
    tables = models.PositiveIntegerField(default=0)
    mismatches = models.JSONField(default=list)
    smoke_checks = models.JSONField(default=dict)
    detail = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"drill {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class QueueDepthSample(models.Model):
    """One queue's rows per status at one minute, kept QUEUE_DEPTH_KEEP_DAYS: the overview's
    counts and queue-depth charts read these, so they cost the same at 10M rows as at 10k."""

    queue = models.CharField(max_length=64)
    sampled_at = models.DateTimeField()
    counts = models.JSONField(default=dict)
    estimated = models.BooleanField(default=False, help_text="From the planner's statistics.")
    # {group: {status: rows}} for a queue registered with group_by (exact counts).
    groups = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-sampled_at"]
        indexes = [models.Index(fields=["queue", "-sampled_at"], name="queue_depth_recent_idx")]

    def __str__(self) -> str:
        return f"{self.queue} at {self.sampled_at:%Y-%m-%d %H:%M}"


class WorkerOutcomeMinute(models.Model):
    """One worker's items per outcome class in one minute, added in the statement that ends
    each run: the overview's outcome charts of every queue read these, never the queues."""

    worker = models.CharField(max_length=100)
    minute = models.DateTimeField()
    succeeded = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    dead_lettered = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["worker", "minute"], name="worker_outcome_minute_once")
        ]
        indexes = [models.Index(fields=["minute"], name="worker_outcome_minute_idx")]

    def __str__(self) -> str:
        return f"{self.worker} at {self.minute:%Y-%m-%d %H:%M}"
