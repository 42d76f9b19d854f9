from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    """The customer-facing surfaces an operator may suspend during an incident (promotional
    banners, loyalty redemptions), each behind a waffle switch, and the promotional banners
    themselves."""

    name = "storefront"
    verbose_name = "Storefront"
    default_auto_field = "django.db.models.BigAutoField"
