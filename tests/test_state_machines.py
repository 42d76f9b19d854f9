"""Every status moves through a django-fsm-2 transition: assigning one by hand is refused."""

from __future__ import annotations

import pytest

from bookings.models import Booking, BookingHold, RefundFailure
from notifications.models import Campaign, CampaignTarget, Notification
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    StripeEvent,
    Voucher,
    WebhookFailure,
)
from recovery.models import ManualReviewItem, RecoveryItem

MODELS = (
    Booking,
    BookingHold,
    RefundFailure,
    Campaign,
    CampaignTarget,
    Notification,
    HostedCheckoutSession,
    Payment,
    Refund,
    StripeEvent,
    Voucher,
    WebhookFailure,
    ManualReviewItem,
    RecoveryItem,
)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_status_is_a_protected_state_machine(model):
    field = model._meta.get_field("status")
    assert type(field).__name__ == "FSMField" and field.protected, model.__name__
    row = model()
    with pytest.raises(AttributeError, match="modification is not allowed"):
        row.status = "anything"
