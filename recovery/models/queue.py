"""Integrations and their recovery queue: items, delivery attempts, payload edits and
circuit breakers (docs/runbooks/integration-retry-and-replay.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords

from opsconsole.db.leases import Leased
from opsconsole.db.retryable import Retryable
from opsconsole.failures.fingerprints import failure_fingerprint


class Integration(models.Model):
    """A platform integration in the catalog: where its deliveries go and whether they may."""

    name = models.CharField(max_length=200, unique=True)
    endpoint_url = models.URLField(max_length=500)
    # JSON Schema an operator's edited payload must satisfy before an edit-and-replay.
    payload_schema = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    paused = models.BooleanField(
        default=False, help_text="Containment: no deliveries or replays until resumed."
    )
    paused_reason = models.TextField(blank=True)
    # The event types it subscribes to; "*" is every type.
    event_types = models.JSONField(default=list, blank=True, db_default=["*"])
    # Standard Webhooks signing secrets, newest first: [{"secret": "whsec_...", "created_at",
    # "expires_at"}]. A rotated-out secret keeps signing until its expires_at (24 hours), so
    # a receiver can deploy the new one in that window. Kept on the row the delivery worker
    # already loads: signing costs no query. Never in an audit row or an API answer after
    # the one that created it.
    signing_secrets = models.JSONField(default=list, blank=True, db_default=[])
    # Delivery limits (the worker honours them from the latency work on): at most this many
    # attempts in flight at once, and this many per second.
    max_in_flight = models.PositiveIntegerField(default=10, db_default=10)
    rate_per_second = models.PositiveIntegerField(default=50, db_default=50)
    # A dotted path into the payload (e.g. "booking_id"): items with the same value are
    # delivered in order. Empty: no ordering.
    ordering_key_path = models.CharField(max_length=200, blank=True, default="", db_default="")

    class BodyFormat(models.TextChoices):
        PAYLOAD = "payload", "The event's payload as the producer sent it"
        STANDARD_WEBHOOKS = "standard_webhooks", "Standard Webhooks: {type, timestamp, data}"

    # What a delivery's body is: the payload itself (integrations made before this choice
    # keep it), or the payload as `data` in the Standard Webhooks envelope.
    body_format = models.CharField(
        max_length=20,
        choices=BodyFormat.choices,
        default=BodyFormat.PAYLOAD,
        db_default=BodyFormat.PAYLOAD,
    )
    # Deleted through the API or the admin: disabled and kept, for the audit and its items.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["signing_secrets"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_deliveries(self) -> bool:
        return self.enabled and not self.paused

    def subscribes_to(self, event_type: str) -> bool:
        types = self.event_types or []
        return "*" in types or event_type in types

    def active_secrets(self, now: Any = None) -> list[str]:
        """The secrets that sign a delivery now: the current one and any still in its grace."""
        now = now or timezone.now()
        return [
            entry["secret"]
            for entry in self.signing_secrets or []
            if not entry.get("expires_at") or datetime.fromisoformat(entry["expires_at"]) > now
        ]


def default_max_attempts() -> int:
    return settings.INTEGRATION_MAX_ATTEMPTS


class RecoveryItem(ConcurrentTransitionMixin, Leased, Retryable):
    """One integration delivery and everything needed to retry, park and replay it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        DLQ = "dlq", "DLQ"
        REPLAYED = "replayed"

    # Statuses the delivery worker picks up (when due); replayed items are re-delivered.
    DELIVERABLE = (Status.PENDING, Status.RETRYING, Status.REPLAYED)
    REPLAYABLE = (Status.FAILED, Status.DLQ)
    # An item in one of these holds back the later items of its ordering key: it is on its
    # way, or failed and waits for a replay or a resolution.
    HOLDS_ORDER = (*DELIVERABLE, *REPLAYABLE)

    # No index of its own: the queue indexes below lead with integration_id.
    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="items", db_index=False
    )
    event_type = models.CharField(max_length=200)
    payload = models.JSONField()
    status = FSMField(
        max_length=16,
        choices=Status.choices,
        default=Status.PENDING,
        protected=True,
        db_index=False,
    )
    max_attempts = models.PositiveIntegerField(default=default_max_attempts)
    replay_count = models.PositiveIntegerField(default=0)
    # Due as soon as it is enqueued.
    next_retry_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    failure_code = models.CharField(max_length=100, blank=True)
    # The failure inbox's group for this failure, written with the failure, so the inbox
    # groups a million-row queue in SQL; "" while nothing has failed.
    failure_fingerprint = models.CharField(max_length=16, blank=True, default="", db_default="")
    failure_detail = models.TextField(blank=True)
    request_snapshot = models.JSONField(default=dict, blank=True)
    response_snapshot = models.JSONField(default=dict, blank=True)
    # An operator's corrected payload (edit and replay); `payload` stays the original.
    payload_override = models.JSONField(null=True, blank=True)
    # How many times an operator corrected the payload: each correction is a new message to
    # the receiver (a new webhook-id and Idempotency-Key), or one that deduplicates on them,
    # as Standard Webhooks tells it to, would drop the correction as a repeat.
    edit_count = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The Standard Webhooks `webhook-id`: the event's id, the same across every retry and
    # replay of this item (and for one event fanned out to several integrations).
    event_id = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The value at the integration's ordering_key_path when the item was created ("" none).
    ordering_key = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The operation chain: the request that created or last replayed this item.
    request_id = models.CharField(max_length=128, blank=True)
    traceparent = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "retrying", "succeeded", "failed", "dlq", "replayed"]
                ),
                name="recovery_item_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(attempt_count__lte=models.F("max_attempts")),
                name="recovery_item_attempts_within_max",
            ),
        ]
        indexes = [
            # The customer case view: the deliveries about a customer's booking, payment,
            # voucher or hosted session; partial, so events without the key pay nothing.
            *[
                models.Index(
                    KeyTransform(key, "payload"),
                    condition=Q(payload__has_key=key),
                    name=f"item_payload_{key}_idx",
                )
                for key in ("booking_id", "payment_id", "voucher_id", "session_id")
            ],
            # The delivery worker's claim: status IN (deliverable) AND next_retry_at <= now()
            # ORDER BY next_retry_at, id. Sized to exactly the rows it can claim, and in the
            # claim's order, so a claim reads its LIMIT rows and sorts nothing.
            models.Index(
                fields=["next_retry_at", "id"],
                condition=Q(status__in=["pending", "retrying", "replayed"]),
                name="recovery_item_due_idx",
            ),
            # The queue list: one integration, optional status, newest first by id (keyset).
            models.Index(fields=["integration", "status", "-id"], name="recovery_item_queue_idx"),
            models.Index(fields=["integration", "-id"], name="recovery_item_integration_idx"),
            # Exact lookups only (admin filter and search): no LIKE-pattern twin to maintain.
            models.Index(fields=["failure_code"], name="recovery_item_failure_code_idx"),
            # The failure inbox: open failures by group. Only failed and DLQ rows are in it,
            # so a successful delivery never pays for it.
            # Ordering: the earlier open items of one key (the claim's NOT EXISTS).
            models.Index(
                fields=["integration", "ordering_key", "id"],
                condition=~Q(ordering_key="")
                & Q(status__in=["pending", "retrying", "replayed", "failed", "dlq"]),
                name="recovery_item_order_idx",
            ),
            models.Index(
                fields=["failure_fingerprint", "created_at"],
                condition=Q(status__in=["failed", "dlq"]),
                name="recovery_item_inbox_idx",
            ),
            # Failures without a stored fingerprint (written before fingerprints were), which
            # the inbox groups in Python: normally none, and this empty index says so to the
            # planner, which cannot tell from the columns' statistics that failed rows always
            # carry a fingerprint.
            models.Index(
                fields=["id"],
                condition=Q(status__in=["failed", "dlq"], failure_fingerprint=""),
                name="recovery_item_unprinted_idx",
            ),
            # The inbox ranks a group's failures about bookings starting soon first: those
            # few rows are found by booking id, not by reading every failure.
            models.Index(
                KeyTransform("booking_id", "payload"),
                condition=Q(status__in=["failed", "dlq"]),
                name="recovery_item_booking_idx",
            ),
            # The overview's oldest stuck item, read in index order at any table size.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status__in=["failed", "dlq"]),
                name="recovery_item_stuck_age_idx",
            ),
        ]

    def __str__(self) -> str:
        # The integration's name when it was loaded with the item (pages do), never a query
        # per row for it.
        if "integration" in self._state.fields_cache:
            to = self.integration.name
        else:
            to = f"integration {self.integration_id}"
        return f"#{self.pk} {self.event_type} → {to} ({self.status})"

    @property
    def webhook_id(self) -> str:
        """Standard Webhooks' message id: the same on every retry and replay of this item,
        and unique to it. A producer's event id leads it (partners can correlate), followed
        by the item: two producers may use one event id, and a receiver that deduplicates on
        webhook-id would otherwise drop the second one's event."""
        original = self.original_webhook_id
        return f"{original}_edit{self.edit_count}" if self.edit_count else original

    @property
    def original_webhook_id(self) -> str:
        """The webhook-id before any payload correction (sent with a corrected one, so the
        receiver can link the two)."""
        return f"{self.event_id}.{self.pk}" if self.event_id else f"msg_{self.pk}"

    @property
    def delivery_idempotency_key(self) -> str:
        """Sent with every attempt, so a repeat after a crash is harmless at the receiver; a
        corrected payload is another request."""
        key = f"recovery-item-{self.pk}"
        return f"{key}-edit{self.edit_count}" if self.edit_count else key

    def state(self) -> dict[str, Any]:
        """The evidence an audit row keeps before and after a change."""
        return {
            "status": self.status,
            "attempt_count": self.attempt_count,
            "max_attempts": self.max_attempts,
            "replay_count": self.replay_count,
            "next_retry_at": self.next_retry_at.isoformat() if self.next_retry_at else None,
            "failure_code": self.failure_code,
            "failure_detail": self.failure_detail,
        }

    def inbox_fingerprint(self) -> str:
        """The failure inbox group of this item's current failure (it reads the integration)."""
        if not (self.failure_code or self.failure_detail):
            return ""
        return failure_fingerprint(
            app="recovery",
            source="integration_delivery",
            provider=self.integration.name,
            failure_code=self.failure_code,
            error=self.failure_detail,
        )

    def _record_attempt_outcome(self, *, failure_code: str, failure_detail: str) -> None:
        self.attempt_count += 1
        self.last_attempt_at = timezone.now()
        self.failure_code = failure_code
        self.failure_detail = failure_detail
        self.failure_fingerprint = self.inbox_fingerprint()
        self.release_lease()

    @transition(field=status, source=DELIVERABLE, target=Status.SUCCEEDED)
    def mark_succeeded(self) -> None:
        self._record_attempt_outcome(failure_code="", failure_detail="")
        self.next_retry_at = None
        self.succeeded_at = self.last_attempt_at

    @transition(field=status, source=DELIVERABLE, target=Status.RETRYING)
    def schedule_retry(self, *, failure_code: str, failure_detail: str, next_retry_at: Any) -> None:
        self._record_attempt_outcome(failure_code=failure_code, failure_detail=failure_detail)
        self.next_retry_at = next_retry_at

    @transition(field=status, source=DELIVERABLE, target=Status.FAILED)
    def mark_failed(self, *, failure_code: str, failure_detail: str) -> None:
        self._record_attempt_outcome(failure_code=failure_code, failure_detail=failure_detail)
        self.next_retry_at = None

    @transition(field=status, source=DELIVERABLE, target=Status.DLQ)
    def move_to_dlq(self, *, failure_code: str, failure_detail: str) -> None:
        self._record_attempt_outcome(failure_code=failure_code, failure_detail=failure_detail)
        self.next_retry_at = None

    @transition(field=status, source=REPLAYABLE, target=Status.REPLAYED)
    def replay(self, *, request_id: str, traceparent: str) -> None:
        # A replay gets a fresh attempt budget; the spent one stays in the audit row and
        # the attempt log.
        self.attempt_count = 0
        self.replay_count += 1
        self.next_retry_at = timezone.now()
        self.request_id = request_id
        self.traceparent = traceparent


