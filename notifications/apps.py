from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.conf import settings

        from notifications import workers  # noqa: F401  (registers the workers)
        from notifications.email import anymail_required
        from notifications.email_tracking import on_tracking
        from notifications.probes import channel_probe
        from notifications.push import fcm_required
        from notifications.sms import twilio_required
        from notifications.whatsapp import cloud_api_required

        tracking.connect(on_tracking, dispatch_uid="notifications.email_tracking")
        from opsconsole.integration_status import register_probe
        from opsconsole.providers import Kind, Provider, register_provider

        def channel_provider(channel: str) -> Provider:
            def config() -> dict[str, str]:
                return settings.NOTIFICATION_CHANNELS.get(channel, {})

            def required() -> dict[str, str]:
                if config().get("provider") == "anymail":
                    return anymail_required()
                if config().get("provider") == "twilio":
                    return twilio_required()
                if config().get("provider") == "cloud_api":
                    return cloud_api_required()
                if config().get("provider") == "fcm":
                    return fcm_required()
                return {f"NOTIFICATIONS_{channel.upper()}_URL": config().get("url", "")}

            return Provider(
                channel,
                Kind.MESSAGE,
                required=required,
                switched_off=lambda: config().get("provider") == "none",
            )

        for channel in ("email", "sms", "whatsapp", "push"):
            register_probe(f"{channel}_channel", channel_probe(channel))
            # Message channels fail open when missing (opsconsole/providers.py).
            register_provider(channel_provider(channel))

        from notifications.models import CampaignTarget, Notification
        from opsconsole.metrics import register_queue

        register_queue("notifications", Notification, stuck=("RETRYING", "DEAD"))
        register_queue(
            "campaign_targets",
            CampaignTarget,
            stuck=("retry_scheduled", "failed", "invalid"),
            age_field="updated_at",
        )
