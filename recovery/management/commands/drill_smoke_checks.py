"""The backup drill's smoke checks (docs/runbooks/backup-restore-drill.md), run by
`backup_drill` in a child process whose database is the restored scratch copy and whose
providers are the sandbox (nothing leaves the host): issue and redeem a voucher, send a
campaign, redeem at a station over the API. Prints one JSON object,
{check: "passed" | "failed: ..."}; exits 1 if any failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

ACTOR = "backup-drill"
STATION = "backup-drill-station"


def voucher_issue_and_redeem() -> None:
    from payments import vouchers

    voucher = vouchers.voucher_issue(description="drill", value=Decimal("1.00"), actor=ACTOR)
    redeemed = vouchers.voucher_redeem(code=voucher.code, station_id=STATION, actor=ACTOR)
    assert redeemed.status == "redeemed", redeemed.status


def campaign_send() -> None:
    from notifications.campaigns import campaign_create, campaign_start
    from notifications.models import CampaignTarget
    from notifications.workers import CampaignDispatcherWorker

    campaign = campaign_create(
        name="backup drill", template="drill", phones=["+15550100001"], actor=ACTOR
    )
    campaign_start(campaign_id=campaign.pk, actor=ACTOR, reason="backup drill smoke check")
    CampaignDispatcherWorker().run_once(triggered_by="backup_drill")
    statuses = set(
        CampaignTarget.objects.filter(campaign=campaign).values_list("status", flat=True)
    )
    assert statuses == {"sent"}, statuses


def station_redeem() -> None:
    from payments import vouchers
    from payments.stations import station_credential_issue

    voucher = vouchers.voucher_issue(description="drill", value=Decimal("1.00"), actor=ACTOR)
    _, key = station_credential_issue(station_id=STATION, actor=ACTOR, reason="backup drill")
    host = next(iter(settings.ALLOWED_HOSTS), "localhost")
    host = "localhost" if host == "*" else f"drill{host}" if host.startswith(".") else host
    response = Client(HTTP_HOST=host).post(
        "/api/station/redeem",
        {"code": voucher.code},
        content_type="application/json",
        secure=True,  # as behind the TLS proxy: production redirects plain http
        HTTP_AUTHORIZATION=f"Station {key}",
    )
    assert response.status_code == 200, (response.status_code, response.content[:300])


CHECKS: dict[str, Callable[[], None]] = {
    "voucher_issue_and_redeem": voucher_issue_and_redeem,
    "campaign_send": campaign_send,
    "station_redeem": station_redeem,
}


class Command(BaseCommand):
    help = "Smoke checks on a restored database (run by backup_drill; not on a live one)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.PROVIDERS_SANDBOX:
            raise CommandError("run with PROVIDERS_SANDBOX=true, on a restored copy only")
        results: dict[str, str] = {}
        for name, check in CHECKS.items():
            try:
                check()
                results[name] = "passed"
            except Exception as exc:  # every check runs; each failure is reported
                results[name] = f"failed: {type(exc).__name__}: {exc}"[:500]
        self.stdout.write(json.dumps(results))
        if any(result != "passed" for result in results.values()):
            raise CommandError("smoke checks failed")
