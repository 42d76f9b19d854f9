"""Retention: customer data older than RETENTION_DAYS is replaced by its hash.

Delivery attempts' request and response bodies, the communication log's recipients and the
webhook failures' payloads are rewritten as `{"redacted": true, "sha256": ...}`: the hash
still proves what was sent (compare a value you hold), the value is gone. Each run writes
one audit row per table with the count and the cutoff. Audit events are never deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from notifications.models import CommunicationLog
from opsconsole.evidence import audit
from payments.models import WebhookFailure
from recovery.models import DeliveryAttempt

ACTOR = "worker:retention_redactor"
CHUNK = 500


def redacted(value: Any) -> dict[str, Any]:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return {"redacted": True, "sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def _snapshot_without_body(snapshot: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(snapshot, dict) or "body" not in snapshot:
        return snapshot
    return {**snapshot, "body": redacted(snapshot["body"])}


def _redact_attempt(row: DeliveryAttempt) -> list[str]:
    row.request_snapshot = _snapshot_without_body(row.request_snapshot)
    row.response_snapshot = _snapshot_without_body(row.response_snapshot)
    return ["request_snapshot", "response_snapshot"]


def _redact_log(row: CommunicationLog) -> list[str]:
    row.recipient = json.dumps(redacted(row.recipient), separators=(",", ":"))
    return ["recipient"]


def _redact_webhook_failure(row: WebhookFailure) -> list[str]:
    row.payload = redacted(row.payload)
    return ["payload"]


# table key -> (model, the column that dates a row, how one row is redacted)
TABLES: dict[str, tuple[type[models.Model], str, Callable[[Any], list[str]]]] = {
    "delivery_attempts": (DeliveryAttempt, "started_at", _redact_attempt),
    "communication_log": (CommunicationLog, "created_at", _redact_log),
    "webhook_failures": (WebhookFailure, "created_at", _redact_webhook_failure),
}


def retention_cutoff() -> Any:
    return timezone.now() - timedelta(days=settings.RETENTION_DAYS)


def retention_redact_table(key: str, *, max_rows: int | None = None) -> int:
    """Redact every row of one table older than the cutoff, a chunk per transaction (row
    locks with SKIP LOCKED, so two runs share the work); returns how many.

    Chunks follow the primary key (each starts after the last one's highest id), so a run
    reads each row once, not the redacted ones again for every chunk."""
    model, dated_by, redact = TABLES[key]
    cutoff = retention_cutoff()
    done = 0
    after_pk = 0
    while max_rows is None or done < max_rows:
        with transaction.atomic():
            rows = list(
                model._default_manager.select_for_update(skip_locked=True)
                .filter(pk__gt=after_pk, **{f"{dated_by}__lt": cutoff, "redacted_at__isnull": True})
                .order_by("pk")[:CHUNK]
            )
            if not rows:
                break
            now = timezone.now()
            for row in rows:
                fields = redact(row)
                setattr(row, "redacted_at", now)  # noqa: B010 (each redacted model has it)
                row.save(update_fields=[*fields, "redacted_at"])
            audit.record(
                "platform.retention.redacted",
                object_type=model._meta.label_lower,
                object_id=f"{rows[0].pk}-{rows[-1].pk}",
                after={"rows": len(rows), "cutoff": cutoff.isoformat(), "table": key},
                actor=ACTOR,
                reason=f"older than {settings.RETENTION_DAYS} days",
            )
        after_pk = rows[-1].pk
        done += len(rows)
    return done
