from __future__ import annotations

import pytest


@pytest.fixture
def providers(httpserver, settings):
    """The checkout provider, email and SMS channels all at one local HTTP server."""
    settings.PAYMENTS_CHECKOUT_URL = httpserver.url_for("/checkout")
    settings.PAYMENTS_HTTP_TIMEOUT_SECONDS = 1
    settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = 1
    settings.NOTIFICATION_CHANNELS = {
        "email": {"url": httpserver.url_for("/email"), "api_key": "email-key"},
        "sms": {"url": httpserver.url_for("/sms"), "api_key": "sms-key"},
    }
    return httpserver
