from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"
    verbose_name = "Bookings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bookings import waitlist, workers  # noqa: F401  (signal receivers and workers)
        from bookings.receivers import apply_card_payment
        from payments.signals import payment_received

        payment_received.connect(apply_card_payment, dispatch_uid="bookings.apply_card_payment")
        from bookings.models import (
            Booking,
            BookingHold,
            CatalogChange,
            Fulfillment,
            Nudge,
            RefundFailure,
        )
        from opsconsole.monitoring.metrics import register_queue

        register_queue("booking_holds", BookingHold)
        register_queue("bookings", Booking, stuck=("CANCELLING",), age_field="updated_at")
        register_queue("refund_failures", RefundFailure, stuck=("PENDING_MANUAL",))
        # The incident guide's workers (docs/runbooks/incident-response.md).
        register_queue("fulfillments", Fulfillment, dead=("PARKED",), age_field="updated_at")
        register_queue(
            "catalog_changes", CatalogChange, stuck=("FAILING", "PARKED"), age_field="updated_at"
        )
        register_queue("nudges", Nudge, dead=("PARKED",), age_field="updated_at")
        from bookings.metrics import incident_guide_metrics
        from opsconsole.monitoring.metrics import register_metric_source

        register_metric_source("incident_guide", incident_guide_metrics)
