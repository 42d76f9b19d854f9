"""A conditional UPDATE and the rows that record it, written together or not at all.

A worker's outcome is a compare-and-set on the row it leased plus the rows that log it (an
attempt, an audit event). On PostgreSQL that is one statement: the UPDATE runs as a
data-modifying CTE and each INSERT selects from its RETURNING, so an INSERT happens only
when the UPDATE matched. One statement is atomic without a transaction and costs one round
trip (its text is fixed per shape, so it is also prepared once per connection), which is
what keeps per-item durability cheap in the delivery hot path. Elsewhere (SQLite) the same
effect is a transaction with the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import F

from opsconsole.db.model_fields import column, concrete_field
from opsconsole.db.prepared import fetch_prepared


@dataclass(frozen=True)
class Increment:
    """Add one to each counter named in `add` (of the model's `counters`) on the row of
    `model` keyed by `key` (a unique constraint), created at zero first if missing: a rollup
    counted in the same write as its event. The names travel as one array parameter, so the
    statement keeps one text and few parameters (the driver caches the parsing of statements
    of at most 50 parameters, and this one rides in the delivery hot path)."""

    model: type[models.Model]
    key: Mapping[str, Any]
    counters: tuple[str, ...]
    add: tuple[str, ...]


def compare_and_set(
    model: type[models.Model],
    *,
    match: Mapping[str, Any],
    values: Mapping[str, Any],
    also_insert: Sequence[models.Model] = (),
    also_add: Increment | None = None,
) -> bool:
    """UPDATE `model` SET `values` WHERE every `match` field equals its value.

    If exactly one row matched, insert `also_insert` (unsaved instances) and add `also_add`
    in the same atomic write and return True; otherwise write nothing and return False. On
    PostgreSQL the inserted instances keep pk None: the statement does not hand their ids
    back.
    """
    # The connection itself, not the proxy: the proxy costs a context-local lookup per use.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with transaction.atomic():
            written = model._default_manager.filter(**match).update(**values)
            if written > 1:
                raise ValueError(f"compare_and_set matched {written} rows; match a key")
            if written == 1:
                for row in also_insert:
                    row.save(force_insert=True)
                if also_add is not None:
                    counted, _ = also_add.model._default_manager.get_or_create(**also_add.key)
                    also_add.model._default_manager.filter(pk=counted.pk).update(
                        **{name: F(name) + 1 for name in also_add.add}
                    )
            return written == 1

    shape = _shape(
        model,
        tuple(values),
        tuple(match),
        tuple((type(row), row.pk is None) for row in also_insert),
        None if also_add is None else (also_add.model, tuple(also_add.key), also_add.counters),
    )
    params: list[Any] = [
        field.get_db_prep_save(value, db)
        for field, value in zip(shape.value_fields, values.values(), strict=True)
    ]
    params += [
        field.get_db_prep_value(value, db, prepared=False)
        for field, value in zip(shape.match_fields, match.values(), strict=True)
    ]
    for row, fields in zip(also_insert, shape.insert_fields, strict=True):
        params += [field.get_db_prep_save(field.pre_save(row, True), db) for field in fields]
    if also_add is not None:
        params += [
            field.get_db_prep_save(value, db)
            for field, value in zip(shape.counter_fields, also_add.key.values(), strict=True)
        ]
        params.append(list(also_add.add))
    ((written,),) = fetch_prepared(shape.sql, params, db=db)
    if written > 1:
        # Unreachable with a key in `match`; the statement would have written too much.
        raise ValueError(f"compare_and_set matched {written} rows; match a key")
    return written == 1


@dataclass(frozen=True)
class _Shape:
    sql: str
    value_fields: tuple[models.Field, ...]
    match_fields: tuple[models.Field, ...]
    insert_fields: tuple[tuple[models.Field, ...], ...]
    counter_fields: tuple[models.Field, ...] = ()


@functools.cache
def _shape(
    model: type[models.Model],
    value_names: tuple[str, ...],
    match_names: tuple[str, ...],
    inserts: tuple[tuple[type[models.Model], bool], ...],
    increment: tuple[type[models.Model], tuple[str, ...], tuple[str, ...]] | None = None,
) -> _Shape:
    """The statement for one shape of write; a worker writes the same shape every time."""
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    value_fields = tuple(concrete_field(model, name) for name in value_names)
    match_fields = tuple(concrete_field(model, name) for name in match_names)
    insert_fields = tuple(
        tuple(
            field
            for field in row_model._meta.local_concrete_fields
            if not (field.primary_key and pk_unset)
        )
        for row_model, pk_unset in inserts
    )
    assignments = ", ".join(f"{quote(column(field))} = %s" for field in value_fields)
    conditions = " AND ".join(f"{quote(column(field))} = %s" for field in match_fields)
    parts = [
        f"changed AS (UPDATE {quote(model._meta.db_table)} SET {assignments} "
        f"WHERE {conditions} RETURNING 1)"
    ]
    for index, fields in enumerate(insert_fields):
        table = quote(fields[0].model._meta.db_table)
        columns = ", ".join(quote(column(field)) for field in fields)
        # Typed placeholders: a bare parameter in a SELECT list would be resolved as text.
        placeholders = ", ".join(f"%s::{field.cast_db_type(db)}" for field in fields)
        parts.append(
            f"insert_{index} AS (INSERT INTO {table} ({columns}) "
            f"SELECT {placeholders} FROM changed)"
        )
    counter_fields: tuple[models.Field, ...] = ()
    if increment is not None:
        counted_model, key_names, counter_names = increment
        key_fields = tuple(concrete_field(counted_model, name) for name in key_names)
        add_fields = tuple(concrete_field(counted_model, name) for name in counter_names)
        counter_fields = key_fields  # the parameters; the counters come from the names array
        table = quote(counted_model._meta.db_table)
        columns = ", ".join(quote(column(field)) for field in (*key_fields, *add_fields))
        keys = ", ".join(f"%s::{field.cast_db_type(db)}" for field in key_fields)
        ones = ", ".join(f"('{field.name}' = ANY(named.names))::int" for field in add_fields)
        conflict = ", ".join(quote(column(field)) for field in key_fields)
        sums = ", ".join(
            f"{quote(column(field))} = {table}.{quote(column(field))} + "
            f"EXCLUDED.{quote(column(field))}"
            for field in add_fields
        )
        parts.append(
            f"counted AS (INSERT INTO {table} ({columns}) SELECT {keys}, {ones} "
            "FROM changed, (SELECT %s::text[] AS names) AS named "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sums})"
        )
    sql = f"WITH {', '.join(parts)} SELECT count(*) FROM changed"
    return _Shape(sql, value_fields, match_fields, insert_fields, counter_fields)
