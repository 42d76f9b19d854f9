from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from bookings.models import Booking, Resource
from notifications.models import Campaign, Notification
from opsconsole.models import Incident
from payments.models import (
    HostedCheckoutSession,
    Payment,
    Refund,
    Voucher,
    VoucherRedemptionFailure,
    WebhookFailure,
)
from recovery.models import Integration, RecoveryItem

COUNTED = (
    User,
    Integration,
    RecoveryItem,
    HostedCheckoutSession,
    Resource,
    Booking,
    Campaign,
    Voucher,
    VoucherRedemptionFailure,
    Payment,
    Refund,
    WebhookFailure,
    Incident,
    Notification,
)


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_data", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.mark.django_db
def test_a_second_run_adds_nothing_and_keeps_the_admins_password(settings):
    settings.PROVIDERS_SANDBOX = True
    first = demo()
    password = re.search(r"user admin\s+password (\S+)", first).group(1)
    loaded = counts()
    assert all(loaded.values()), loaded
    second = demo()
    assert counts() == loaded
    assert "password unchanged" in second
    assert User.objects.get(username="admin").check_password(password)

    third = demo("--reset-password")
    new_password = re.search(r"user admin\s+password (\S+)", third).group(1)
    admin = User.objects.get(username="admin")
    assert new_password != password
    assert admin.check_password(new_password) and not admin.check_password(password)
    for support in ("operator", "viewer"):
        assert User.objects.get(username=support).check_password(new_password)


@pytest.mark.django_db
def test_the_logins_and_the_address_printed_are_those_make_run_serves(settings, monkeypatch):
    settings.PROVIDERS_SANDBOX = True
    monkeypatch.setenv("OPSCONSOLE_PORT", "8123")
    out = demo()
    assert "http://127.0.0.1:8123/admin/" in out
    assert "http://127.0.0.1:8000" not in out
    for username in ("admin", "operator", "viewer"):
        assert re.search(rf"user {username}\s+password \S+", out), out
