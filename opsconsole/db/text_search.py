"""Substring search that an index serves: `column ILIKE '%term%'` under a pg_trgm GIN index
(Django's `icontains` writes `UPPER(column) LIKE UPPER(...)`, which no index serves), so an
operator's search for a partner's error text or a customer's email costs the same at ten
million rows as at ten thousand. Each searchable column has a partial trigram index, kept
to the rows people search (open failures, operators' reasons)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Lookup
from django.db.models.functions import Cast

# Trigram indexes need three characters to narrow anything; shorter terms are not searched.
MIN_TERM = 3


@models.TextField.register_lookup
@models.CharField.register_lookup
class ILike(Lookup):
    """`field__ilike="%term%"`: the pattern as given (escape it with `contains_pattern`)."""

    lookup_name = "ilike"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


def contains_pattern(term: str) -> str:
    """`%term%` with the term's own LIKE wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def as_text(field: str) -> Cast:
    """A JSON column as its text (`payload::text`), the expression its trigram index is on."""
    return Cast(field, models.TextField())
