"""Operators' queues in the admin: the DLQ sweeper's manual review and the bulk actions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html

from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import (
    ReadOnlyAdmin,
    SupportStaffAccess,
    SupportStaffInline,
)
from recovery.admin.queue import pretty_json
from recovery.inbox.bulk_actions import bulk_action_transition
from recovery.inbox.dlq import manual_review_resolve
from recovery.models import (
    BulkAction,
    BulkActionItem,
    ManualReviewItem,
    WeeklyDigest,
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


class BulkActionItemInline(SupportStaffInline, admin.TabularInline):
    """Each item's outcome and why (a refusal's reason), read by support staff."""

    model = BulkActionItem
    fields = ("source_id", "outcome", "detail", "processed_at")
    readonly_fields = fields


def bulk_verb(verb: str, description: str, legal_statuses: list[str]):
    """A bulk action transition as an admin action: the confirmation page counts the selected
    actions in `legal_statuses`, and each one goes through the audited service."""

    def act(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int, reason: str) -> None:
        bulk_action_transition(action_id=pk, verb=verb, actor=request.user, reason=reason)

    act.__name__ = verb
    return destructive_action(
        description=description,
        title=f"{verb.capitalize()} bulk actions",
        button=f"{verb.capitalize()}…",
        legal=lambda rows: rows.filter(status__in=legal_statuses),
        legal_description=f"bulk actions that are {' or '.join(legal_statuses)}",
    )(act)


@admin.register(BulkAction)
class BulkActionAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Bulk replays (failure inbox, admin replay of many items): approve (a second operator),
    start, pause, resume, abort."""

    list_display = (
        "id",
        "mode",
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
    list_filter = ("status", "mode", "source", "moves_money")
    inlines = [BulkActionItemInline]
    actions = ["approve", "start", "pause", "resume", "abort"]
    fields = (
        "live_progress",
        ("mode", "source", "provider", "status"),
        ("moves_money", "rate_per_second"),
        "preview_pretty",
        "filter_description",
        "reason",
        ("created_by", "approved_by"),
        "request_id",
        ("total", "processed", "replayed", "resolved", "failed"),
        ("created_at", "started_at", "finished_at"),
    )
    readonly_fields = ("preview_pretty", "live_progress")

    @admin.display(description="live")
    def live_progress(self, obj: BulkAction) -> str:
        """Progress, the rate and the ETA (remaining at that rate), refreshed every 5 s while
        the action runs. The rate is over the last minute, or since the start when it began
        less than a minute ago (a fresh action is not "0.0/s"), and the average once done."""
        now = timezone.now()
        rate_label, per_second = "rate", None
        if obj.started_at and obj.finished_at:
            spent = max(1.0, (obj.finished_at - obj.started_at).total_seconds())
            rate_label, per_second = "average rate", obj.processed / spent
        elif obj.started_at:
            window = min(60.0, max(1.0, (now - obj.started_at).total_seconds()))
            done_lately = obj.items.filter(
                processed_at__gte=now - timedelta(seconds=window)
            ).count()
            rate_label = f"rate over the last {window:.0f} s"
            per_second = done_lately / window
        remaining = max(0, obj.total - obj.processed)
        return render_to_string(
            "admin/recovery/bulk_action_live.html",
            {
                "action": obj,
                "total": obj.total,
                "rate_label": rate_label,
                "per_second": per_second,
                "eta_seconds": remaining / per_second if per_second and remaining else None,
                "live": obj.status in ("running", "ready", "awaiting_approval", "paused"),
            },
        )

    @admin.display(description="progress")
    def progress(self, obj: BulkAction) -> str:
        percent = 100 if not obj.total else int(obj.processed * 100 / obj.total)
        return format_html(
            '<progress max="100" value="{}"></progress> {} / {}', percent, obj.processed, obj.total
        )

    @admin.display(description="dry run")
    def preview_pretty(self, obj: BulkAction) -> str:
        return pretty_json(obj.preview)

    approve = bulk_verb(
        "approve", "Approve (a second operator; needed when money moves)…", ["awaiting_approval"]
    )
    start = bulk_verb("start", "Start…", ["ready"])
    pause = bulk_verb("pause", "Pause…", ["running"])
    resume = bulk_verb("resume", "Resume…", ["paused"])
    abort = bulk_verb("abort", "Abort…", ["awaiting_approval", "ready", "running", "paused"])


@admin.register(WeeklyDigest)
class WeeklyDigestAdmin(SupportStaffAccess, ReadOnlyAdmin):
    """Each week's operations digest as sent (send_weekly_digest --week sends one again)."""

    list_display = ("week", "sends", "last_sent_at", "recipient", "last_failure")
    fields = (
        *("week", ("period_start", "period_end"), "recipient", "sends", "last_sent_at"),
        *("last_failure", "summary_json"),
    )
    readonly_fields = (
        "week",
        "period_start",
        "period_end",
        "recipient",
        "sends",
        "last_sent_at",
        "last_failure",
        "summary_json",
    )

    @admin.display(description="Summary")
    def summary_json(self, obj: WeeklyDigest) -> str:
        return pretty_json(obj.summary)
