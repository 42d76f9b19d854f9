"""The integrations and their recovery queue in the admin: pause, replay (one by one or as a paced
bulk action), edit and replay, circuits."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from opsconsole.access.personal_data import PersonalFieldsAdmin, shown
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import (
    ReadOnlyAdmin,
    SupportStaffAccess,
    SupportStaffInline,
)
from opsconsole.admin.scale import indexed_values_filter
from opsconsole.db.text_search import MIN_TERM, as_text, contains_pattern
from opsconsole.http.errors import ApplicationError
from opsconsole.http.inputs import is_id
from recovery import services
from recovery.inbox.bulk_actions import bulk_action_create, bulk_action_transition
from recovery.models import (
    DeliveryAttempt,
    ProviderCircuit,
    RecoveryItem,
)

# Above this many eligible items an admin replay runs as a tracked, paced bulk action.
INLINE_REPLAY_LIMIT = 50

# The statuses the text search looks in: exactly its trigram indexes' condition
# (migration 0030), so the planner may use them.
SEARCHABLE_FAILURES = ("failed", "dlq")
# A booking's deliveries are few (one per event and integration); a search shows these many.
MAX_BOOKING_DELIVERIES = 500


def pretty_json(value: Any) -> str:
    """A payload or snapshot, with personal data masked unless the viewer may see it."""
    return format_html(
        '<pre style="white-space:pre-wrap;max-width:70em">{}</pre>',
        # ensure_ascii off: a dry run's "dlq → replayed" reads as an arrow, not \u2192.
        json.dumps(shown("json", value), indent=2, sort_keys=True, default=str, ensure_ascii=False),
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
        chosen = self.value()
        if chosen is None or chosen not in self.BUCKETS:
            return queryset
        _, newer_than, older_than = self.BUCKETS[chosen]
        now = timezone.now()
        if newer_than is not None:
            queryset = queryset.filter(created_at__gte=now - newer_than)
        if older_than is not None:
            queryset = queryset.filter(created_at__lt=now - older_than)
        return queryset


class DeliveryAttemptInline(SupportStaffInline, admin.StackedInline):
    """Every attempt's request and response (status, headers, body, latency), masked as on
    the item; read by support staff, whose access is the console's permission."""

    model = DeliveryAttempt
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
        "ordering_key",
        "created_at",
    )
    list_filter = ("status", "integration", indexed_values_filter("failure_code"), AgeFilter)
    # Every search is one an index serves (see get_search_results): a plain substring search
    # read all ten million rows.
    search_fields = ("failure_code__exact",)
    search_help_text = (
        "An item id or booking id, an event id, a failure code; or, among open failures "
        "(failed, DLQ), words of the partner's error or a payload value such as an email."
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()[:200]
        if not term:
            return queryset, False
        found = Q(failure_code=term) | Q(event_id=term)
        if is_id(term):
            # The item, or the deliveries about a booking, found first on their own indexes
            # (item_payload_booking_id_idx): OR-ed into the list's ORDER BY id LIMIT, the
            # planner guesses a JSON key's equality at thousands of rows and walks the whole
            # table backwards instead. A number is never a substring search either.
            number = int(term)
            about_booking = RecoveryItem.objects.filter(
                payload__has_key="booking_id", payload__booking_id=number
            ).values_list("pk", flat=True)[:MAX_BOOKING_DELIVERIES]
            found |= Q(pk__in=[number, *about_booking])
        elif len(term) >= MIN_TERM:
            pattern = contains_pattern(term)
            found |= Q(status__in=SEARCHABLE_FAILURES) & (
                Q(failure_detail__ilike=pattern) | Q(payload_text__ilike=pattern)
            )
        return queryset.alias(payload_text=as_text("payload")).filter(found), False

    list_select_related = ("integration",)
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Every page's title names the item's integration (RecoveryItem.__str__): one query.
        return super().get_queryset(request).select_related("integration")

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
        ("event_id", "ordering_key", "order_position"),
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

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The edit-and-replay button is offered to those who may act, as the page's other
        # actions are: a viewer pressing it would only reach the refused page.
        fields = super().get_fields(request, obj)
        if self.has_operate_permission(request):
            return fields
        return [name for name in fields if name != "edit_link"]

    @admin.display(description="in its key's order")
    def order_position(self, obj: RecoveryItem) -> str:
        """Whether this item waits for an earlier one, or holds later ones back."""
        if not obj.ordering_key:
            return "not ordered"
        same_key = RecoveryItem.objects.filter(
            integration_id=obj.integration_id,
            ordering_key=obj.ordering_key,
            status__in=RecoveryItem.HOLDS_ORDER,
        )
        waiting_for = same_key.filter(id__lt=obj.pk).order_by("id").first()
        held = (
            same_key.filter(id__gt=obj.pk).count() if obj.status in RecoveryItem.HOLDS_ORDER else 0
        )
        parts = []
        if waiting_for is not None:
            parts.append(f"waits for #{waiting_for.pk} ({waiting_for.status})")
        if held:
            parts.append(
                f"holds back {held} later item(s) until it is delivered, replayed or resolved"
            )
        return "; ".join(parts) or "next in its key's order"

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
        button="Replay…",
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
