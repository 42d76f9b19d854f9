"""`run_worker hosted_recovery_worker`, under its older name (runbooks cite it)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from opsconsole.management.commands.run_worker import run_worker
from payments.workers import HostedSessionRecoveryWorker


class Command(BaseCommand):
    help = "One hosted session recovery batch (run_worker hosted_recovery_worker --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--triggered-by", default="manual")
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        summary = run_worker(
            HostedSessionRecoveryWorker.name,
            triggered_by=options["triggered_by"],
            once=True,
            drain_seconds=None,
            limit=options["limit"],
        )
        self.stdout.write(json.dumps(summary, sort_keys=True, default=str))
        if summary.get("skipped"):
            self.stderr.write("hosted_recovery_worker is disabled (kill switch); nothing ran")
