"""The platform's own models in the admin: audit events, workers and their switches, alerts,
the console banner, API tokens and incidents (opsconsole.admin.incidents)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.timezone import localtime
from knox.models import AuthToken

from opsconsole.access.api_tokens import api_token_revoke
from opsconsole.access.personal_data import PersonalFieldsAdmin
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import HistoryWithoutRevert, ReadOnlyAdmin, SupportStaffAccess
from opsconsole.admin.scale import indexed_values_filter, recent_filter
from opsconsole.db.text_search import MIN_TERM, contains_pattern
from opsconsole.models import (
    OPERATE_PERMISSION,
    Alert,
    AuditEvent,
    ConsoleBanner,
    IdempotencyKey,
    WorkerStatus,
    WorkerSwitch,
)
from opsconsole.monitoring.alerts import alert_acknowledge
from opsconsole.monitoring.banner import banner_clear, banner_set
from opsconsole.workers.switches import worker_enabled, worker_run_now, worker_switch_set


@admin.register(AuditEvent)
class AuditEventAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    # What the API's audit events mask (a partner's error text in a before/after state, a
    # reason that names a customer), masked here too.
    personal_fields = {
        "reason": "text",
        "before_state": "json",
        "after_state": "json",
        "metadata": "json",
    }
    list_display = (
        "created_at",
        "event",
        "object_type",
        "object_id",
        "actor",
        "signed_in_by",
        "request_id",
    )
    # Filters list their values by walking the indexes, and search matches indexed keys
    # exactly: both cost the same at ten million events as at ten thousand.
    list_filter = (
        indexed_values_filter("event"),
        indexed_values_filter("object_type", "object type"),
        recent_filter("created_at"),
    )
    # Every search is one an index serves (see get_search_results), the same at ten million
    # events as at ten thousand.
    search_fields = ("request_id__exact", "server_request_id__exact", "event__exact")
    search_help_text = (
        "A request id (the caller's or the server's), an event name, an object as "
        "type:id (recovery.recoveryitem:42), or words of an operator's reason."
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()[:200]
        if not term:
            return queryset, False
        found = Q(request_id=term) | Q(server_request_id=term) | Q(event=term)
        object_type, _, object_id = term.rpartition(":")
        if object_type and object_id:
            # An object (its index); not also the words of a reason.
            found |= Q(object_type=object_type, object_id=object_id)
        elif len(term) >= MIN_TERM:
            # audit_reason_trgm covers rows with a reason: workers' rows have none.
            found |= ~Q(reason="") & Q(reason__ilike=contains_pattern(term))
        return queryset.filter(found), False

    @admin.display(description="Session")
    def signed_in_by(self, obj: AuditEvent) -> str:
        """How the actor's session stood when the row was written, when it was not the
        usual: from the cached session while the identity provider was down, or break-glass
        (metadata.auth_fallback, docs/runbooks/identity-provider-outage.md)."""
        mark = (obj.metadata or {}).get("auth_fallback")
        session = mark.get("session") if isinstance(mark, dict) else None
        return {"cached": "cached: provider down", "break_glass": "break-glass"}.get(
            str(session), ""
        )

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # A record's "Audit events" link filters by the object (the (object_type, object_id,
        # created_at) index serves it).
        return lookup in ("object_type", "object_id") or super().lookup_allowed(
            lookup, value, request
        )

    search_help_text = "A request id (the caller's or the server's), or an event name (exact)."
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "owner", "method", "path", "state", "response_status", "expires_at")
    list_filter = ("state", "method")
    search_fields = ("=key", "path")


@admin.register(WorkerSwitch)
class WorkerSwitchAdmin(HistoryWithoutRevert, ReadOnlyAdmin):
    list_display = ("name", "enabled", "reason", "changed_by", "updated_at")


@admin.register(WorkerStatus)
class WorkerStatusAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Workers: the kill switch (who set it, when and why), the last run, and Run now."""

    list_display = (
        "name",
        "is_enabled",
        "last_heartbeat_at",
        "consecutive_failures",
        "last_triggered_by",
        "last_error",
    )
    fields = (
        "name",
        "kill_switch",
        ("last_run_started_at", "last_run_finished_at", "last_triggered_by"),
        ("last_heartbeat_at", "consecutive_failures"),
        "last_error",
        "last_run_summary",
        ("runs_total", "items_processed_total"),
        "outcome_totals",
    )
    actions = ["run_workers_now", "disable_workers", "enable_workers"]

    @admin.display(boolean=True, description="enabled")
    def is_enabled(self, obj: WorkerStatus) -> bool:
        return worker_enabled(obj.name)

    @admin.display(description="kill switch")
    def kill_switch(self, obj: WorkerStatus) -> str:
        switch = WorkerSwitch.objects.filter(name=obj.name).first()
        if switch is None:
            state = "enabled" if worker_enabled(obj.name) else "disabled"
            return f"{state} (the settings default; nobody has switched it)"
        state = "enabled" if switch.enabled else "DISABLED"
        when = date_format(localtime(switch.updated_at), "DATETIME_FORMAT")
        return f"{state} by {switch.changed_by or 'unknown'} at {when}: {switch.reason or '-'}"

    @destructive_action(
        description="Run selected workers now…",
        title="Run workers now",
        button="Run now…",
        legal=lambda rows: workers_switched(rows, enabled=True),
        legal_description="enabled workers; each runs once from the task queue, as its "
        "schedule would (leases, run record), and its page shows the run",
    )
    def run_workers_now(self, request: HttpRequest, name: str, reason: str) -> None:
        worker_run_now(name=name, actor=request.user, reason=reason)

    # WorkerStatus's primary key is the worker's name.
    @destructive_action(
        description="Disable selected workers (kill switch)…",
        title="Disable workers",
        button="Disable (kill switch)…",
        legal=lambda rows: workers_switched(rows, enabled=True),
        legal_description="workers currently enabled",
    )
    def disable_workers(self, request: HttpRequest, name: str, reason: str) -> None:
        worker_switch_set(name=name, enabled=False, actor=request.user, reason=reason)

    @destructive_action(
        description="Enable selected workers…",
        title="Enable workers",
        button="Enable…",
        legal=lambda rows: workers_switched(rows, enabled=False),
        legal_description="workers currently disabled",
    )
    def enable_workers(self, request: HttpRequest, name: str, reason: str) -> None:
        worker_switch_set(name=name, enabled=True, actor=request.user, reason=reason)


