from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from notifications import workers  # noqa: F401  (registers the workers)
        from opsconsole.integration_status import ProbeResult, register_probe

        def channel_probe(channel: str):
            def probe() -> ProbeResult:
                if not settings.NOTIFICATION_CHANNELS.get(channel, {}).get("url"):
                    return ProbeResult("amber", "sandbox (records, sends nothing)")
                return ProbeResult("green", "configured")

            return probe

        for channel in ("email", "sms", "whatsapp", "push"):
            register_probe(f"{channel}_channel", channel_probe(channel))

        from notifications.models import CampaignTarget, Notification
        from opsconsole.metrics import register_queue

        register_queue("notifications", Notification, stuck=("RETRYING", "DEAD"))
        register_queue(
            "campaign_targets",
            CampaignTarget,
            stuck=("retry_scheduled", "failed", "invalid"),
            age_field="updated_at",
        )
