from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command

from opsconsole.access.roles import ensure_support_groups
from payments import vouchers
from recovery import services
from recovery.models import RecoveryItem
from tests.security.sentinels import AUTH, EMAIL, PHONE, URL_TOKEN


@pytest.fixture
def world(db):
    """The demo world (integrations, failures, sessions, bookings, vouchers, campaigns) and
    one caller per role."""
    ensure_support_groups(ContentType, Permission, Group)
    call_command("demo_data", stdout=open("/dev/null", "w"))  # noqa: SIM115
    users = {
        "no_group": User.objects.create_user("matrix-nobody", password="pw-123456"),
        "booking_client": User.objects.create_user("matrix-client", password="pw-123456"),
        "producer": User.objects.create_user("matrix-producer", password="pw-123456"),
        "viewer": User.objects.get(username="viewer"),
        "operator": User.objects.get(username="operator"),
        "superuser": User.objects.get(username="admin"),
    }
    users["booking_client"].groups.add(Group.objects.get(name="Booking client"))
    users["producer"].groups.add(Group.objects.get(name="Event producer"))
    return users


@pytest.fixture
def planted(db):
    integration = services.integration_create(
        name="erp", endpoint_url=f"https://erp.example.com/hook?token={URL_TOKEN}", actor="t"
    )
    item = services.recovery_item_enqueue(
        integration=integration,
        event_type="booking.confirmed",
        payload={"email": EMAIL, "phone": PHONE},
    )
    RecoveryItem.objects.filter(pk=item.pk).update(
        status="dlq",
        request_snapshot={"headers": {"Authorization": AUTH}, "body": {"email": EMAIL}},
        response_snapshot={"status": 500, "body": f"no such customer {EMAIL}"},
        failure_detail=f"HTTP 500: no such customer {EMAIL}",
    )
    voucher = vouchers.voucher_issue(description="Gift", value=Decimal("5"))
    voucher.customer_email = EMAIL
    voucher.save(update_fields=["customer_email"])
    return integration, item, voucher
