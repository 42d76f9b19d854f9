"""Operators' queues in the admin: the DLQ sweeper's manual review and the bulk actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from opsconsole.admin import (
    ReadOnlyAdmin,
    SupportStaffAccess,
)
from opsconsole.admin_actions import destructive_action
from recovery.admin.queue import pretty_json
from recovery.bulk_actions import bulk_action_transition
from recovery.dlq import manual_review_resolve
from recovery.models import (
    BulkAction,
    BulkActionItem,
    ManualReviewItem,
)


@admin.register(ManualReviewItem)
class ManualReviewItemAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """The DLQ sweeper's manual review queue: retry or dismiss, each with a reason."""

    list_display = ("id", "source", "source_id", "summary", "error", "failed_at", "status")
    list_filter = ("status", "source")
    search_fields = ("=source_id", "summary", "error")
    show_full_result_count = False
    actions = ["retry_items", "dismiss_items"]

    @destructive_action(
        description="Retry selected items and resolve…",
        title="Retry and resolve",
        legal=lambda rows: rows.filter(status=ManualReviewItem.Status.OPEN),
        legal_description="open review items; each failure gets one more attempt",
    )
    def retry_items(self, request: HttpRequest, pk: int, reason: str) -> None:
        manual_review_resolve(review_id=pk, retry=True, actor=request.user, reason=reason)

    @destructive_action(
        description="Dismiss selected items (no retry)…",
        title="Dismiss",
        legal=lambda rows: rows.filter(status=ManualReviewItem.Status.OPEN),
        legal_description="open review items; no retry; kept as resolved",
    )
    def dismiss_items(self, request: HttpRequest, pk: int, reason: str) -> None:
        manual_review_resolve(review_id=pk, retry=False, actor=request.user, reason=reason)


class BulkActionItemInline(admin.TabularInline):
    model = BulkActionItem
    extra = 0
    can_delete = False
    fields = ("source_id", "outcome", "detail", "processed_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BulkAction)
class BulkActionAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Bulk replays (failure inbox, admin replay of many items): approve (a second operator),
    start, pause, resume, abort."""

    list_display = (
        "id",
        "source",
        "provider",
        "status",
        "progress",
        "rate_per_second",
        "moves_money",
        "created_by",
        "approved_by",
        "created_at",
    )
    list_filter = ("status", "source", "moves_money")
    inlines = [BulkActionItemInline]
    actions = ["approve", "start", "pause", "resume", "abort"]
    fields = (
        ("source", "provider", "status"),
        ("moves_money", "rate_per_second"),
        "preview_pretty",
        "filter_description",
        "reason",
        ("created_by", "approved_by"),
        "request_id",
        ("total", "processed", "replayed", "resolved", "failed"),
        ("created_at", "started_at", "finished_at"),
    )
    readonly_fields = ("preview_pretty",)

    @admin.display(description="progress")
    def progress(self, obj: BulkAction) -> str:
        percent = 100 if not obj.total else int(obj.processed * 100 / obj.total)
        return format_html(
            '<progress max="100" value="{}"></progress> {} / {}', percent, obj.processed, obj.total
        )

    @admin.display(description="dry run")
    def preview_pretty(self, obj: BulkAction) -> str:
        return pretty_json(obj.preview)

    @destructive_action(
        description="Approve (a second operator; needed when money moves)…",
        title="Approve bulk actions",
        legal=lambda rows: rows.filter(status__in=["awaiting_approval"]),
        legal_description="bulk actions that are awaiting_approval",
    )
    def approve(self, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb="approve", actor=request.user, reason=reason)

    @destructive_action(
        description="Start…",
        title="Start bulk actions",
        legal=lambda rows: rows.filter(status__in=["ready"]),
        legal_description="bulk actions that are ready",
    )
    def start(self, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb="start", actor=request.user, reason=reason)

    @destructive_action(
        description="Pause…",
        title="Pause bulk actions",
        legal=lambda rows: rows.filter(status__in=["running"]),
        legal_description="bulk actions that are running",
    )
    def pause(self, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb="pause", actor=request.user, reason=reason)

    @destructive_action(
        description="Resume…",
        title="Resume bulk actions",
        legal=lambda rows: rows.filter(status__in=["paused"]),
        legal_description="bulk actions that are paused",
    )
    def resume(self, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb="resume", actor=request.user, reason=reason)

    @destructive_action(
        description="Abort…",
        title="Abort bulk actions",
        legal=lambda rows: rows.filter(
            status__in=["awaiting_approval", "ready", "running", "paused"]
        ),
        legal_description="bulk actions that are awaiting_approval or ready or running or paused",
    )
    def abort(self, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb="abort", actor=request.user, reason=reason)