def workers_switched(rows: QuerySet, *, enabled: bool) -> QuerySet:
    """The workers among `rows` whose kill switch is currently `enabled`."""
    names = [
        name for name in rows.values_list("name", flat=True) if worker_enabled(name) == enabled
    ]
    return rows.filter(name__in=names)


@admin.register(Alert)
class AlertAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("created_at", "severity", "kind", "object_type", "object_id", "message")
    list_filter = ("severity", "kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("=object_id", "kind", "=request_id")
    actions = ["acknowledge_alerts"]
    show_full_result_count = False

    @destructive_action(
        description="Acknowledge selected alerts…",
        title="Acknowledge alerts",
        button="Acknowledge…",
        legal=lambda rows: rows.filter(acknowledged_at__isnull=True),
        legal_description="alerts not yet acknowledged",
    )
    def acknowledge_alerts(self, request: HttpRequest, pk: int, reason: str) -> None:
        alert_acknowledge(alert_id=pk, actor=request.user, reason=reason)


@admin.register(ConsoleBanner)
class ConsoleBannerAdmin(SupportStaffAccess, admin.ModelAdmin):
    """Operators set the banner with a reason; setting a new one replaces the old one."""

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

    @destructive_action(
        description="Clear the banner…",
        title="Clear the console banner",
        legal=lambda rows: rows.filter(active=True),
        legal_description="the banner currently shown on every admin page",
        each=False,
    )
    def clear_banner(self, request: HttpRequest, rows: QuerySet, reason: str) -> int:
        return 1 if banner_clear(actor=request.user, reason=reason) else 0


admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens: who holds one and until when (the key itself is never stored). Staff see
    their own tokens and superusers everyone's; revoking asks for a reason and is audited.
    Issuing is `manage.py create_api_token`; anyone also lists and revokes their own through
    `/api/v1/auth/tokens`."""

    list_display = ("token_key", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("=token_key", "user__username")
    fields = ("token_key", "user", "created", "expiry")
    actions = ["revoke_tokens"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user=request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Through the revoke action (reason, audit row) only.
        return False

    @destructive_action(
        description="Revoke selected tokens…",
        title="Revoke API tokens",
        legal=lambda rows: rows,
        legal_description="tokens; their holders' API calls are refused from now on",
        permissions=["revoke"],
    )
    def revoke_tokens(self, request: HttpRequest, digest: str, reason: str) -> None:
        api_token_revoke(digest=digest, actor=request.user, reason=reason)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # Operators revoke their own (the list holds only theirs); viewers change nothing.
        return request.user.is_superuser or request.user.has_perm(OPERATE_PERMISSION)
