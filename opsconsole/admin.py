from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from knox.models import AuthToken
from simple_history.admin import SimpleHistoryAdmin

from opsconsole.admin_actions import destructive_action
from opsconsole.admin_scale import EstimatedCountPaginator, indexed_values_filter, recent_filter
from opsconsole.alerts import alert_acknowledge
from opsconsole.api_tokens import api_token_revoke
from opsconsole.banner import banner_clear, banner_set
from opsconsole.errors import ApplicationError
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
from opsconsole.personal_data import PersonalFieldsAdmin
from opsconsole.worker_switches import worker_enabled, worker_switch_set


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class HistoryWithoutRevert(SimpleHistoryAdmin):
    """History pages that show and never write.

    simple-history's version form saves whatever is posted to it, checking only that the
    user may view history: a viewer could rewrite a record with no audit row. Changes go
    through the record's change form (and its service) instead.
    """

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def _id_or_404(self, object_id: str) -> None:
        """simple-history queries with the id as given; one its model's key cannot hold
        ("abc" for an integer key) would fail in the database as a 500."""
        try:
            self.model._meta.pk.to_python(object_id)
        except ValidationError as exc:
            raise Http404("No such record.") from exc

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        self._id_or_404(object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict | None = None,
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied("History pages are read-only.")
        self._id_or_404(object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReasonModelForm(forms.ModelForm):
    # Required when the save changes something (checked in the form's clean): a note added
    # on an incident's page with nothing else changed needs none.
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why this change is made; kept in the audit log.",
    )


if TYPE_CHECKING:
    # The mixins below are mixed into ModelAdmins: typed as one, their super() calls and
    # the attributes they set are checked against ModelAdmin's.
    _ModelAdminMixin = admin.ModelAdmin
else:
    _ModelAdminMixin = object


class ServiceSavedAdmin(_ModelAdminMixin):
    """Add and change forms that save through a service that validates and audits.

    The form asks for a reason; `check_through_service` turns the service's validation into
    form errors before anything is written, and `save_through_service` is the only write.
    Deleting is not offered: a record with history is disabled, not removed.
    """

    service_fields: tuple[str, ...] = ()
    form = ReasonModelForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        admin_self = self

        class ReasonForm(base):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                changes = admin_self.changes_of(self, obj)
                if (obj is None or changes) and not str(cleaned.get("reason", "")).strip():
                    self.add_error("reason", "Say why this change is made (kept in the audit log).")
                if not self.errors:
                    try:
                        admin_self.check_through_service(admin_self.changes_of(self, obj))
                    except ApplicationError as exc:
                        for field, message in exc.details.items():
                            target = field if field in self.fields else None
                            self.add_error(target, str(message))
                        if not exc.details:
                            self.add_error(None, exc.message)
                return cleaned

        return ReasonForm

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.with_reason(request, obj, super().get_fields(request, obj))

    def with_reason(self, request: HttpRequest, obj: Any, fields: Any) -> list[Any]:
        """`fields`, and the reason wherever the page can save: a form whose fields leave it
        out would refuse every save over a field nobody can see."""
        fields = list(fields)
        can_save = (
            self.has_add_permission(request)
            if obj is None
            else self.has_change_permission(request, obj)
        )
        shown = {
            n for entry in fields for n in (entry if isinstance(entry, list | tuple) else [entry])
        }
        if can_save and "reason" not in shown:
            fields.append("reason")
        return fields

    def changes_of(self, form: forms.ModelForm, obj: Model | None) -> dict[str, Any]:
        names = (
            self.service_fields
            if obj is None
            else [n for n in form.changed_data if n in self.service_fields]
        )
        return {n: form.cleaned_data[n] for n in names if n in form.cleaned_data}

    def check_through_service(self, changes: dict[str, Any]) -> None:
        raise NotImplementedError

    def save_through_service(
        self, request: HttpRequest, obj: Any, changes: dict[str, Any], change: bool, reason: str
    ) -> Model:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool):
        changes = self.changes_of(form, obj if change else None)
        reason = form.cleaned_data["reason"]
        if change and not changes:
            return
        saved = self.save_through_service(request, obj, changes, change, reason)
        obj.pk = saved.pk

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool):
        # Every field the form may write went through the service in save_model.
        return None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Operators manage these records; every save goes through the audited service.
        return request.user.has_perm(OPERATE_PERMISSION) or super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION) or super().has_change_permission(
            request, obj
        )


class SupportStaffAccess(_ModelAdminMixin):
    """Support staff reach a console page through seed 001's permissions, not model perms.

    `platform.member_admin.view` shows the page; actions that act need
    `platform.member_admin.operate`. Superusers keep everything.
    """

    # "N results" from the planner's estimate on a big table: COUNT(*) over ten million rows
    # takes a second, on every page of every changelist.
    paginator = EstimatedCountPaginator

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_view_permission(request, obj)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """For `@admin.action(permissions=["operate"])`, which every console action declares:
        every admin action changes something, so a viewer is offered none, and a forged POST
        of an action's name finds nothing to run (the authorization matrix checks both)."""
        return request.user.has_perm(OPERATE_PERMISSION)


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
    list_display = ("created_at", "event", "object_type", "object_id", "actor", "request_id")
    # Filters list their values by walking the indexes, and search matches indexed keys
    # exactly: both cost the same at ten million events as at ten thousand.
    list_filter = (
        indexed_values_filter("event"),
        indexed_values_filter("object_type", "object type"),
        recent_filter("created_at"),
    )
    # `__exact`, not "=" (iexact: UPPER(column) = UPPER(term), which no index serves).
    search_fields = ("request_id__exact", "server_request_id__exact", "event__exact")
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
    """Workers, their heartbeat and kill switch; switching asks for a reason."""

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

    # WorkerStatus's primary key is the worker's name.
    @destructive_action(
        description="Disable selected workers (kill switch)…",
        title="Disable workers",
        legal=lambda rows: workers_switched(rows, enabled=True),
        legal_description="workers currently enabled",
    )
    def disable_workers(self, request: HttpRequest, name: str, reason: str) -> None:
        worker_switch_set(name=name, enabled=False, actor=request.user, reason=reason)

    @destructive_action(
        description="Enable selected workers…",
        title="Enable workers",
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


from opsconsole.admin_incidents import IncidentAdmin  # noqa: E402, F401
