"""Audit rows: one per service write, in the same transaction as the change."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import models, transaction

from opsconsole.http.context import (
    auth_fallback_var,
    current_request_id,
    current_server_request_id,
    current_traceparent,
)
from opsconsole.models import AuditEvent

Actor = AbstractBaseUser | AnonymousUser | str | None


def actor_label(actor: Actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return "anonymous"


def actor_ref(actor: Actor) -> int | str:
    """What a queued task carries to name its actor again: a user's pk, or the label."""
    if isinstance(actor, AbstractBaseUser) and actor.pk is not None:
        return int(actor.pk)
    return actor_label(actor)


def actor_from_ref(ref: int | str) -> Actor:
    if isinstance(ref, int):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(pk=ref).first() or f"user:{ref}"
    return ref


def record(
    event: str,
    *,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: Actor = None,
    reason: str = "",
    metadata: dict[str, Any] | None = None,
    request_id: str = "",
    traceparent: str = "",
) -> AuditEvent:
    """Write one audit row. Must run inside the transaction that made the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"audit event {event} must be recorded inside the writing transaction")
    row = unsaved_event(
        event,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        actor=actor,
        reason=reason,
        metadata=metadata,
        request_id=request_id,
        traceparent=traceparent,
    )
    row.save(force_insert=True)
    return row


def insert_select(
    row: AuditEvent, *, computed: dict[str, str], source: str
) -> tuple[str, list[Any]]:
    """`INSERT INTO <audit> (...) SELECT ... FROM <source>`: `row` (unsaved_event) written
    by a statement that also makes the change, so both happen or neither; `computed` gives
    SQL for the fields only that statement knows (such as the ids it inserted). Returns the
    SQL and its parameters."""
    db = transaction.get_connection()
    fields, into = _insert_target(db.vendor)
    values, params = [], []
    for field in fields:
        if field.name in computed:
            values.append(computed[field.name])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(row, True), db))
    return f"{into} SELECT {', '.join(values)} FROM {source}", params


@functools.cache
def _insert_target(vendor: str) -> tuple[tuple[models.Field, ...], str]:
    """The audit table's written fields and `INSERT INTO table (columns)`, once per database
    vendor (ingestion builds one per request)."""
    ops = transaction.get_connection().ops
    fields = tuple(f for f in AuditEvent._meta.local_concrete_fields if not f.primary_key)
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    return fields, f"INSERT INTO {ops.quote_name(AuditEvent._meta.db_table)} ({columns})"


def unsaved_event(
    event: str,
    *,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: Actor = None,
    reason: str = "",
    metadata: dict[str, Any] | None = None,
    request_id: str = "",
    traceparent: str = "",
) -> AuditEvent:
    """The audit row for a change that writes it itself, in the same atomic statement
    (opsconsole.db.compare_and_set)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    user = cast(Any, actor) if isinstance(actor, AbstractBaseUser) else None
    metadata = dict(metadata or {})
    if fallback := auth_fallback_var.get():
        # The specification's authFallback: the actor's session was not verified by the
        # identity provider on this request, which was down.
        metadata["auth_fallback"] = dict(fallback)
    return AuditEvent(
        event=event,
        object_type=object_type,
        object_id=str(object_id),
        before_state=before,
        after_state=after,
        actor=actor_label(actor),
        actor_user=user,
        reason=reason,
        metadata=metadata,
        request_id=request_id or current_request_id(),
        server_request_id=current_server_request_id(),
        traceparent=traceparent or current_traceparent(),
    )


ModelT = TypeVar("ModelT", bound=models.Model)


def audited_update(
    queryset: models.QuerySet[ModelT],
    *,
    not_found: type[Exception],
    change: Callable[[ModelT], Iterable[str] | None],
    state: Callable[[ModelT], dict[str, Any]],
    event: str | Callable[[ModelT], str],
    actor: Actor,
    reason: str = "",
    metadata: dict[str, Any] | None = None,
) -> ModelT:
    """The services' one way to change a row an operator names: lock it (or raise
    `not_found`), note its `state`, apply `change` (which sets fields or fires a transition
    and returns the fields to save, () for every field; None: nothing to change, nothing
    saved or audited), save, and write the audit row with the state before and after. Runs
    inside the caller's transaction; `event` may depend on the row as changed."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audited_update must run inside the writing transaction")
    row = queryset.select_for_update().first()
    if row is None:
        raise not_found()
    before = state(row)
    fields = change(row)
    if fields is None:
        return row
    fields = list(fields)
    if fields and any(field.name == "updated_at" for field in row._meta.concrete_fields):
        fields.append("updated_at")
    row.save(update_fields=fields or None)
    record(
        event(row) if callable(event) else event,
        obj=row,
        before=before,
        after=state(row),
        actor=actor,
        reason=reason,
        metadata=metadata,
    )
    return row
