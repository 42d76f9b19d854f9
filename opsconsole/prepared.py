"""Hot statements: fixed SQL text, prepared once per connection, rows turned into models.

A worker's claim and outcome write run once per item at small batches. Their text never
changes, so PostgreSQL plans them once per connection instead of once per call, and their rows
become model instances without the ORM's per-query compilation. Errors surface as Django's
database exceptions, as from any ORM query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection, models

Params = Sequence[Any] | Mapping[str, Any]


def fetch_prepared(sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Run `sql` server-side bound and prepared (PostgreSQL); return its rows, if any."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if cursor.description else []


class RowReader:
    """Builds instances of `model` from a run of its concrete columns in a row."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = tuple(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.converters: list[tuple[int, models.Field, list[Callable[..., Any]]]] = []

    def select_list(self, alias: str) -> str:
        """The columns to SELECT (or RETURN) for this reader, in its order."""
        return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in self.fields)

    @property
    def width(self) -> int:
        return len(self.fields)

    def read(self, row: Sequence[Any], start: int = 0) -> models.Model:
        if not self.converters and any(f.get_db_converters(connection) for f in self.fields):
            self.converters = [
                (index, field, field.get_db_converters(connection))
                for index, field in enumerate(self.fields)
                if field.get_db_converters(connection)
            ]
        values = list(row[start : start + self.width])
        for index, field, converters in self.converters:
            for convert in converters:
                values[index] = convert(values[index], field, connection)
        return self.model.from_db(connection.alias, self.attnames, values)
