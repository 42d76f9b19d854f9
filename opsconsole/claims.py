"""The claim every batch worker uses: due rows leased to one owner, oldest due first,
in one statement on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone


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
    due = model.objects.filter(filters, lease_free).order_by(order_by, "pk")
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
            model.objects.filter(pk__in=ids).update(
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
    pk = quote(model._meta.pk.column)
    order_column = quote(model._meta.get_field(order_by).column)
    select_sql, select_params = due.values("pk")[:limit].query.sql_with_params()
    expires_field = model._meta.get_field("lease_expires_at")
    # MATERIALIZED: the locking subquery runs once, so LIMIT bounds what is locked. OF the
    # claimed table only: a joined integration row locked by one worker must not hide all
    # its items from the others.
    sql = (
        f"WITH due (claimed_id) AS MATERIALIZED ({select_sql} FOR UPDATE OF {table} SKIP LOCKED) "
        f"UPDATE {table} SET {quote('lease_owner')} = %s, {quote('lease_expires_at')} = %s "
        f"FROM due WHERE {table}.{pk} = due.claimed_id "
        f"RETURNING {table}.{pk}, {table}.{order_column}"
    )
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
