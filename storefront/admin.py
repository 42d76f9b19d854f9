"""The storefront in the admin: its surfaces, which operators suspend and resume with a
reason (docs/runbooks/incident-response.md), and its promotional banners."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime

from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import ReadOnlyAdmin, ServiceSavedAdmin, SupportStaffAccess
from storefront import banners
from storefront.errors import StorefrontInvalidPayload
from storefront.models import PROMOTIONAL_BANNERS, PromotionalBanner, StorefrontSurface
from storefront.surfaces import (
    storefront_switches,
    surface_is_on,
    surface_switch_set,
    with_last_change,
)


@admin.register(StorefrontSurface)
class StorefrontSurfaceAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Each surface: whether it is served, what customers get while it is suspended, who
    flipped it last, when and why. Operators suspend and resume it (Suspend…, Resume…: a
    reason, an audit row); viewers read."""

    list_display = ("surface", "state", "changed_by", "change_reason", "changed_at", "switch")
    list_display_links = ("surface",)
    fields = ("surface", "switch", "state", "while_suspended", "last_change")
    readonly_fields = fields
    ordering = ("name",)
    actions = ["suspend_surfaces", "resume_surfaces"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return with_last_change(storefront_switches()).order_by("name")

    @admin.display(description="surface")
    def surface(self, obj: StorefrontSurface) -> str:
        return obj.surface.label if obj.surface else obj.name

    @admin.display(description="switch", ordering="name")
    def switch(self, obj: StorefrontSurface) -> str:
        return obj.name

    @admin.display(description="state")
    def state(self, obj: StorefrontSurface) -> str:
        return "on (served)" if obj.active else "SUSPENDED"

    @admin.display(description="while suspended")
    def while_suspended(self, obj: StorefrontSurface) -> str:
        return obj.surface.while_suspended if obj.surface else "-"

    @admin.display(description="changed by")
    def changed_by(self, obj: StorefrontSurface) -> str:
        return getattr(obj, "changed_by", None) or "-"

    @admin.display(description="why")
    def change_reason(self, obj: StorefrontSurface) -> str:
        return getattr(obj, "change_reason", None) or "-"

    @admin.display(description="changed at")
    def changed_at(self, obj: StorefrontSurface) -> str:
        when = getattr(obj, "changed_at", None)
        return date_format(localtime(when), "DATETIME_FORMAT") if when else "-"

    @admin.display(description="last change")
    def last_change(self, obj: StorefrontSurface) -> str:
        if not getattr(obj, "changed_at", None):
            return "on since it was created; nobody has switched it"
        state = "resumed" if obj.active else "SUSPENDED"
        return f"{state} by {self.changed_by(obj)} at {self.changed_at(obj)}: " + (
            self.change_reason(obj)
        )

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """A surface's history is its audit trail: each flip with who, why, and the state
        before and after (Django's own log holds none of them)."""
        query = urlencode({"object_type": self.model._meta.label_lower, "object_id": object_id})
        return redirect(f"{reverse('admin:platform_auditevent_changelist')}?{query}")

    @destructive_action(
        description="Suspend selected surfaces…",
        title="Suspend storefront surfaces",
        button="Suspend…",
        legal=lambda rows: rows.filter(active=True),
        legal_description="surfaces now served; while suspended, each answers as its page "
        "says, and resumes when an operator resumes it",
    )
    def suspend_surfaces(self, request: HttpRequest, pk: int, reason: str) -> None:
        surface_switch_set(switch_id=pk, active=False, actor=request.user, reason=reason)

    @destructive_action(
        description="Resume selected surfaces…",
        title="Resume storefront surfaces",
        button="Resume…",
        legal=lambda rows: rows.filter(active=False),
        legal_description="surfaces now suspended; each is served again at once",
    )
    def resume_surfaces(self, request: HttpRequest, pk: int, reason: str) -> None:
        surface_switch_set(switch_id=pk, active=True, actor=request.user, reason=reason)


@admin.register(PromotionalBanner)
class PromotionalBannerAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Banners the storefront shows in their window; added and changed by operators with a
    reason (an audit row each). To take one down, set its end; to hide them all at once,
    suspend the promotional banners surface."""

    list_display = ("title", "shown", "starts_at", "ends_at", "link")
    search_fields = ("title",)
    fields = banners.BANNER_FIELDS
    service_fields = banners.BANNER_FIELDS

    @admin.display(description="shown now")
    def shown(self, obj: PromotionalBanner) -> str:
        if not obj.is_live():
            return "no (outside its window)"
        if not surface_is_on(PROMOTIONAL_BANNERS):
            return "no: promotional banners are suspended"
        return "yes"

    def check_through_service(self, changes: dict[str, Any]) -> None:
        if problems := banners.banner_problems(changes):
            raise StorefrontInvalidPayload("The banner is invalid.", details=problems)

    def save_through_service(
        self,
        request: HttpRequest,
        obj: PromotionalBanner,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> PromotionalBanner:
        if change:
            return banners.promotional_banner_update(
                banner_id=obj.pk, changes=changes, actor=request.user, reason=reason
            )
        return banners.promotional_banner_create(**changes, actor=request.user, reason=reason)
