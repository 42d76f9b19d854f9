"""The claim every batch worker but the delivery worker uses (that one has its own statement,
recovery/services/claims.sql): due rows leased to one owner, oldest due first, in one
statement on PostgreSQL; the run context, the lease owner a run claims for, and the summary
a run returns."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from opsconsole.db.model_fields import column, concrete_field


def claim_due_rows(
    model: type[models.Model],
    *,
    filters: Q,
    owner: str,
    limit: int,
    lease_seconds: int,
    order_by: str = "next_retry_at",
) -> list[Any]:
    """Lease up to `limit` due rows to `owner` and return their ids, oldest due first.

    Rows with an expired lease are due again: that is how a killed worker's batch comes back.
    On PostgreSQL the claim is one statement (lock with SKIP LOCKED, then UPDATE ...
    RETURNING); elsewhere a short transaction does the same.
    """
    if limit <= 0:
        return []
    now = timezone.now()
    lease_expires_at = now + timedelta(seconds=lease_seconds)
    lease_free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    due = model._default_manager.filter(filters, lease_free).order_by(order_by, "pk")
    if connection.vendor == "postgresql":
        return _claim_in_one_statement(
            model,
            due=due,
            owner=owner,
            limit=limit,
            lease_expires_at=lease_expires_at,
            order_by=order_by,
        )
    with transaction.atomic():
        ids = list(due.select_for_update().values_list("pk", flat=True)[:limit])
        if ids:
            model._default_manager.filter(pk__in=ids).update(
                lease_owner=owner, lease_expires_at=lease_expires_at
            )
    return ids


def _claim_in_one_statement(
    model: type[models.Model],
    *,
    due: models.QuerySet,
    owner: str,
    limit: int,
    lease_expires_at: datetime,
    order_by: str,
) -> list[Any]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(column(concrete_field(model, "pk")))
    order_column = quote(column(concrete_field(model, order_by)))
    select_sql, select_params = due.values("pk")[:limit].query.sql_with_params()
    expires_field = concrete_field(model, "lease_expires_at")
    # MATERIALIZED: the locking subquery runs once, so its LIMIT bounds what is locked. The
    # ORM's select names the table itself; the UPDATE's alias is that same name.
    sql = f"""
        WITH due (claimed_id) AS MATERIALIZED ({select_sql} FOR UPDATE OF {table} SKIP LOCKED)
        UPDATE {table} SET lease_owner = %s, lease_expires_at = %s
        FROM due WHERE {table}.{pk} = due.claimed_id
        RETURNING {table}.{pk}, {table}.{order_column}"""
    params = [
        *select_params,
        owner,
        expires_field.get_db_prep_save(lease_expires_at, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # PostgreSQL sorts NULLs last in ascending order; so does this.
    rows.sort(key=lambda row: (row[1] is None, row[1] or 0, row[0]))
    return [row_id for row_id, _ in rows]


@dataclass
class RunContext:
    """What one processor of a worker run carries from claim() to process(): who holds the
    leases, who started the run, its quotas and deadline. Each processor of a run has its
    own; nothing about a run lives on the worker instance, so one instance serves every
    processor."""

    worker: str
    owner: str
    triggered_by: str
    # time.monotonic() after which the run claims no more batches.
    deadline: float
    # Per-run allowances a worker sets in begin_run() and spends as it claims (a tripped
    # circuit's probe and drain quota); helpers of a run start with none.
    quotas: dict[Any, int] = field(default_factory=dict)


def new_lease_owner(worker_name: str) -> str:
    return f"{worker_name}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class RunSummary:
    worker: str
    triggered_by: str
    skipped: bool = False
    claimed: int = 0
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def merge(self, other: RunSummary) -> None:
        self.claimed += other.claimed
        self.batches += other.batches
        self.outcomes.update(other.outcomes)
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "triggered_by": self.triggered_by,
            "skipped": self.skipped,
            "claimed": self.claimed,
            "batches": self.batches,
            "outcomes": dict(self.outcomes),
            "errors": self.errors,
        }
