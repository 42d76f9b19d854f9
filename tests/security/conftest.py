from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import transaction

from opsconsole.access.roles import ensure_support_groups
from payments import vouchers
from recovery import services
from recovery.models import RecoveryItem
from tests.security.sentinels import AUTH, EMAIL, PHONE, URL_TOKEN


def build_world() -> dict[str, User]:
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
def world(db) -> dict[str, User]:
    return build_world()


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker) -> Iterator[dict[str, User]]:
    """The same world built once for a module's tests, in a transaction rolled back after
    the module's last test. Each test runs in a savepoint inside it (pytest-django's `db`),
    so what one test changes the next never sees; the demo world costs a second to build
    and the matrix asks it for every route."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


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
