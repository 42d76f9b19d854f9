"""Who is calling, as one key: what rate limits and idempotency records are kept by."""

from __future__ import annotations

from typing import Any


def principal_key(user: Any) -> str | None:
    """Who is calling, as one key for rate limits and idempotency records: a user by id, a
    station by its station (whichever of its credentials it uses); None for anonymous."""
    if not (user is not None and user.is_authenticated):
        return None
    station_id = getattr(user, "station_id", None)
    return f"station:{station_id}" if station_id is not None else str(user.pk)
