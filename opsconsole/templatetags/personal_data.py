"""Template filters for admin pages that print free text: the API's masks, applied unless
the page's viewer may see personal data (`opsconsole.access.personal_data.shown`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django import template
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.timezone import is_aware, localtime

from opsconsole.access.personal_data import shown

register = template.Library()


@register.filter
def shown_text(value: Any) -> Any:
    """Emails and phone numbers inside text (a partner's error, a recipient) masked."""
    return shown("text", value) if isinstance(value, str) else value


@register.filter
def shown_json(value: Any) -> Any:
    """A stored snapshot or details dict: secret headers blanked, emails and phones masked."""
    return shown("json", value)


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")


@register.filter
def shown_detail(value: Any) -> str:
    """One value of a timeline's details as a person reads it: a stored ISO time in the
    console's one format, a nested dict as `key=value` pairs, a list joined; then masked."""
    if isinstance(value, dict):
        text = "; ".join(
            f"{key}={shown_detail(inner)}"
            for key, inner in value.items()
            if inner not in (None, "")
        )
        return text
    if isinstance(value, list | tuple):
        return ", ".join(shown_detail(inner) for inner in value)
    if isinstance(value, str) and _ISO_TIME.match(value):
        parsed = parse_datetime(value)
        if parsed is not None:
            return date_format(localtime(parsed) if is_aware(parsed) else parsed, "DATETIME_FORMAT")
    if isinstance(value, datetime):
        return date_format(localtime(value) if is_aware(value) else value, "DATETIME_FORMAT")
    return str(shown("text", str(value)))
