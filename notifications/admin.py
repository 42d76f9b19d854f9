from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from notifications import campaigns, services
from notifications.models import (
    Campaign,
    CampaignTarget,
    CommunicationLog,
    Notification,
    NotificationAttempt,
    PushToken,
)
from opsconsole.admin import ReadOnlyAdmin, SupportStaffAccess
from opsconsole.admin_actions import confirm_with_reason, each_legal
from opsconsole.csv_export import SafeCsvWriter
from opsconsole.personal_data import PersonalFieldsAdmin


@admin.register(CommunicationLog)
class CommunicationLogAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"recipient": "text"}
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


class NotificationAttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
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

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"recipient": "text", "context": "json"}
    list_display = ("id", "channel", "template", "recipient", "status", "attempts", "next_retry_at")
    list_filter = ("status", "channel", "template")
    search_fields = ("=id", "recipient", "=subject_id")
    show_full_result_count = False
    inlines = [NotificationAttemptInline]
    actions = ["requeue_dead"]

    @admin.action(permissions=["operate"], description="Requeue dead-lettered notifications…")
    def requeue_dead(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        perform = each_legal(
            self,
            request,
            queryset,
            lambda pk, reason: services.notification_requeue(
                notification_id=pk, actor=request.user, reason=reason
            ),
        )
        return confirm_with_reason(
            self,
            request,
            queryset,
            action="requeue_dead",
            title="Requeue notifications",
            legal=queryset.filter(status=Notification.Status.DEAD),
            perform=perform,
            legal_description="DEAD notifications; each gets a fresh budget of attempts",
        )


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
class CampaignAdmin(SupportStaffAccess, ReadOnlyAdmin):
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
    readonly_fields = ("status_summary",)

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

    @admin.display(description="queue length")
    def queue_length(self, obj: Campaign) -> int:
        return obj.targets.filter(status__in=CampaignTarget.SENDABLE).count()

    def _switch(self, request: HttpRequest, queryset: QuerySet, *, start: bool):
        call = campaigns.campaign_start if start else campaigns.campaign_stop

        perform = each_legal(
            self,
            request,
            queryset,
            lambda pk, reason: call(campaign_id=pk, actor=request.user, reason=reason),
        )
        legal = queryset.filter(
            status__in=[Campaign.Status.DRAFT, Campaign.Status.PAUSED]
            if start
            else [Campaign.Status.RUNNING]
        )
        return confirm_with_reason(
            self,
            request,
            queryset,
            action="start_campaigns" if start else "stop_campaigns",
            title="Start campaigns" if start else "Stop (pause) campaigns",
            legal=legal,
            perform=perform,
            legal_description="draft or paused campaigns; sending resumes within a minute"
            if start
            else "running campaigns; no more sends until started again",
        )

    @admin.action(permissions=["operate"], description="Start / resume selected campaigns…")
    def start_campaigns(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._switch(request, queryset, start=True)

    @admin.action(permissions=["operate"], description="Stop (pause) selected campaigns…")
    def stop_campaigns(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._switch(request, queryset, start=False)

    @admin.action(permissions=["operate"], description="Export invalid numbers (CSV)")
    def export_invalid_numbers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return invalid_numbers_csv(CampaignTarget.objects.filter(campaign__in=queryset))


@admin.register(CampaignTarget)
class CampaignTargetAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"phone": "phone"}
    list_display = ("phone", "campaign", "status", "attempts", "next_attempt_at", "last_error")
    list_filter = ("status", "campaign")
    search_fields = ("phone",)
    show_full_result_count = False
    actions = ["export_invalid_numbers"]

    @admin.action(permissions=["operate"], description="Export invalid numbers (CSV)")
    def export_invalid_numbers(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return invalid_numbers_csv(queryset)
