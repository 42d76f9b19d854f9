"""Template filters for admin pages that print free text: the API's masks, applied unless
the page's viewer may see personal data (`opsconsole.personal_data.shown`)."""

from __future__ import annotations

from typing import Any

from django import template

from opsconsole.personal_data import shown

register = template.Library()


@register.filter
def shown_text(value: Any) -> Any:
    """Emails and phone numbers inside text (a partner's error, a recipient) masked."""
    return shown("text", value) if isinstance(value, str) else value


@register.filter
def shown_json(value: Any) -> Any:
    """A stored snapshot or details dict: secret headers blanked, emails and phones masked."""
    return shown("json", value)