class DeliveryAttempt(models.Model):
    """One outside call for an item: what was sent, what came back, how long it took."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        RETRYABLE = "retryable"
        PERMANENT = "permanent"

    item = models.ForeignKey(RecoveryItem, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField(help_text="Attempt number within the current budget.")
    replay_count = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_detail = models.TextField(blank=True)
    retry_after_seconds = models.FloatField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_snapshot = models.JSONField(default=dict, blank=True)
    response_snapshot = models.JSONField(default=dict, blank=True)
    lease_owner = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    # When the retention job replaced this row's customer data with hashes (None: not yet).
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item", "id"]
        indexes = [
            # The retention job: redacted_at IS NULL AND started_at < cutoff ORDER BY id. Only
            # rows not yet redacted are in it, so a run does not walk years of redacted history.
            models.Index(
                fields=["id"],
                condition=Q(redacted_at__isnull=True),
                name="attempt_unredacted_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} attempt {self.number}: {self.outcome}"


class PayloadEdit(models.Model):
    """An operator's correction of a delivery's payload; the original is never overwritten."""

    item = models.ForeignKey(RecoveryItem, on_delete=models.PROTECT, related_name="payload_edits")
    original_payload = models.JSONField()
    edited_payload = models.JSONField()
    diff = models.TextField()
    edited_by = models.CharField(max_length=150)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "id"]

    def __str__(self) -> str:
        return f"edit of item {self.item_id} by {self.edited_by}"


class ProviderCircuit(models.Model):
    """A circuit breaker per integration: open after repeated failures, probe, drain slowly."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        DRAINING = "draining"  # probes succeed again; deliveries resume at a capped rate

    integration = models.OneToOneField(
        Integration, on_delete=models.PROTECT, related_name="circuit"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.integration_id}: {self.state}"
