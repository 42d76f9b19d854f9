"""Integrations in the admin: their settings through the services, the signing secret
(shown once), pause and resume, rotate and delete, and the last day's deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.timesince import timesince

from opsconsole.access.personal_data import PersonalFieldsAdmin
from opsconsole.admin.actions import destructive_action
from opsconsole.admin.mixins import HistoryWithoutRevert, ServiceSavedAdmin, SupportStaffAccess
from opsconsole.monitoring import charts
from recovery import services
from recovery.integrations.stats import DeliveryStats, delivery_stats, success_rates
from recovery.models import Integration
from recovery.reports.overview_charts import outcome_series


def delivery_chart(stats: DeliveryStats) -> str:
    """The last day's outcomes as stacked hourly bars (the overview's SVG charts)."""
    rate = stats.success_rate
    buckets = [(f"{hour.hour:%H}:00", outcome_series(hour.counts)) for hour in stats.hours]
    return render_to_string(
        "admin/recovery/delivery_chart.html",
        {
            "stats": stats,
            "rate": "-" if rate is None else f"{rate:.1%}",
            "p50": stats.percentile_ms(0.5) or "-",
            "p95": stats.percentile_ms(0.95) or "-",
            "chart": charts.stacked_bars(
                buckets, charts.OUTCOME_SERIES, testid="integration-last-day", width=480
            ),
        },
    )


class _RatesReadOncePerPage(ChangeList):
    """The list's page with every row's 24-hour success rate read in one query, not one
    query per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rates = success_rates([obj.pk for obj in self.result_list])
        for obj in self.result_list:
            obj.success_rate_24h = rates[obj.pk]


@admin.register(Integration)
class IntegrationAdmin(
    PersonalFieldsAdmin, SupportStaffAccess, ServiceSavedAdmin, HistoryWithoutRevert
):
    personal_fields = {"endpoint_url": "url"}
    service_fields = services.INTEGRATION_EDITABLE_FIELDS
    # The secrets never reach a page (the change form, or a history version rendered
    # through it): only their age shows; a new one is shown once by create and rotate.
    exclude = ("signing_secrets",)
    list_display = (
        "name",
        "endpoint_url",
        "subscriptions",
        "enabled",
        "paused",
        "secret_age",
        "limits",
        "success_24h",
        "updated_at",
    )
    list_filter = ("enabled", "paused")
    search_fields = ("name", "endpoint_url")
    readonly_fields = (
        "paused",
        "paused_reason",
        "secret_age",
        "deliveries_24h",
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

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _RatesReadOncePerPage

    @admin.display(description="Success (24 h)")
    def success_24h(self, obj: Integration) -> str:
        if hasattr(obj, "success_rate_24h"):
            rate = obj.success_rate_24h
        else:
            rate = success_rates([obj.pk])[obj.pk]
        return "no attempts" if rate is None else f"{rate:.1%}"

    @admin.display(description="Deliveries, last 24 hours")
    def deliveries_24h(self, obj: Integration) -> str:
        if obj.pk is None:
            return "-"
        return delivery_chart(delivery_stats(obj.pk))

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
        button="Rotate the signing secret…",
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
        button="Delete (disable and keep)…",
        legal=lambda rows: rows.filter(deleted_at__isnull=True),
        legal_description="integrations with no open deliveries; they are disabled and kept "
        "for the audit (one with open items is refused)",
    )
    def delete_integrations(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.integration_delete(integration_id=pk, actor=request.user, reason=reason)

    @destructive_action(
        description="Pause deliveries and replays (containment)…",
        title="Pause integrations",
        button="Pause…",
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
        button="Resume…",
        legal=lambda rows: rows.filter(paused=True),
        legal_description="integrations that are currently paused",
    )
    def resume_integrations(self, request: HttpRequest, pk: int, reason: str) -> None:
        services.integration_set_paused(
            integration_id=pk, paused=False, actor=request.user, reason=reason
        )
