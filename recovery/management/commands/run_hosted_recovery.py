"""Run the hosted session recovery worker once, now, e.g. during an incident or a drill."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recovery.workers import HostedSessionRecoveryWorker


class Command(BaseCommand):
    help = "Run one hosted session recovery pass (honours the hosted_recovery_worker kill switch)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--triggered-by", default="manual")
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        summary = HostedSessionRecoveryWorker().run_once(
            triggered_by=options["triggered_by"], limit=options["limit"]
        )
        self.stdout.write(json.dumps(summary.as_dict(), sort_keys=True))
        if summary.skipped:
            self.stderr.write("hosted_recovery_worker is disabled (kill switch); nothing ran")
