"""The admin console banner: set and cleared by operators, shown on every admin page."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.models import ConsoleBanner
from opsconsole.outbound.providers import Kind, Mode, registered_providers, sandbox_enabled


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
    """Template context processor, on admin pages only: the active banner, and what staff must
    know about the providers (the sandbox is on; a provider is missing)."""
    if not request.path.startswith("/admin/"):
        return {}
    context: dict[str, Any] = {"provider_notices": provider_notices()}
    # The banner must never take a page down (e.g. during a database outage).
    with contextlib.suppress(Exception):
        context["console_banner"] = ConsoleBanner.objects.filter(active=True).first()
    return context


def provider_notices() -> list[dict[str, str]]:
    notices = []
    if sandbox_enabled():
        notices.append(
            {
                "level": "warning",
                "message": "Sandbox providers (PROVIDERS_SANDBOX=true): unconfigured providers "
                "are simulated; no money moves and no message leaves through them.",
            }
        )
    for item in registered_providers():
        if item.mode() == Mode.MISSING:
            notices.append(
                {
                    "level": "critical" if item.kind == Kind.MONEY else "warning",
                    "message": f"{item.not_configured_detail()}.",
                }
            )
    return notices
