"""Demo data for `make run`: an admin login and API token, support users, a queue with items
in every state, and practice cases that stay broken until an operator acts (a partner whose
endpoint refuses, a paused one, a DLQ group past the sweeper's retry, a stalled checkout
session; the rest in opsconsole/demo_world.py). Safe to run again: what exists is kept, the
passwords too (unless --reset-password); each run prints a fresh API token."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from bookings import services as bookings
from bookings.models import Resource, WaitlistEntry
from notifications.communicators import CommunicationOutcome
from opsconsole.access.api_tokens import api_token_issue
from opsconsole.access.roles import ensure_support_groups
from opsconsole.demo_world import load_practice_world
from payments import services as payments
from payments.models import HostedCheckoutSession, Voucher
from payments.vouchers import voucher_issue
from recovery import services
from recovery.models import DeliveryAttempt, Integration, RecoveryItem
from recovery.services.delivery import delivery_request

DEMO_INTEGRATIONS = {
    # Nothing listens on port 9 locally: deliveries fail with connection refused and walk
    # through retrying into the DLQ, which is what a recovery console is for. They keep
    # failing until an operator points the integration at a working endpoint.
    "crm-sync": "http://127.0.0.1:9/webhooks/crm",
    "accounting-export": "http://127.0.0.1:9/webhooks/accounting",
}
# Paused by an operator during the partner's maintenance: its items wait, undelivered, and
# its replays are refused until someone resumes it.
PAUSED = {"accounting-export": "partner maintenance window; resume when they confirm"}
# The DLQ group: parked a day ago, past DLQ_MANUAL_REVIEW_AFTER_HOURS, so the sweeper hands
# it to manual review instead of retrying it (a recent transient failure it would replay).
DLQ_GROUP_SIZE = 3
DEMO_USERS = {
    "admin": "superuser: everything",
    "operator": "Support operator: replays, resolves, pauses",
    "viewer": "Support viewer: reads only",
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
        # One new password for every demo user this run creates or resets; the others keep
        # theirs, which were printed when they were set.
        password = secrets.token_urlsafe(12)
        admin, admin_created = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@example.test"}
        )
        admin.is_staff = admin.is_superuser = True
        shown: dict[str, str] = {}
        if admin_created or options["reset_password"]:
            admin.set_password(password)
            shown["admin"] = password
        admin.save()
        _, token_key = api_token_issue(user=admin, actor="demo", reason="demo data")
        for username, group in (("operator", "Support operator"), ("viewer", "Support viewer")):
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": True}
            )
            if created or options["reset_password"]:
                user.set_password(password)
                user.save()
                shown[username] = password
            user.groups.add(Group.objects.get(name=group))
        self._load_queue()
        self._load_hosted_sessions()
        self._load_bookings(admin)
        if not Voucher.objects.exists():
            for scope in ("*", "lisbon-1,lisbon-2"):
                voucher_issue(
                    description="Free court hour", value=Decimal("12.00"), station_scope=scope
                )
        load_practice_world(admin)
        self.stdout.write(self.style.SUCCESS(_ready(shown, token_key)))

    @transaction.atomic
    def _load_queue(self) -> None:
        for name, url in DEMO_INTEGRATIONS.items():
            integration = Integration.objects.filter(name=name).first()
            if integration is None:
                integration = services.integration_create(name=name, endpoint_url=url, actor="demo")
                if name in PAUSED:
                    services.integration_set_paused(
                        integration_id=integration.pk,
                        paused=True,
                        actor="demo",
                        reason=PAUSED[name],
                    )
            if integration.items.exists():
                continue
            for n in range(3):
                services.recovery_item_enqueue(
                    integration=integration,
                    event_type="booking.confirmed",
                    payload={"booking_id": 1000 + n, "integration": name},
                    actor="demo",
                )
            self._park(integration)

    def _park(self, integration: Integration) -> None:
        """Items already parked, as the worker left them: a DLQ group from yesterday's
        outage (no service makes the past) and a payload the partner refused (HTTP 400, not
        transient: the sweeper never retries it)."""
        name = integration.name
        url = urlsplit(integration.endpoint_url)
        where = f"{url.hostname}:{url.port}"
        failed_at = timezone.now() - timedelta(hours=settings.DLQ_MANUAL_REVIEW_AFTER_HOURS + 2)
        for n in range(DLQ_GROUP_SIZE):
            self._parked(
                integration,
                f"re_{name}_dlq_{n + 1}",
                status="dlq",
                attempt_count=5,
                # As the delivery worker words it, so later failures join this group.
                failure_code="NETWORK_CONNECTION_REFUSED",
                failure_detail=f"ClientConnectorError: Cannot connect to host {where} "
                f"ssl:default [Connect call failed ('{url.hostname}', {url.port})]",
                failed_at=failed_at + timedelta(minutes=n),
            )
        self._parked(
            integration,
            f"re_{name}_failed",
            status="failed",
            attempt_count=1,
            failure_code="HTTP_400",
            failure_detail="HTTP 400 from the demo upstream",
            response_snapshot={
                "status": 400,
                "headers": {"content-type": "application/json"},
                "body": '{"error": "refund_id is not a known refund"}',
                "body_truncated": False,
                "duration_ms": 41,
            },
        )

    def _parked(
        self,
        integration: Integration,
        refund_id: str,
        *,
        failed_at: datetime | None = None,
        response_snapshot: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """One item as the delivery worker leaves it: what it sent, what came back, and a
        row per attempt, so the item's page reads like any real failure."""
        failed_at = failed_at or timezone.now()
        parked = RecoveryItem(
            integration=integration,
            event_type="payment.refunded",
            payload={"refund_id": refund_id},
            next_retry_at=None,
            last_attempt_at=failed_at,
            **fields,
        )
        parked.failure_fingerprint = parked.inbox_fingerprint()
        parked.save()
        # As the last attempt sent it (its X-Ops-Attempt is that attempt's number).
        parked.attempt_count -= 1
        parked.request_snapshot = delivery_request(parked, signed=False).snapshot()
        parked.attempt_count += 1
        parked.response_snapshot = response_snapshot or {
            "error": "ClientConnectorError",
            "detail": parked.failure_detail,
            "duration_ms": 3,
        }
        # auto_now fields: the past is written after the insert
        RecoveryItem.objects.filter(pk=parked.pk).update(
            created_at=failed_at - timedelta(hours=1),
            updated_at=failed_at,
            request_snapshot=parked.request_snapshot,
            response_snapshot=parked.response_snapshot,
        )
        last = parked.attempt_count
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                item=parked,
                number=n,
                outcome=(
                    DeliveryAttempt.Outcome.PERMANENT
                    if parked.status == "failed"
                    else DeliveryAttempt.Outcome.RETRYABLE
                ),
                http_status=parked.response_snapshot.get("status"),
                failure_code=parked.failure_code,
                failure_detail=parked.failure_detail,
                duration_ms=3,
                request_snapshot=parked.request_snapshot,
                response_snapshot=parked.response_snapshot,
                lease_owner="demo-worker",
                started_at=failed_at - timedelta(minutes=2 ** (last - n)),
                finished_at=failed_at - timedelta(minutes=2 ** (last - n)),
            )
            for n in range(1, last + 1)
        )

    @transaction.atomic
    def _load_hosted_sessions(self) -> None:
        """Checkout links that expired unpaid, which the automation recovers; and one it
        tried 4 times while the checkout provider was down, never reaching the customer
        (the runbook's "stalled": more than 3 attempts without a notification)."""
        if HostedCheckoutSession.objects.exists():
            return
        now = timezone.now()
        for n, (email, phone) in enumerate(
            [("ana@example.test", "+351910000001"), ("ben@example.test", "")]
        ):
            payments.hosted_session_create(
                reference=f"hcs_demo_{n + 1}",
                amount=Decimal("49.90") + n * 10,
                currency="EUR",
                customer_email=email,
                customer_phone=phone,
                checkout_url=f"https://checkout.sandbox.invalid/pay/hcs_demo_{n + 1}/expired",
                expires_at=now - timedelta(hours=n + 1),
                actor="demo",
            )
        stalled = payments.hosted_session_create(
            reference="hcs_demo_3",
            amount=Decimal("69.90"),
            currency="EUR",
            customer_email="dora@example.test",
            customer_phone="+351910000003",
            checkout_url="https://checkout.sandbox.invalid/pay/hcs_demo_3/expired",
            expires_at=now - timedelta(hours=5),
            actor="demo",
        )
        # Its attempts are the past, which no service writes. Its next (and last) attempt
        # is a day away, so the automation neither reminds the customer nor abandons the
        # session before an operator regenerates it (the runbook's overrideNextRetryAt).
        attempts = _failed_link_attempts(now - timedelta(hours=5), count=4)
        HostedCheckoutSession.objects.filter(pk=stalled.pk).update(
            created_at=now - timedelta(hours=6),
            attempt_count=len(attempts),
            attempts_since_notification=len(attempts),
            next_retry_at=now + timedelta(hours=24),
            last_error="http_503: checkout provider unavailable",
            metadata={
                "recovery_attempts": attempts,
                "automation": {"last_attempt": attempts[-1]},
            },
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


def _ready(shown: dict[str, str], token_key: str) -> str:
    """What make run prints: where the console is served (the Procfile's OPSCONSOLE_HOST and
    OPSCONSOLE_PORT, which make run checks are free), the three logins and a token."""
    base = "http://{}:{}".format(
        os.environ.get("OPSCONSOLE_HOST", "127.0.0.1"), os.environ.get("OPSCONSOLE_PORT", "8000")
    )
    unchanged = "unchanged (demo_data --reset-password sets a new one)"
    logins = "\n".join(
        f"  {'Logins:' if n == 0 else '':10} user {username:9} password "
        f"{shown.get(username, unchanged)}  ({role})"
        for n, (username, role) in enumerate(DEMO_USERS.items())
    )
    from django.conf import settings

    from opsconsole.access.identity import sso_configured

    if sso_configured() and not settings.STAFF_PASSWORD_LOGIN:
        logins += (
            f"\n  {'':10} staff sign in with {settings.OIDC_PROVIDER_NAME} (OIDC_* is set): "
            "these passwords are refused for staff"
            + (
                f", but for {settings.BREAK_GLASS_USERNAME} while it is down"
                if settings.BREAK_GLASS_USERNAME
                else ""
            )
        )
    return (
        "\nOps Console demo is ready.\n"
        f"  Console:   {base}/admin/\n"
        f"{logins}\n"
        f"  API token: {token_key} (admin's)\n"
        f"  Try:       curl -H 'Authorization: Token {token_key}' {base}/platform/integrations\n"
    )


def _failed_link_attempts(start: datetime, *, count: int) -> list[dict[str, Any]]:
    """The attempts' trail as the recovery worker writes it, one an hour: no new link
    (the provider answered 503), so no message (no valid link to send)."""
    attempts = []
    for n in range(1, count + 1):
        at = (start + timedelta(hours=n - 1)).isoformat()
        attempts.append(
            {
                "attempt": n,
                "at": at,
                "started_at": at,
                "triggered_by": "schedule",
                "outcome": "link_failed",
                "regenerated": False,
                "link_failure_code": "http_503",
                "notified": False,
                "notification_skipped_reason": "no_valid_link",
                "communications": CommunicationOutcome().summary(),
                "override_applied": None,
                "next_retry_at": (start + timedelta(hours=n)).isoformat(),
            }
        )
    return attempts
