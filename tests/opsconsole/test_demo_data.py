from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from bookings.models import Booking, Resource
from notifications.models import Campaign
from payments.models import HostedCheckoutSession, Voucher
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
