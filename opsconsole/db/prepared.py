"""Hot statements: fixed SQL text, prepared once per connection, rows turned into models.

A worker's claim and outcome write run once per item at small batches. Their text never
changes, so PostgreSQL plans them once per connection instead of once per call, and their rows
become model instances without the ORM's per-query compilation. Errors surface as Django's
database exceptions, as from any ORM query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq

from opsconsole.db.model_fields import column

TUPLES_OK = pq.ExecStatus.TUPLES_OK

Params = Sequence[Any] | Mapping[str, Any]


def fetch_prepared(
    sql: str, params: Params, *, db: BaseDatabaseWrapper | None = None
) -> list[tuple[Any, ...]]:
    """Run `sql` server-side bound and prepared (PostgreSQL; unprepared behind a transaction
    pooler); return its rows, if any."""
    db = db or connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    db.validate_no_broken_transaction()
    started = time.monotonic()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        # Behind a transaction pooler (DATABASE_TRANSACTION_POOLING) a statement prepared on
        # one server session would be missing on the next.
        pooled = db.settings_dict.get("TRANSACTION_POOLING", False)
        cursor.execute(sql, params, prepare=not pooled)
        # A statement returning rows left a TUPLES_OK result. (cursor.description would say
        # so too, at the cost of looking up every column's type on every call.)
        result = cursor.pgresult
        rows = cursor.fetchall() if result and result.status == TUPLES_OK else []
    if db.queries_logged:  # DEBUG or a test's CaptureQueriesContext sees these too
        db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return rows


ModelT = TypeVar("ModelT", bound=models.Model)


class RowReader(Generic[ModelT]):
    """Builds instances of `model` from a run of its concrete columns in a row."""

    def __init__(self, model: type[ModelT]) -> None:
        self.model = model
        self.fields: tuple[models.Field, ...] = tuple(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.converters: list[tuple[int, models.Field, list[Callable[..., Any]]]] | None = None
        self._select_lists: dict[str, str] = {}

    def select_list(self, alias: str) -> str:
        """The columns to SELECT (or RETURN) for this reader, in its order (built once per
        alias: statements built per request ask for it on each)."""
        if alias not in self._select_lists:
            quote = connection.ops.quote_name
            columns = (f"{alias}.{quote(column(field))}" for field in self.fields)
            self._select_lists[alias] = ", ".join(columns)
        return self._select_lists[alias]

    @property
    def width(self) -> int:
        return len(self.fields)

    def read(self, row: Sequence[Any], start: int = 0) -> ModelT:
        db = connections[DEFAULT_DB_ALIAS]
        if self.converters is None:
            self.converters = [
                (index, field, converters)
                for index, field in enumerate(self.fields)
                if (converters := field.get_db_converters(db))
            ]
        values = list(row[start : start + self.width])
        for index, field, converters in self.converters:
            for convert in converters:
                values[index] = convert(values[index], field, db)
        return self.model.from_db(db.alias, self.attnames, values)
