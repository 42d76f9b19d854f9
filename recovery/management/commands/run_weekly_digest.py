"""Re-run the weekly digest for a window of weeks once readiness reports `ready` (the
incident guide's step): each week in `--since`..`--until` (default: the last complete week)
that has not gone out is sent now; a week already sent is left as it is, so running it
twice sends nothing twice. `send_weekly_digest --week` sends one week again on purpose."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.http.errors import InvalidInput
from recovery.models import WeeklyDigest
from recovery.reports.weekly_digest import (
    last_complete_week,
    week_bounds,
    week_of,
    weekly_digest_send,
)

COMMAND = "manage.py run_weekly_digest"


class Command(BaseCommand):
    help = "Send the weekly digest of each ISO week in a window that has not gone out yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="", help="first ISO week, e.g. 2026-W45")
        parser.add_argument("--until", default="", help="last ISO week (default: the last one)")

    def handle(self, *args: Any, **options: Any) -> None:
        first = options["since"]
        last = options["until"] or max(last_complete_week(), first)
        first = first or last
        try:
            start, _ = week_bounds(first)
            end, _ = week_bounds(last)
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        if start > end:
            raise CommandError(f"--since {first} is after --until {last}")
        failed = []
        while start <= end:
            week = week_of(start)
            start += timedelta(days=7)
            if WeeklyDigest.objects.filter(week=week, sends__gt=0).exists():
                self.stdout.write(json.dumps({"week": week, "outcome": "already_sent"}))
                continue
            outcome = weekly_digest_send(week=week, triggered_by=COMMAND)
            line: dict[str, str] = {"week": week, "outcome": str(outcome)}
            if outcome != "sent":
                digest = WeeklyDigest.objects.filter(week=week).first()
                line["why"] = digest.last_failure if digest else ""
                failed.append(f"{week} ({line['why'] or outcome})")
            self.stdout.write(json.dumps(line))
        if failed:
            raise CommandError(f"not sent: {'; '.join(failed)}")
