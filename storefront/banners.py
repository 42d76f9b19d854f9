"""Promotional banners: saved by operators in the admin (reason, audit row) and read by the
storefront while the promotional banners surface is on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from opsconsole.evidence import audit
from storefront.errors import BannerNotFound, StorefrontInvalidPayload
from storefront.models import PromotionalBanner

BANNER_FIELDS = ("title", "body", "link", "starts_at", "ends_at")
# The storefront shows a few banners at once; the newest first.
LIVE_BANNERS_SHOWN = 20

_HTTPS_ADDRESS = URLValidator(schemes=["https"])


def link_problem(link: str) -> str:
    """ "" for an empty link, a storefront path or an https:// address."""
    if not link or (link.startswith("/") and not link.startswith("//")):
        return ""
    try:
        _HTTPS_ADDRESS(link)
    except ValidationError:
        return "A storefront path (/offers/spring) or an https:// address."
    return ""


def banner_problems(values: dict[str, Any]) -> dict[str, str]:
    """What is wrong with these of a banner's fields (the window when both ends are given)."""
    problems = {name: "This field cannot be changed." for name in set(values) - {*BANNER_FIELDS}}
    if "title" in values and not str(values["title"] or "").strip():
        problems["title"] = "A title is required."
    if "link" in values and (problem := link_problem(str(values["link"] or ""))):
        problems["link"] = problem
    starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
    if "starts_at" in values and not isinstance(starts_at, datetime):
        problems["starts_at"] = "A start is required."
    elif isinstance(starts_at, datetime) and isinstance(ends_at, datetime) and ends_at <= starts_at:
        problems["ends_at"] = "A banner ends after it starts."
    return problems


def _state(banner: PromotionalBanner) -> dict[str, Any]:
    return {
        "title": banner.title,
        "body": banner.body,
        "link": banner.link,
        "starts_at": banner.starts_at.isoformat(),
        "ends_at": banner.ends_at.isoformat() if banner.ends_at else None,
    }


@transaction.atomic
def promotional_banner_create(
    *,
    title: str,
    body: str = "",
    link: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    actor: audit.Actor,
    reason: str,
) -> PromotionalBanner:
    values = {
        "title": title,
        "body": body,
        "link": link,
        "starts_at": starts_at or timezone.now(),
        "ends_at": ends_at,
    }
    if problems := banner_problems(values):
        raise StorefrontInvalidPayload("The banner is invalid.", details=problems)
    banner = PromotionalBanner.objects.create(**values)
    audit.record(
        "storefront.banner.created", obj=banner, after=_state(banner), actor=actor, reason=reason
    )
    return banner


@transaction.atomic
def promotional_banner_update(
    *, banner_id: int, changes: dict[str, Any], actor: audit.Actor, reason: str
) -> PromotionalBanner:
    """Change a banner's text, link or window (ending it now: `ends_at` now)."""

    def update(banner: PromotionalBanner) -> list[str] | None:
        values = {name: getattr(banner, name) for name in BANNER_FIELDS} | changes
        if problems := banner_problems(values):
            raise StorefrontInvalidPayload("The banner is invalid.", details=problems)
        changed = [name for name in changes if getattr(banner, name) != changes[name]]
        for name in changed:
            setattr(banner, name, changes[name])
        return changed or None

    return audit.audited_update(
        PromotionalBanner.objects.filter(pk=banner_id),
        not_found=BannerNotFound,
        change=update,
        state=_state,
        event="storefront.banner.updated",
        actor=actor,
        reason=reason,
    )


def live_banners(now: datetime | None = None) -> QuerySet[PromotionalBanner]:
    """The banners whose window holds `now`, newest start first."""
    now = now or timezone.now()
    return PromotionalBanner.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now), starts_at__lte=now
    ).order_by("-starts_at", "-id")[:LIVE_BANNERS_SHOWN]
