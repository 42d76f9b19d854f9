from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from notifications import campaign_settings, campaigns, services
from notifications.models import (
    Campaign,
    CampaignTarget,
    CommunicationLog,
    Notification,
    NotificationAttempt,
    PushToken,
    SuppressedRecipient,
)
from opsconsole.access.personal_data import PersonalFieldsAdmin
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import (
    ReadOnlyAdmin,
    ServiceSavedAdmin,
    SupportStaffAccess,
    SupportStaffInline,
)
from opsconsole.evidence.csv_export import SafeCsvWriter


@admin.register(CommunicationLog)
class CommunicationLogAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"recipient": "text", "context": "json"}
    list_display = (
        "created_at",
        "channel",
        "template",
        "recipient",
        "status",
        "failure_code",
        "subject_type",
        "subject_id",
        "triggered_by",
    )
    list_filter = ("channel", "status", "template", "provider")
    search_fields = ("=subject_id", "recipient", "=request_id", "=provider_message_id")
    show_full_result_count = False


class NotificationAttemptInline(PersonalFieldsAdmin, SupportStaffInline, admin.TabularInline):
    """Every attempt below its notification, which the dead-letter runbook reads; a
    provider's error and answer may name the recipient, masked as on the notification."""

    model = NotificationAttempt
    personal_fields = {"error": "text", "response_body": "text"}
    fields = (
        "attempt_number",
        "succeeded",
        "http_status",
        "error",
        "response_body",
        "duration_ms",
        "attempted_at",
    )
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"recipient": "text", "context": "json"}
    list_display = (
        "id",
        "channel",
        "template",
        "recipient",
        "status",
        "attempt_count",
        "next_retry_at",
    )
    list_filter = ("status", "channel", "template")
    search_fields = ("=id", "recipient", "=subject_id")
    show_full_result_count = False
    inlines = [NotificationAttemptInline]
    actions = ["requeue_dead"]

    @destructive_action(
        description="Requeue dead-lettered notifications…",
        title="Requeue notifications",
        legal=lambda rows: rows.filter(status=Notification.Status.DEAD),
        legal_description="DEAD notifications; each gets a fresh budget of attempts",
    )
    def requeue_dead(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.notification_requeue(notification_id=pk, actor=request.user, reason=reason)


@admin.register(PushToken)
class PushTokenAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"token": "secret"}
    list_display = ("id", "user", "valid", "invalidated_at", "created_at")
    list_filter = ("valid",)
    search_fields = ("user__username",)


def invalid_numbers_csv(targets: QuerySet) -> HttpResponse:
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="invalid-numbers.csv"'
    writer = SafeCsvWriter(response)
    writer.writerow(["campaign_id", "campaign", "phone", "last_error", "updated_at"])
    for target in targets.filter(status=CampaignTarget.Status.INVALID).select_related("campaign"):
        writer.writerow(
            [
                target.campaign_id,
                target.campaign.name,
                target.phone,
                target.last_error,
                target.updated_at.isoformat(),
            ]
        )
    return response


