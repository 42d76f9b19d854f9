"""Send a week's operations digest now: `--week 2026-W47` (default: the last complete week),
again if it went out before (audited as a re-run)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.http.errors import InvalidInput
from recovery.reports.weekly_digest import last_complete_week, weekly_digest_send


class Command(BaseCommand):
    help = "Build and send the weekly operations digest for an ISO week (e.g. 2026-W47)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--week", default="", help="ISO week; default the last complete one")

    def handle(self, *args: Any, **options: Any) -> None:
        week = options["week"] or last_complete_week()
        try:
            outcome = weekly_digest_send(
                week=week, triggered_by="manual", again=True, actor="manage.py send_weekly_digest"
            )
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"week": week, "outcome": str(outcome)}))
        if outcome != "sent":
            raise CommandError(f"the digest for {week} was not sent: {outcome}")
