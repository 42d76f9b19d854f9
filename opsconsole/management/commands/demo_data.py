"""Demo data for `make run`: an admin login and API token, support users, and a queue with
items in every state. Safe to run again: what exists is kept, the admin's password too
(unless --reset-password); each run prints a fresh API token."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from bookings import services as bookings
from bookings.models import Resource, WaitlistEntry
from notifications.campaigns import campaign_create
from notifications.models import Campaign
from opsconsole.api_tokens import api_token_issue
from opsconsole.roles import ensure_support_groups
from payments import services as payments
from payments.models import HostedCheckoutSession, Voucher
from payments.vouchers import voucher_issue
from recovery import services
from recovery.models import Integration, RecoveryItem

DEMO_INTEGRATIONS = {
    # Nothing listens on port 9 locally: deliveries fail with connection refused and walk
    # through retrying into the DLQ, which is what a recovery console is for.
    "crm-sync": "http://127.0.0.1:9/webhooks/crm",
    "accounting-export": "http://127.0.0.1:9/webhooks/accounting",
}


class Command(BaseCommand):
    help = "Load demo data and print the admin login and an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Give the existing admin (and demo users) a new password and print it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_support_groups(ContentType, Permission, Group)
        password = secrets.token_urlsafe(12)
        admin, admin_created = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@example.test"}
        )
        admin.is_staff = admin.is_superuser = True
        reset = admin_created or options["reset_password"]
        if reset:
            admin.set_password(password)
        admin.save()
        _, token_key = api_token_issue(user=admin, actor="demo", reason="demo data")
        for username, group in (("viewer", "Support viewer"), ("operator", "Support operator")):
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True}
            )
            if created or options["reset_password"]:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get(name=group))
        self._load_queue()
        self._load_hosted_sessions()
        self._load_bookings(admin)
        if not Campaign.objects.exists():
            campaign_create(
                name="Spring courts promo",
                template="spring_promo",
                phones=["+351910000101", "+351910000102", "not-a-number"],
                throttle_per_minute=30,
                actor="demo",
            )
        if not Voucher.objects.exists():
            for scope in ("*", "lisbon-1,lisbon-2"):
                voucher_issue(
                    description="Free court hour", value=Decimal("12.00"), station_scope=scope
                )
        shown = password if reset else "unchanged (demo_data --reset-password sets a new one)"
        self.stdout.write(
            self.style.SUCCESS(
                "\nOps Console demo is ready.\n"
                f"  Admin:     http://127.0.0.1:8000/admin/  user admin  password {shown}\n"
                f"  API token: {token_key}\n"
                f"  Try:       curl -H 'Authorization: Token {token_key}' "
                "http://127.0.0.1:8000/platform/integrations\n"
            )
        )

    @transaction.atomic
    def _load_queue(self) -> None:
        for name, url in DEMO_INTEGRATIONS.items():
            integration = Integration.objects.filter(name=name).first()
            if integration is None:
                integration = services.integration_create(name=name, endpoint_url=url, actor="demo")
            if integration.items.exists():
                continue
            for n in range(3):
                services.recovery_item_enqueue(
                    integration=integration,
                    event_type="booking.confirmed",
                    payload={"booking_id": 1000 + n, "integration": name},
                    actor="demo",
                )
            # Items already parked, as a worker would have left them after an outage.
            for status, code in (("dlq", "HTTP_503"), ("failed", "HTTP_400")):
                parked = RecoveryItem(
                    integration=integration,
                    event_type="payment.refunded",
                    payload={"refund_id": f"re_{name}_{status}"},
                    status=status,
                    attempt_count=5 if status == "dlq" else 1,
                    next_retry_at=None,
                    failure_code=code,
                    failure_detail=f"{code.replace('_', ' ')} from the demo upstream",
                    response_snapshot={"status": int(code[5:]), "body": "demo upstream error"},
                )
                parked.failure_fingerprint = parked.inbox_fingerprint()
                parked.save()

    @transaction.atomic
    def _load_hosted_sessions(self) -> None:
        """Checkout links that expired unpaid; one has been retried 4 times without reaching
        the customer (the runbook's "stalled" case)."""
        if HostedCheckoutSession.objects.exists():
            return
        now = timezone.now()
        for n, (email, phone) in enumerate(
            [("ana@example.test", "+351910000001"), ("ben@example.test", ""), ("", "")]
        ):
            session = payments.hosted_session_create(
                reference=f"hcs_demo_{n + 1}",
                amount=Decimal("49.90") + n * 10,
                currency="EUR",
                customer_email=email,
                customer_phone=phone,
                checkout_url=f"https://checkout.sandbox.invalid/pay/hcs_demo_{n + 1}/expired",
                expires_at=now - timedelta(hours=n + 1),
                actor="demo",
            )
            if not (email or phone):
                HostedCheckoutSession.objects.filter(pk=session.pk).update(
                    retry_count=4, attempts_since_notification=4
                )

    def _load_bookings(self, customer: User) -> None:
        """Two courts; tomorrow 10:00 on court 1 is booked, 11:00 is held, and someone is
        waiting for 10:00 should it be cancelled."""
        if Resource.objects.exists():
            return
        court, _ = Resource.objects.get_or_create(name="Court 1")
        Resource.objects.get_or_create(name="Court 2")
        tomorrow = (timezone.now() + timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        hold = bookings.booking_hold_create(
            resource_id=court.pk,
            start_time=tomorrow,
            end_time=tomorrow + timedelta(hours=1),
            holder=customer,
        )
        bookings.booking_hold_confirm(hold_id=hold.pk, customer=customer)
        bookings.booking_hold_create(
            resource_id=court.pk,
            start_time=tomorrow + timedelta(hours=1),
            end_time=tomorrow + timedelta(hours=2),
            holder=customer,
        )
        WaitlistEntry.objects.create(
            resource=court,
            email="waiting@example.test",
            start_time=tomorrow,
            end_time=tomorrow + timedelta(hours=1),
        )