@admin.register(Campaign)
class CampaignAdmin(SupportStaffAccess, ServiceSavedAdmin, admin.ModelAdmin):
    """Read-only but for the quiet hours and the throttle, which staff fix through the
    audited service with a reason (docs/runbooks/whatsapp-send-failures.md)."""

    service_fields = campaign_settings.SETTINGS_FIELDS
    fields = (
        "name",
        "template",
        "status",
        "status_summary",
        "import_progress",
        "throttle_per_minute",
        ("quiet_hours_start", "quiet_hours_end", "quiet_hours_timezone"),
        ("throttled_until", "last_progress_at", "stalled_at"),
        ("started_at", "created_at", "updated_at"),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        names = [n for f in self.fields for n in (f if isinstance(f, tuple) else (f,))]
        return [name for name in names if name not in self.service_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns are created through the API, with their targets

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A completed campaign has nothing left to send: its page is a record, not a form.
        if obj is not None and obj.status == Campaign.Status.COMPLETED:
            return False
        return super().has_change_permission(request, obj)

    def check_through_service(self, changes: dict[str, Any]) -> None:
        # The form holds every setting, so the whole set is checked as it would be saved.
        if problems := campaign_settings.campaign_settings_problems(changes):
            raise campaign_settings.CampaignSettingsInvalid(details=problems)

    def changes_of(self, form: Any, obj: Any) -> dict[str, Any]:
        return {name: form.cleaned_data.get(name) for name in self.service_fields}

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        changed = {
            n: form.cleaned_data.get(n) for n in form.changed_data if n in self.service_fields
        }
        if changed:
            campaign_settings.campaign_settings_update(
                campaign_id=obj.pk,
                changes=changed,
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )

    list_display = (
        "name",
        "status",
        "queue_length",
        "stalled_at",
        "throttled_until",
        "throttle_per_minute",
        "last_progress_at",
    )
    list_filter = ("status", ("stalled_at", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    actions = ["start_campaigns", "stop_campaigns", "export_invalid_numbers"]

    @admin.display(description="status (queue length, targets by status)")
    def status_summary(self, obj: Campaign) -> str:
        status = campaigns.campaign_status(campaign_id=obj.pk)
        by_status = ", ".join(f"{k}: {v}" for k, v in status["targets_by_status"].items())
        return format_html(
            "<p data-testid='campaign-status'>queue length <strong>{}</strong>; {}{}{}</p>",
            status["queue_length"],
            by_status,
            "; STALLED" if status["stalled"] else "",
            "; in quiet hours" if status["in_quiet_hours"] else "",
        )

    @admin.display(description="target import")
    def import_progress(self, obj: Campaign) -> str:
        return format_html(
            "<p data-testid='campaign-import'>imported {} of {} ({})</p>",
            obj.targets_imported,
            obj.targets_total,
            obj.import_state,
        )

    @admin.display(description="queue length")
    def queue_length(self, obj: Campaign) -> int:
        return obj.targets.filter(status__in=CampaignTarget.SENDABLE).count()

    @destructive_action(
        description="Start / resume selected campaigns…",
        title="Start campaigns",
        legal=lambda rows: rows.filter(
            status__in=[Campaign.Status.DRAFT, Campaign.Status.PAUSED],
            import_state=Campaign.ImportState.COMPLETE,
        ),
        legal_description="draft or paused campaigns whose targets are all imported; sending "
        "resumes within a minute",
    )
    def start_campaigns(self, request: HttpRequest, pk: int, reason: str) -> None:
        campaigns.campaign_start(campaign_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Stop (pause) selected campaigns…",
        title="Stop (pause) campaigns",
        legal=lambda rows: rows.filter(status=Campaign.Status.RUNNING),
        legal_description="running campaigns; no more sends until started again",
    )
    def stop_campaigns(self, request: HttpRequest, pk: int, reason: str) -> None:
        campaigns.campaign_stop(campaign_id=pk, actor=request.user, reason=reason)

    @admin.action(permissions=["operate"], description="Export invalid numbers (CSV)")
    def export_invalid_numbers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return invalid_numbers_csv(CampaignTarget.objects.filter(campaign__in=queryset))


@admin.register(CampaignTarget)
class CampaignTargetAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"phone": "phone", "last_error": "text"}
    list_display = ("phone", "campaign", "status", "attempt_count", "next_retry_at", "last_error")
    list_filter = ("status", "campaign")
    search_fields = ("phone",)
    show_full_result_count = False
    actions = ["export_invalid_numbers"]

    @admin.action(permissions=["operate"], description="Export invalid numbers (CSV)")
    def export_invalid_numbers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return invalid_numbers_csv(queryset)


@admin.register(SuppressedRecipient)
class SuppressedRecipientAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    """Addresses that bounced hard or complained: messages to them are skipped
    (docs/runbooks/bookings-payments-notifications.md)."""

    personal_fields = {"recipient": "email"}
    list_display = ("recipient", "channel", "reason", "provider_event_id", "created_at")
    list_filter = ("channel", "reason")
    search_fields = ("recipient",)
