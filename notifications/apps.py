from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.conf import settings

        from notifications import workers  # noqa: F401  (registers the workers)
        from notifications.adapters import channel_provider_named
        from notifications.email_tracking import document_tracking_webhook, on_tracking
        from notifications.probes import channel_probe

        tracking.connect(on_tracking, dispatch_uid="notifications.email_tracking")
        document_tracking_webhook("/webhooks/anymail/resend/tracking/")
        from opsconsole.outbound.integration_status import register_probe
        from opsconsole.outbound.providers import Kind, Provider, register_provider

        def channel_provider(channel: str) -> Provider:
            def config() -> dict[str, str]:
                return settings.NOTIFICATION_CHANNELS.get(channel, {})

            def required() -> dict[str, str]:
                if specific := channel_provider_named(config().get("provider", "")):
                    return specific.required()
                return {f"NOTIFICATIONS_{channel.upper()}_URL": config().get("url", "")}

            return Provider(
                channel,
                Kind.MESSAGE,
                required=required,
                switched_off=lambda: config().get("provider") == "none",
            )

        for channel in ("email", "sms", "whatsapp", "push"):
            register_probe(f"{channel}_channel", channel_probe(channel))
            # Message channels fail open when missing (opsconsole/outbound/providers.py).
            register_provider(channel_provider(channel))

        from notifications.models import CampaignTarget, Notification
        from opsconsole.monitoring.metrics import register_queue

        register_queue("notifications", Notification, stuck=("RETRYING", "DEAD"), dead=("DEAD",))
        register_queue(
            "campaign_targets",
            CampaignTarget,
            stuck=("retry_scheduled", "failed", "invalid"),
            age_field="updated_at",
        )
