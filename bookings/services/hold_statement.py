"""The usual hold in one statement (PostgreSQL): the hold and its audit row, with the
exclusion constraint keeping holds apart and the unique (holder, cap_slot) pair keeping a
client within the cap. bookings.services.holds goes the locked way when this cannot settle
a hold alone."""

from __future__ import annotations

import functools
from contextlib import nullcontext
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from bookings.errors import TooManyActiveHolds
from bookings.models import BookingHold
from opsconsole.db.prepared import RowReader, fetch_prepared
from opsconsole.db.transactions import is_retryable_transaction_error
from opsconsole.evidence import audit

EXCLUSION_VIOLATION = "23P01"


def _is_exclusion_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    return (
        getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    ) == EXCLUSION_VIOLATION


CAP_SLOT_CONSTRAINT = "booking_hold_one_per_cap_slot"


def _violated(exc: IntegrityError) -> str:
    """The constraint an IntegrityError names ("" if none): the exclusion constraint's
    violations carry SQLSTATE 23P01 instead."""
    cause = exc.__cause__
    if _is_exclusion_violation(exc):
        return "exclusion"
    diag = getattr(cause, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


_HOLD_ROWS = RowReader(BookingHold)


@functools.cache
def _one_statement_hold_sql() -> tuple[str, str]:
    """The hold's INSERT, gated on the resource and the client's live holds, and the
    audit row selecting from it; the audit part's text comes from opsconsole.evidence.audit."""
    head = (
        "WITH resource AS (SELECT id FROM bookings_resource WHERE id = %(resource)s AND active"
        " AND (bookable_until IS NULL OR bookable_until >= %(end)s)), "
        "mine AS (SELECT cap_slot, expires_at > %(now)s AS live FROM bookings_bookinghold "
        "WHERE holder_id = %(holder)s AND status = 'ACTIVE'), "
        "counted AS (SELECT count(*) FILTER (WHERE live) AS live FROM mine), "
        "free_place AS (SELECT min(place) AS place FROM generate_series(1, %(cap)s) AS place "
        "WHERE place NOT IN (SELECT cap_slot FROM mine WHERE cap_slot IS NOT NULL)), "
        "hold AS (INSERT INTO bookings_bookinghold (resource_id, holder_id, start_time, "
        "end_time, status, occupies_slot, expires_at, next_check_at, lease_owner, created_at, "
        "cap_slot) SELECT resource.id, %(holder)s, %(start)s, %(end)s, 'ACTIVE', true, "
        "%(expires)s, %(expires)s, '', %(now)s, free_place.place "
        "FROM resource, counted, free_place "
        "WHERE counted.live < %(cap)s AND free_place.place IS NOT NULL RETURNING *), "
    )
    tail = (
        "SELECT (SELECT count(*) FROM resource), counted.live, "
        f"{_HOLD_ROWS.select_list('hold')} FROM counted LEFT JOIN hold ON true"
    )
    return head, tail


def _hold_in_one_statement(
    *, resource_id: int, start_time: datetime, end_time: datetime, holder: AbstractBaseUser
) -> BookingHold | None:
    """The hold in one statement, or None when the locked way must decide."""
    cap = settings.BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.BOOKING_HOLD_SECONDS)
    after = {"status": "ACTIVE", "occupies_slot": True, "expires_at": expires_at.isoformat()}
    audit_insert, audit_params = audit.insert_select(
        audit.unsaved_event(
            "booking.hold.created",
            object_type=BookingHold._meta.label_lower,
            after=after,
            actor=holder,
            metadata={"resource_id": resource_id, "start_time": start_time.isoformat()},
        ),
        computed={"object_id": "id::text"},
        source="hold",
    )
    head, tail = _one_statement_hold_sql()
    named = {f"audit{n}": value for n, value in enumerate(audit_params)}
    audit_insert = audit_insert % tuple(f"%({name})s" for name in named)
    params = {
        "resource": resource_id,
        "holder": holder.pk,
        "now": now,
        "cap": cap,
        "start": start_time,
        "end": end_time,
        "expires": expires_at,
        **named,
    }
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            (row,) = fetch_prepared(f"{head}audited AS ({audit_insert}) {tail}", params)
    except IntegrityError as exc:
        if _violated(exc) in {"exclusion", CAP_SLOT_CONSTRAINT}:
            return None
        raise
    except OperationalError as exc:
        # Two inserts waiting on each other's exclusion or cap-place entries: PostgreSQL
        # aborts one, and the locked way (which waits its turn) decides it.
        if is_retryable_transaction_error(exc):
            return None
        raise
    resources, live = row[0], row[1]
    if not resources:
        return None  # missing, closed or not open that far: the locked way says which
    if live >= cap:
        raise TooManyActiveHolds(details={"active_holds": live, "max": cap})
    if row[2] is None:
        return None  # every place is taken, some by overdue holds
    return _HOLD_ROWS.read(row, 2)
