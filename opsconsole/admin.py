from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from opsconsole.admin_actions import confirm_with_reason, each_legal
from opsconsole.alerts import alert_acknowledge
from opsconsole.banner import banner_clear, banner_set
from opsconsole.models import (
    OPERATE_PERMISSION,
    VIEW_PERMISSION,
    Alert,
    AuditEvent,
    ConsoleBanner,
    IdempotencyKey,
    WorkerStatus,
    WorkerSwitch,
)
from opsconsole.workers import worker_enabled, worker_switch_set


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class SupportStaffAccess:
    """Support staff reach a console page through seed 001's permissions, not model perms.

    `platform.member_admin.view` shows the page; actions that act need
    `platform.member_admin.operate`. Superusers keep everything.
    """

    operator_actions: tuple[str, ...] = ()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_view_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.has_perm(OPERATE_PERMISSION):
            for name in self.operator_actions:
                actions.pop(name, None)
        return actions


@admin.register(AuditEvent)
class AuditEventAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("created_at", "event", "object_type", "object_id", "actor", "request_id")
    list_filter = ("event", "object_type")
    search_fields = ("=request_id", "=object_id", "event", "actor", "=traceparent")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "owner", "method", "path", "state", "response_status", "expires_at")
    list_filter = ("state", "method")
    search_fields = ("=key", "path")


@admin.register(WorkerSwitch)
class WorkerSwitchAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("name", "enabled", "reason", "changed_by", "updated_at")


@admin.register(WorkerStatus)
class WorkerStatusAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Workers, their heartbeat and kill switch; switching asks for a reason."""

    operator_actions = ("disable_workers", "enable_workers")

    list_display = (
        "name",
        "is_enabled",
        "last_heartbeat_at",
        "consecutive_failures",
        "last_triggered_by",
        "last_error",
    )
    actions = ["disable_workers", "enable_workers"]

    @admin.display(boolean=True, description="enabled")
    def is_enabled(self, obj: WorkerStatus) -> bool:
        return worker_enabled(obj.name)

    def _switch(
        self, request: HttpRequest, queryset: QuerySet, *, enabled: bool, action: str
    ) -> HttpResponse | None:
        names = [
            name
            for name in queryset.values_list("name", flat=True)
            if worker_enabled(name) != enabled
        ]

        # WorkerStatus's primary key is the worker's name.
        perform = each_legal(
            self,
            request,
            queryset,
            lambda name, reason: worker_switch_set(
                name=name, enabled=enabled, actor=request.user, reason=reason
            ),
        )
        return confirm_with_reason(
            self,
            request,
            queryset,
            action=action,
            title="Enable workers" if enabled else "Disable workers",
            legal=queryset.filter(name__in=names),
            perform=perform,
            legal_description="workers currently " + ("disabled" if enabled else "enabled"),
        )

    @admin.action(description="Disable selected workers (kill switch)…")
    def disable_workers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._switch(request, queryset, enabled=False, action="disable_workers")

    @admin.action(description="Enable selected workers…")
    def enable_workers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._switch(request, queryset, enabled=True, action="enable_workers")


@admin.register(Alert)
class AlertAdmin(SupportStaffAccess, ReadOnlyAdmin):
    operator_actions = ("acknowledge_alerts",)
    list_display = ("created_at", "severity", "kind", "object_type", "object_id", "message")
    list_filter = ("severity", "kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("=object_id", "kind", "=request_id")
    actions = ["acknowledge_alerts"]
    show_full_result_count = False

    @admin.action(description="Acknowledge selected alerts…")
    def acknowledge_alerts(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        perform = each_legal(
            self,
            request,
            queryset,
            lambda pk, reason: alert_acknowledge(alert_id=pk, actor=request.user, reason=reason),
        )
        return confirm_with_reason(
            self,
            request,
            queryset,
            action="acknowledge_alerts",
            title="Acknowledge alerts",
            legal=queryset.filter(acknowledged_at__isnull=True),
            perform=perform,
            legal_description="alerts not yet acknowledged",
        )


@admin.register(ConsoleBanner)
class ConsoleBannerAdmin(SupportStaffAccess, admin.ModelAdmin):
    """Operators set the banner with a reason; setting a new one replaces the old one."""

    operator_actions = ("clear_banner",)
    list_display = ("message", "level", "active", "set_by", "created_at", "cleared_by")
    list_filter = ("active", "level")
    fields = ("message", "level", "reason")
    actions = ["clear_banner"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ConsoleBanner, form: object, change: bool
    ) -> None:
        banner = banner_set(
            message=obj.message, level=obj.level, actor=request.user, reason=obj.reason
        )
        obj.pk = banner.pk

    @admin.action(description="Clear the banner…")
    def clear_banner(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        def perform(legal: QuerySet, reason: str) -> tuple[int, int]:
            cleared = banner_clear(actor=request.user, reason=reason)
            return (1 if cleared else 0), queryset.count() - (1 if cleared else 0)

        return confirm_with_reason(
            self,
            request,
            queryset,
            action="clear_banner",
            title="Clear the console banner",
            legal=queryset.filter(active=True),
            perform=perform,
            legal_description="the banner currently shown on every admin page",
        )
