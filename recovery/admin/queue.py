"""The integrations and their recovery queue in the admin: pause, replay (one by one or as a paced
bulk action), edit and replay, circuits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from opsconsole.admin import (
    HistoryWithoutRevert,
    ReadOnlyAdmin,
    ServiceSavedAdmin,
    SupportStaffAccess,
)
from opsconsole.admin_actions import destructive_action
from opsconsole.errors import ApplicationError
from opsconsole.personal_data import PersonalFieldsAdmin, shown
from recovery import services
from recovery.bulk_actions import bulk_action_create, bulk_action_transition
from recovery.models import (
    DeliveryAttempt,
    Integration,
    ProviderCircuit,
    RecoveryItem,
)

# Above this many eligible items an admin replay runs as a tracked, paced bulk action.
INLINE_REPLAY_LIMIT = 50


def pretty_json(value: Any) -> str:
    """A payload or snapshot, with personal data masked unless the viewer may see it."""
    return format_html(
        '<pre style="white-space:pre-wrap;max-width:70em">{}</pre>',
        json.dumps(shown("json", value), indent=2, sort_keys=True, default=str),
    )


@admin.register(Integration)
class IntegrationAdmin(
    PersonalFieldsAdmin, SupportStaffAccess, ServiceSavedAdmin, HistoryWithoutRevert
):
    personal_fields = {"endpoint_url": "url"}
    service_fields = services.INTEGRATION_EDITABLE_FIELDS
    list_display = (
        "name",
        "endpoint_url",
        "subscriptions",
        "enabled",
        "paused",
        "secret_age",
        "limits",
        "updated_at",
    )
    list_filter = ("enabled", "paused")
    search_fields = ("name", "endpoint_url")
    readonly_fields = (
        "paused",
        "paused_reason",
        "secret_age",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    actions = [
        "pause_integrations",
        "resume_integrations",
        "rotate_signing_secrets",
        "delete_integrations",
    ]

    @admin.display(description="Event types")
    def subscriptions(self, obj: Integration) -> str:
        return ", ".join(obj.event_types or []) or "none"

    @admin.display(description="Signing secret age")
    def secret_age(self, obj: Integration) -> str:
        secrets = obj.signing_secrets or []
        if not secrets:
            return "no secret"
        created = datetime.fromisoformat(secrets[0]["created_at"])
        grace = " (+1 in its 24 h grace)" if len(obj.active_secrets()) > 1 else ""
        return f"{timesince(created)}{grace}"

    @admin.display(description="Limits")
    def limits(self, obj: Integration) -> str:
        return f"{obj.max_in_flight} in flight, {obj.rate_per_second}/s"

    def reveal_secret(self, request: HttpRequest, integration: Integration) -> None:
        secret = getattr(integration, "revealed_secret", "")
        if secret:
            self.message_user(
                request,
                f"Signing secret for {integration.name}, shown this once: {secret}",
                messages.WARNING,
            )

    def check_through_service(self, changes: dict[str, Any]) -> None:
        services.integration_check_fields(changes)

    def save_through_service(
        self,
        request: HttpRequest,
        obj: Integration,
        changes: dict[str, Any],
        change: bool,
        reason: str,
    ) -> Integration:
        if change:
            return services.integration_update(
                integration_id=obj.pk, changes=changes, actor=request.user, reason=reason
            )
        integration = services.integration_create(**changes, actor=request.user, reason=reason)
        self.reveal_secret(request, integration)
        return integration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting disables and keeps, through the action below

    @destructive_action(
        description="Rotate the signing secret…",
        title="Rotate signing secrets",
        legal=lambda rows: rows.filter(deleted_at__isnull=True),
        legal_description="integrations not deleted; each gets a new secret, shown once, and "
        "the old one keeps signing for 24 hours",
    )
    def rotate_signing_secrets(self, request: HttpRequest, pk: int, reason: str) -> None:
        integration = services.integration_rotate_secret(
            integration_id=pk, actor=request.user, reason=reason
        )
        self.reveal_secret(request, integration)

    @destructive_action(
        description="Delete (disable and keep)…",
        title="Delete integrations",
        legal=lambda rows: rows.filter(deleted_at__isnull=True),
        legal_description="integrations with no open deliveries; they are disabled and kept "
        "for the audit (one with open items is refused)",
    )
    def delete_integrations(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.integration_delete(integration_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Pause deliveries and replays (containment)…",
        title="Pause integrations",
        legal=lambda rows: rows.filter(paused=False),
        legal_description="integrations that are currently running; their deliveries and "
        "replays stop",
    )
    def pause_integrations(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.integration_set_paused(
            integration_id=pk, paused=True, actor=request.user, reason=reason
        )

    @destructive_action(
        description="Resume deliveries…",
        title="Resume integrations",
        legal=lambda rows: rows.filter(paused=True),
        legal_description="integrations that are currently paused",
    )
    def resume_integrations(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.integration_set_paused(
            integration_id=pk, paused=False, actor=request.user, reason=reason
        )


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {
        "1h": ("Under 1 hour", timedelta(hours=1), None),
        "24h": ("1 hour to 1 day", timedelta(days=1), timedelta(hours=1)),
        "7d": ("1 to 7 days", timedelta(days=7), timedelta(days=1)),
        "older": ("Older than 7 days", None, timedelta(days=7)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in self.BUCKETS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in self.BUCKETS:
            return queryset
        _, newer_than, older_than = self.BUCKETS[self.value()]
        now = timezone.now()
        if newer_than is not None:
            queryset = queryset.filter(created_at__gte=now - newer_than)
        if older_than is not None:
            queryset = queryset.filter(created_at__lt=now - older_than)
        return queryset


class DeliveryAttemptInline(admin.StackedInline):
    """Every attempt's request and response (status, headers, body, latency)."""

    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        ("replay_count", "number", "outcome", "http_status", "duration_ms"),
        ("failure_code", "retry_after_seconds", "started_at"),
        "request_pretty",
        "response_pretty",
    )
    readonly_fields = (
        "replay_count",
        "number",
        "outcome",
        "http_status",
        "duration_ms",
        "failure_code",
        "retry_after_seconds",
        "started_at",
        "request_pretty",
        "response_pretty",
    )

    @admin.display(description="request")
    def request_pretty(self, obj: DeliveryAttempt) -> str:
        return pretty_json(obj.request_snapshot)

    @admin.display(description="response")
    def response_pretty(self, obj: DeliveryAttempt) -> str:
        return pretty_json(obj.response_snapshot)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RecoveryItem)
