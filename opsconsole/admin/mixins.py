"""The console's ModelAdmin building blocks: read-only pages, history that shows and never
writes, forms saved through an audited service with a reason, and support staff's access
by the operator permissions (docs/runbooks/integration-retry-and-replay.md). `opsconsole.admin`
registers the platform's own models with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from opsconsole.admin.scale import EstimatedCountPaginator
from opsconsole.http.errors import ApplicationError
from opsconsole.http.inputs import is_id
from opsconsole.models import OPERATE_PERMISSION, VIEW_PERMISSION


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class SupportStaffInline(admin.options.InlineModelAdmin):
    """A record's related rows (attempts, refund failures, bulk items), read on its page.

    Django shows an inline to users with the related model's view permission, which support
    staff do not hold (their access is the console's own permission): without this, the
    rows a runbook reads there are hidden from everyone but superusers."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
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
        if not is_id(version_id):  # a version is a history row's integer id
            raise Http404("No such version.")
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
        # The page's message names the record as the service left it (a settled refund is
        # COMPLETED, not the OWED the form was opened on).
        obj.refresh_from_db()

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """A service-saved record's history is its audit trail: each change with who, why,
        and the state before and after (Django's own log holds none of them)."""
        query = urlencode({"object_type": self.model._meta.label_lower, "object_id": object_id})
        return redirect(f"{reverse('admin:platform_auditevent_changelist')}?{query}")

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


class ObjectPageActions(_ModelAdminMixin):
    """A record's page offers the list's confirmed actions that apply to it, as buttons (a
    Sidekiq or Oban job page's Retry and Discard): each opens the same confirmation page,
    reason and audit as the list action, for this one record. Only actions the user may run
    are offered (a viewer is offered none), and only while the record is eligible."""

    def get_urls(self) -> list[Any]:
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{opts.app_label}_{opts.model_name}_act",
            ),
            *super().get_urls(),
        ]

    def _confirmed_actions(self, request: HttpRequest) -> dict[str, Any]:
        confirmed: dict[str, Any] = {}
        for name, entry in self.get_actions(request).items():
            func = entry[0] if entry else None
            if getattr(func, "asks_for_confirmation", False):
                confirmed[name] = func
        return confirmed

    def object_page_tools(self, request: HttpRequest, obj: Any) -> list[dict[str, str]]:
        one = self.model._default_manager.filter(pk=obj.pk)
        opts = self.model._meta
        return [
            {
                "slug": name,
                "label": func.button,
                "url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_act", args=[obj.pk, name]
                ),
            }
            for name, func in self._confirmed_actions(request).items()
            if func.legal(one).exists()
        ]

    def object_page_links(self, request: HttpRequest, obj: Any) -> list[dict[str, str]]:
        """Buttons beside the actions that open a page of their own and change nothing
        (a draft by the AI help): no confirmation, no reason."""
        return []

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        tools = self.object_page_tools(request, obj) if obj is not None else []
        links = self.object_page_links(request, obj) if obj is not None else []
        extra = {**(extra_context or {}), "object_page_tools": tools, "object_page_links": links}
        return super().change_view(request, object_id, form_url, extra)

    def object_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        func = self._confirmed_actions(request).get(action)
        if func is None:
            raise PermissionDenied("This action is not offered to your role.")
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such record.")
        page = f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_change"
        done = func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        return done or redirect(reverse(page, args=[obj.pk]))


class SupportStaffAccess(ObjectPageActions):
    """Support staff reach a console page through the operator permissions, not model perms.

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
