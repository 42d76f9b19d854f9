"""Keyset pagination by descending id: an opaque cursor, a limit, never a COUNT(*)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet


class InvalidCursor(ValueError):
    pass


def encode_cursor(last_id: int) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps({"before_id": last_id}).encode()).decode().rstrip("=")
    )


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        before_id = value["before_id"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this API issued") from exc
    if not isinstance(before_id, int) or before_id < 0:
        raise InvalidCursor("cursor is not one this API issued")
    return before_id


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def keyset_page(queryset: QuerySet, *, limit: int, cursor: str | None) -> Page:
    """Newest first; fetch one extra row to know whether another page exists."""
    limit = max(1, min(limit, settings.API_LIST_MAX_LIMIT))
    if cursor:
        queryset = queryset.filter(pk__lt=decode_cursor(cursor))
    rows = list(queryset.order_by("-pk")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor(rows[-1].pk) if has_more and rows else None)
