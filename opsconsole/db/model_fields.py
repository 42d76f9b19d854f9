"""A model's concrete columns, for the statements written as SQL (claims, compare-and-set,
prepared reads): `get_field` may also answer a relation's reverse side, which has no column."""

from __future__ import annotations

from django.db import models


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field


def column(field: models.Field) -> str:
    if not field.column:
        raise TypeError(f"{field} has no column")
    return field.column