class RecoveryItemAdmin(PersonalFieldsAdmin, SupportStaffAccess, ReadOnlyAdmin):
    personal_fields = {"failure_detail": "text"}
    list_display = (
        "id",
        "integration",
        "event_type",
        "status",
        "attempt_count",
        "failure_code",
        "next_retry_at",
        "created_at",
    )
    list_filter = ("status", "integration", "failure_code", AgeFilter)
    search_fields = ("=id", "event_type", "=failure_code", "=request_id")
    list_select_related = ("integration",)
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]
    actions = ["replay_items"]
    fields = (
        "integration",
        "event_type",
        "status",
        ("attempt_count", "max_attempts", "replay_count"),
        "next_retry_at",
        ("lease_owner", "lease_expires_at"),
        "failure_code",
        "failure_detail",
        "request_id",
        "traceparent",
        "payload_pretty",
        "payload_override_pretty",
        "edit_link",
        "request_snapshot_pretty",
        "response_snapshot_pretty",
        ("created_at", "last_attempt_at", "succeeded_at"),
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing is allowed; every change goes through an action that calls a service.
        return False

    @admin.display(description="payload")
    def payload_pretty(self, obj: RecoveryItem) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="operator's edited payload")
    def payload_override_pretty(self, obj: RecoveryItem) -> str:
        return pretty_json(obj.payload_override) if obj.payload_override is not None else "none"

    @admin.display(description="edit and replay")
    def edit_link(self, obj: RecoveryItem) -> str:
        if obj.status not in RecoveryItem.REPLAYABLE:
            return "only failed or dlq items can be edited and replayed"
        return format_html(
            '<a class="button" href="{}">Edit the payload and replay…</a>',
            reverse("recovery-item-edit-and-replay", args=[obj.pk]),
        )

    @admin.display(description="request snapshot")
    def request_snapshot_pretty(self, obj: RecoveryItem) -> str:
        return pretty_json(obj.request_snapshot)

    @admin.display(description="response snapshot")
    def response_snapshot_pretty(self, obj: RecoveryItem) -> str:
        return pretty_json(obj.response_snapshot)

    @destructive_action(
        description="Replay selected failed/DLQ items…",
        title="Replay items",
        legal=lambda rows: rows.filter(
            status__in=RecoveryItem.REPLAYABLE, integration__paused=False, integration__enabled=True
        ),
        legal_description="failed or dlq items of running integrations; "
        f"more than {INLINE_REPLAY_LIMIT} run as a paced bulk action",
        each=False,
    )
    def replay_items(self, request: HttpRequest, rows: QuerySet, reason: str) -> int:
        ids = list(rows.values_list("pk", flat=True))
        if len(ids) > INLINE_REPLAY_LIMIT:
            return self._replay_in_background(request, ids, reason).total
        done = 0
        for item in rows.only("pk", "integration_id"):
            try:
                services.recovery_item_replay(
                    integration_id=item.integration_id,
                    item_id=item.pk,
                    actor=request.user,
                    reason=reason,
                )
                done += 1
            except ApplicationError:
                pass  # changed state since the confirmation page; counted as skipped
        return done

    def _replay_in_background(self, request: HttpRequest, ids: list[int], reason: str):
        """Many items: one bulk action (dry run kept, paced, pausable), started at once since
        the operator confirmed on the page before; deliveries move no money."""
        action = bulk_action_create(
            actor=request.user,
            reason=reason,
            source="integration_delivery",
            ids=ids,
            rate_per_second=settings.ADMIN_BULK_REPLAY_RATE_PER_SECOND,
            filter_description={"admin_filter": request.GET.urlencode(), "selected": len(ids)},
        )
        bulk_action_transition(action_id=action.pk, verb="start", actor=request.user, reason=reason)
        self.message_user(
            request,
            format_html(
                'Bulk action <a href="{}">#{}</a> is replaying {} items at {} a second; pause '
                "or abort it there.",
                reverse("admin:recovery_bulkaction_change", args=[action.pk]),
                action.pk,
                action.total,
                action.rate_per_second,
            ),
            messages.INFO,
        )
        return action


@admin.register(ProviderCircuit)
class ProviderCircuitAdmin(SupportStaffAccess, ReadOnlyAdmin):
    list_display = ("integration", "state", "consecutive_failures", "opened_at", "next_probe_at")
    list_filter = ("state",)
