"""The admin console banner: set and cleared by operators, shown on every admin page."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from opsconsole import audit
from opsconsole.models import ConsoleBanner


@transaction.atomic
def banner_set(*, message: str, level: str, actor: audit.Actor, reason: str) -> ConsoleBanner:
    previous = ConsoleBanner.objects.select_for_update().filter(active=True).first()
    if previous is not None:
        previous.active = False
        previous.cleared_at = timezone.now()
        previous.cleared_by = audit.actor_label(actor)
        previous.save()
    banner = ConsoleBanner.objects.create(
        message=message, level=level, reason=reason, set_by=audit.actor_label(actor)
    )
    audit.record(
        "platform.banner.set",
        obj=banner,
        before={"message": previous.message, "level": previous.level} if previous else None,
        after={"message": message, "level": level},
        actor=actor,
        reason=reason,
    )
    return banner


@transaction.atomic
def banner_clear(*, actor: audit.Actor, reason: str) -> ConsoleBanner | None:
    banner = ConsoleBanner.objects.select_for_update().filter(active=True).first()
    if banner is None:
        return None
    banner.active = False
    banner.cleared_at = timezone.now()
    banner.cleared_by = audit.actor_label(actor)
    banner.save()
    audit.record(
        "platform.banner.cleared",
        obj=banner,
        before={"message": banner.message, "level": banner.level},
        after=None,
        actor=actor,
        reason=reason,
    )
    return banner


def console_banner(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: the active banner on admin pages only."""
    if not request.path.startswith("/admin/"):
        return {}
    try:
        return {"console_banner": ConsoleBanner.objects.filter(active=True).first()}
    except Exception:  # the banner must never take a page down (e.g. during an outage)
        return {}
