from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from opsconsole.outbound.providers import Kind, Provider, register_provider

        # Money providers fail closed when missing (opsconsole/outbound/providers.py).
        register_provider(
            Provider(
                "stripe",
                Kind.MONEY,
                required=lambda: {
                    "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY,
                    "STRIPE_API_BASE": settings.STRIPE_API_BASE,
                },
            )
        )
        from payments.stripe_checkout import stripe_checkout_required

        register_provider(
            Provider(
                "checkout",
                Kind.MONEY,
                required=lambda: (
                    stripe_checkout_required()
                    if settings.PAYMENTS_CHECKOUT_PROVIDER == "stripe"
                    else {"PAYMENTS_CHECKOUT_URL": settings.PAYMENTS_CHECKOUT_URL}
                ),
            )
        )
        from opsconsole.outbound.integration_status import register_probe
        from payments import probes, workers  # noqa: F401  (registers the refund retry worker)

        register_probe("voucher_png", probes.voucher_png_probe)
        register_probe("stripe", probes.stripe_probe)
        register_probe("checkout_provider", probes.checkout_provider_probe)

        from opsconsole.monitoring.metrics import register_queue
        from payments.models import HostedCheckoutSession, Refund, WebhookFailure

        register_queue(
            "hosted_sessions", HostedCheckoutSession, stuck=("expired", "failed", "abandoned")
        )
        register_queue("refunds", Refund, stuck=("FAILED",))
        register_queue("webhook_failures", WebhookFailure, stuck=("PENDING_MANUAL",))
