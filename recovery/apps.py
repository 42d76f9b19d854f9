from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "recovery"
    verbose_name = "Recovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opsconsole.monitoring.metrics import register_metric_source
        from recovery import workers  # registers the workers

        register_metric_source("recovery_queue", workers.recovery_queue_metrics)

        from opsconsole.outbound.integration_status import register_probe

        register_probe("integration_deliveries", workers.integration_deliveries_probe)

        from opsconsole.monitoring.health import register_component
        from recovery.integrations.circuits import circuits_health

        register_component("circuit_breakers", circuits_health)

        from opsconsole.monitoring.metrics import register_queue
        from recovery.models import ManualReviewItem, RecoveryItem

        register_queue(
            "integration_deliveries",
            RecoveryItem,
            stuck=("failed", "dlq"),
            dead=("dlq",),
            group_by="integration__name",
            group_statuses=tuple(s for s in RecoveryItem.Status.values if s != "succeeded"),
        )
        register_queue("manual_review", ManualReviewItem, stuck=("open",))

        from opsconsole.monitoring.queue_depth import register_sampled
        from recovery.inbox.trends import INBOX_SAMPLE, failure_inbox_reading

        register_sampled(INBOX_SAMPLE, failure_inbox_reading)

        from opsconsole.monitoring.overview import register_overview_section
        from recovery.reports.overview_charts import delivery_outcome_charts

        register_overview_section("Integration deliveries", delivery_outcome_charts)

        from opsconsole.monitoring.overview_attention import register_attention_source
        from recovery.integrations.attention import failing_integration_rows

        register_attention_source("integration_deliveries", failing_integration_rows)

        from opsconsole.db.outbox import register_sink
        from recovery.integrations.outbox import fan_out

        register_sink(fan_out)

        from django.contrib import admin

        from recovery.admin.resolve import attach_resolve_buttons

        attach_resolve_buttons(admin.site)
