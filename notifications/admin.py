from __future__ import annotations

from django.contrib import admin

from notifications.models import CommunicationLog
from opsconsole.admin import ReadOnlyAdmin, SupportStaffAccess


@admin.register(CommunicationLog)
class CommunicationLogAdmin(SupportStaffAccess, ReadOnlyAdmin):
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
