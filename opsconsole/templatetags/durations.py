"""How long ago, for people: "3 h 12 min", "2 d 4 h", "45 s"."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


@register.filter
def human_age(age: timedelta | None) -> str:
    """The two largest units of `age` ("3 h 12 min"); "" when there is none, so a template
    prints nothing rather than "( old)"."""
    if age is None:
        return ""
    seconds = max(0, int(age.total_seconds()))
    parts: list[str] = []
    for unit, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount or (parts and len(parts) < 2):
            parts.append(f"{amount} {unit}")
        if len(parts) == 2:
            break
    # A trailing "0 min" says nothing: "3 h", not "3 h 0 min".
    parts = [part for part in parts if not part.startswith("0 ")]
    return " ".join(parts) or "0 s"
