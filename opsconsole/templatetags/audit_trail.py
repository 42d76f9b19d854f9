"""The link from a record's admin page to its audit trail (every service writes one event
per change, with who, why and the state before and after)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from opsconsole.models import VIEW_PERMISSION

register = template.Library()


@register.simple_tag(takes_context=True)
def audit_trail_url(context: template.Context, obj: Any) -> str:
    """The audit events of `obj` (every service writes one per change), for staff who may
    read them; "" otherwise."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if obj is None or getattr(obj, "pk", None) is None or user is None:
        return ""
    if not (user.is_superuser or user.has_perm(VIEW_PERMISSION)):
        return ""
    object_type = getattr(obj, "audit_object_type", obj._meta.label_lower)
    query = urlencode({"object_type": object_type, "object_id": str(obj.pk)})
    return f"{reverse('admin:platform_auditevent_changelist')}?{query}"
