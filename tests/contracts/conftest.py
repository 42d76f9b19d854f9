from __future__ import annotations

import pytest

from tests.contracts.stripe import SECRET


@pytest.fixture
def stripe_settings(settings):
    """Stripe's webhook signing secret, as the contract events are signed with it."""
    settings.STRIPE_WEBHOOK_SECRET = SECRET
