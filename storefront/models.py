"""The storefront's surfaces (each behind a waffle switch) and its promotional banners."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from waffle.models import Switch


@dataclass(frozen=True)
class Surface:
    """A part of the storefront an operator may suspend on its own (the incident guide: "for
    storefront issues, suspend promotional banners or loyalty redemptions")."""

    name: str  # in spans and log lines: storefront.surface=<name>
    switch: str  # the waffle switch; on unless an operator suspended the surface
    label: str
    while_suspended: str  # what customers and stations get meanwhile


PROMOTIONAL_BANNERS = Surface(
    name="promotional_banners",
    switch="storefront_promotional_banners",
    label="Promotional banners",
    while_suspended="GET /api/v1/storefront/banners answers no banners, with suppressed: true",
)
LOYALTY_REDEMPTIONS = Surface(
    name="loyalty_redemptions",
    switch="storefront_loyalty_redemptions",
    label="Loyalty redemptions",
    while_suspended="POST /api/station/redeem answers 503 PAY-503-REDEMPTIONS-SUSPENDED and "
    "redeems nothing",
)
SURFACES = (PROMOTIONAL_BANNERS, LOYALTY_REDEMPTIONS)


def surface_of_switch(switch_name: str) -> Surface | None:
    return next((s for s in SURFACES if s.switch == switch_name), None)


class StorefrontSurface(Switch):
    """A storefront surface's switch as the console shows it: the admin lists these, and
    flips them only through storefront.surfaces.surface_switch_set (reason, audit row)."""

    class Meta:
        proxy = True
        verbose_name = "storefront surface"
        verbose_name_plural = "storefront surfaces"

    def __str__(self) -> str:
        surface = surface_of_switch(self.name)
        return f"{surface.label} ({self.name})" if surface else self.name

    @property
    def surface(self) -> Surface | None:
        return surface_of_switch(self.name)


class PromotionalBanner(models.Model):
    """A banner the storefront shows from `starts_at` until `ends_at` (no end: until one is
    set), while the promotional banners surface is on. Saved through storefront.banners."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, max_length=2000)
    link = models.CharField(
        max_length=500,
        blank=True,
        help_text="Where the banner leads: a storefront path (/offers/spring) or an https:// "
        "address; empty: nowhere.",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: shown until an end is set."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="promotional_banner_ends_after_it_starts",
                violation_error_message="A banner ends after it starts.",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now and (self.ends_at is None or self.ends_at > now)
