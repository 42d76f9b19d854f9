from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """The opsconsole package is also the platform app every other app builds on.

    Its label is `platform` so Django's permission strings read exactly as the API's
    operator permissions: `platform.member_admin.view` and `platform.member_admin.operate`.
    """

    name = "opsconsole"
    label = "platform"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import structlog
        from django.conf import settings as settings_module
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save
        from django_q.signals import post_spawn

        from opsconsole.access.api_tokens import (
            note_credential_change,
            revoke_tokens_after_credential_change,
        )
        from opsconsole.admin import incidents, platform  # noqa: F401  (registers the pages)
        from opsconsole.failures import failure_sources
        from opsconsole.incidents import recorder  # noqa: F401  (registers the worker)
        from opsconsole.monitoring import health, metrics, queue_depth
        from opsconsole.workers import metrics as worker_metrics
        from opsconsole.workers.heap import settle_task_worker

        post_spawn.connect(settle_task_worker, dispatch_uid="settle-task-worker")
        user_model = get_user_model()
        pre_save.connect(note_credential_change, sender=user_model, dispatch_uid="tokens-pre")
        post_save.connect(
            revoke_tokens_after_credential_change, sender=user_model, dispatch_uid="tokens-post"
        )
        health.register_builtin_components()
        from django.contrib import admin

        from opsconsole.access import identity

        health.register_component("identity_provider", identity.identity_provider_health)
        admin.site.login_form = identity.StaffSignInForm
        admin.site.login_template = "admin/console_login.html"
        failure_sources.autodiscover()
        if settings_module.PROVIDERS_SANDBOX:
            structlog.get_logger(__name__).warning(
                "providers_sandbox_on",
                message="PROVIDERS_SANDBOX=true: sandbox providers stand in for unconfigured "
                "ones (no money moves, no message leaves through them); never in production",
            )
        from django.conf import settings

        from opsconsole.monitoring.tracing import configure_tracing, tracing_enabled

        if settings.OTEL_EXPORTER_OTLP_ENDPOINT and not tracing_enabled():
            configure_tracing(
                endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT, service_name=settings.SERVICE_NAME
            )
        metrics.register_metric_source("workers", worker_metrics.worker_metrics)
        metrics.register_metric_source("queues", queue_depth.queue_depth_metrics)
        from opsconsole.monitoring import alerting_metrics

        metrics.register_metric_source("readiness", alerting_metrics.readiness_metrics)
        metrics.register_metric_source("auth_lockouts", alerting_metrics.lockout_metrics)
        from opsconsole.monitoring.overview import register_overview_section
        from opsconsole.workers.outcome_rollups import every_queue_outcomes

        # After the apps' own sections: a row per worker is long, and the first screen is
        # for the outcome chart of what fails most (the integrations' deliveries).
        register_overview_section("Outcomes of every queue", every_queue_outcomes, order=1)
