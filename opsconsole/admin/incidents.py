"""Incidents in the admin: opened with a title and severity, noted while they run (each note
through the audited service), the write-up drafted on the page, and resolved by an action
that requires the summary and root cause and writes the `incident_resolution` entry."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from opsconsole.admin.actions import destructive_action, permission_denied_page
from opsconsole.admin.mixins import ReadOnlyAdmin, ServiceSavedAdmin, SupportStaffAccess
from opsconsole.incidents import records as incidents
from opsconsole.models import (
    OPERATE_PERMISSION,
    BackupDrillRun,
    Incident,
    IncidentCapture,
    IncidentNote,
)
from opsconsole.outbound.ai_help import ai_configured, ai_help


class IncidentNoteInline(admin.TabularInline):
    """Notes are added, never edited or removed: the running record of what was seen."""

    model = IncidentNote
    fields = ("created_at", "author", "text")
    readonly_fields = ("created_at", "author")
    extra = 1
    can_delete = False

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "text" and field is not None:
            # A table row has no label of its own, only the column's header: the box is
            # named for screen readers and for the runbook's "write in New note".
            field.widget.attrs.update({"aria-label": "New note", "placeholder": "New note"})
        return field

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            obj is not None
            and obj.status == Incident.Status.OPEN
            and request.user.has_perm(OPERATE_PERMISSION)
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Incident)
class IncidentAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    service_fields = ("title", "severity", *incidents.WRITEUP_FIELDS)
    list_display = ("title", "severity", "status", "opened_at", "opened_by", "resolved_at")
    list_filter = ("status", "severity")
    search_fields = ("title", "trace_ids")
    inlines = [IncidentNoteInline]
    actions = ["resolve_incidents"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        if obj is None:
            return self.with_reason(request, obj, ["title", "severity"])
        # What is left before Resolve… is offered: said to those who are offered it.
        to_resolve = ["to_resolve"] if request.user.has_perm(OPERATE_PERMISSION) else []
        return self.with_reason(
            request,
            obj,
            [
                ("title", "severity", "status"),
                *to_resolve,
                ("opened_by", "opened_at"),
                "postmortem_material",
                *incidents.WRITEUP_FIELDS,
                ("resolved_by", "resolved_at"),
            ],
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A resolved incident is a record: its write-up is final, so its page offers no Save.
        if obj is not None and obj.status != Incident.Status.OPEN:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        fixed = ["title", "severity", "status", "to_resolve", "opened_by", "opened_at"]
        fixed += ["postmortem_material"]
        fixed += ["resolved_by", "resolved_at"]
        if obj.status != Incident.Status.OPEN:
            fixed += list(incidents.WRITEUP_FIELDS)
        return fixed

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [] if obj is None else self.inlines

    def object_page_links(self, request: HttpRequest, obj: Any) -> list[dict[str, str]]:
        if obj.status != Incident.Status.OPEN or not request.user.has_perm(OPERATE_PERMISSION):
            return []
        return [
            {
                "slug": "ai_draft",
                "label": "Draft the write-up with AI help…",
                "url": reverse("incident-ai-draft", args=[obj.pk]),
            }
        ]

    @admin.display(description="To resolve")
    def to_resolve(self, obj: Incident) -> str:
        """Why "Resolve…" is not offered yet, where the operator looks for it."""
        if obj.status != Incident.Status.OPEN:
            return "resolved"
        missing = [
            name.replace("_", " ") for name in ("summary", "root_cause") if not getattr(obj, name)
        ]
        if missing:
            return f"write the {' and the '.join(missing)} and save; then Resolve… is offered above"
        return "ready: Resolve… is above"

    @admin.display(description="Postmortem material")
    def postmortem_material(self, obj: Incident) -> str:
        readyz = obj.captures.filter(kind=IncidentCapture.Kind.READYZ).count()
        failed = obj.captures.filter(kind=IncidentCapture.Kind.FAILED_ACTION).count()
        return format_html(
            "<span data-testid='postmortem'>{} readyz snapshots, {} failed server actions, "
            "{} trace ids · <a href='/api/v1/incidents/{}/export'>export (JSON)</a></span>",
            readyz,
            failed,
            len(incidents.incident_trace_ids(obj)),
            obj.pk,
        )

    def check_through_service(self, changes: dict[str, Any]) -> None:
        return None  # the form's own validation covers the title and severity

    def save_through_service(
        self,
        request: HttpRequest,
        obj: Incident,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> Incident:
        if not change:
            return incidents.incident_open(
                title=changes["title"],
                severity=changes["severity"],
                actor=request.user,
                reason=reason,
            )
        return incidents.incident_writeup_update(
            incident_id=obj.pk, changes=changes, actor=request.user, reason=reason
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # New notes go through the audited service; nothing else in the inline is writable.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for note_form in formset.forms:
            text = (note_form.cleaned_data or {}).get("text", "")
            if note_form.instance.pk is None and text.strip():
                formset.new_objects.append(
                    incidents.incident_note_add(
                        incident_id=form.instance.pk,
                        text=text,
                        actor=request.user,
                        # The page's reason, when the operator gave one, is kept with it.
                        reason=str(form.cleaned_data.get("reason") or "").strip(),
                    )
                )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    @destructive_action(
        description="Resolve selected incidents…",
        title="Resolve incidents",
        button="Resolve…",
        legal=lambda rows: (
            rows.filter(status=Incident.Status.OPEN).exclude(summary="").exclude(root_cause="")
        ),
        legal_description="open incidents whose summary and root cause are written; each "
        "is resolved and its write-up recorded in the audit log as incident_resolution",
    )
    def resolve_incidents(self, request: HttpRequest, pk: int, reason: str) -> None:
        incidents.incident_resolve(incident_id=pk, actor=request.user, reason=reason)


@admin.register(BackupDrillRun)
class BackupDrillRunAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Each backup drill (docs/runbooks/backup-restore-drill.md): where the dump went, parity,
    smoke checks, the result."""

    list_display = ("started_at", "status", "triggered_by", "copied_to", "tables", "detail")
    list_filter = ("status",)
    # The runbook's checks read as words: "none" for no mismatches and a line per smoke
    # check, not the stored JSON ("[]", {"campaign_send": "passed", ...}).
    fields = (
        ("status", "triggered_by"),
        ("started_at", "finished_at"),
        "copied_to",
        "tables",
        "mismatch_list",
        "smoke_check_list",
        "detail",
        "output_dir",
    )
    readonly_fields = ("mismatch_list", "smoke_check_list")

    @admin.display(description="Mismatches")
    def mismatch_list(self, obj: BackupDrillRun) -> str:
        if not obj.mismatches:
            return "none" if obj.status != BackupDrillRun.Status.RUNNING else "-"
        return ", ".join(str(table) for table in obj.mismatches)

    @admin.display(description="Smoke checks")
    def smoke_check_list(self, obj: BackupDrillRun) -> str:
        if not obj.smoke_checks:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}: {}", sorted(dict(obj.smoke_checks).items()))


def incident_ai_draft(request: HttpRequest, incident_id: int) -> HttpResponse:
    """The write-up drafted by the AI help from the incident's notes, timeline and readyz
    captures, or, when it is off or fails, that material itself with the reason: never an
    error, and nothing saved (docs/runbooks/incident-response.md)."""
    if denied := permission_denied_page(request, OPERATE_PERMISSION):
        return denied
    incident = get_object_or_404(Incident, pk=incident_id)
    result = None
    if request.method == "POST":
        result = ai_help(
            purpose="incident_writeup",
            instructions=incidents.WRITEUP_INSTRUCTIONS,
            material=incidents.incident_writeup_material(incident),
            obj=incident,
            actor=request.user,
        )
    context = {
        **admin.site.each_context(request),
        "title": f"Draft the write-up of incident #{incident.pk}",
        "subject": f"Incident “{incident.title}” ({incident.get_severity_display()}).",
        "sends": "its notes, its timeline and the readyz payloads captured while it ran",
        "button": "Draft with AI help",
        "result": result,
        "ai_configured": ai_configured(),
        "back_url": reverse("admin:platform_incident_change", args=[incident.pk]),
        "back_label": "Back to the incident",
    }
    return TemplateResponse(request, "admin/ai_help.html", context)
