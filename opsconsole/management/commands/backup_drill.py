"""Seed 004's backup/restore drill: dump, restore into a scratch database, check row parity.

Writes backup.log and rowcount.csv into --output-dir; exits non-zero when parity fails or
any step fails, so a scheduler or CI can page on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from opsconsole.backup_drill import (
    DrillFailed,
    DrillReport,
    run_postgres_drill,
    run_sqlite_drill,
    write_outputs,
)


class Command(BaseCommand):
    help = "Back up the database, restore it into a scratch database and compare row counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output-dir", default="var/backup-drill")
        parser.add_argument("--pg-bin-dir", default="", help="Where pg_dump/pg_restore live")
        parser.add_argument("--keep-scratch", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        started = datetime.now(UTC)
        output = Path(options["output_dir"]) / started.strftime("%Y%m%dT%H%M%SZ")
        output.mkdir(parents=True, exist_ok=True)
        report = DrillReport(started_at=started, output_dir=output)
        report.log(
            f"drill started on {connection.vendor} database {connection.settings_dict['NAME']}"
        )
        try:
            if connection.vendor == "postgresql":
                run_postgres_drill(
                    report, bin_dir=options["pg_bin_dir"], keep_scratch=options["keep_scratch"]
                )
            else:
                run_sqlite_drill(report)
        except DrillFailed as exc:
            report.log(f"FAILED: {exc}")
            write_outputs(report)
            raise CommandError(f"backup drill failed: {exc} (see {output / 'backup.log'})") from exc
        mismatches = report.mismatches
        runtime = (datetime.now(UTC) - started).total_seconds()
        if mismatches:
            report.log(f"PARITY FAILED for {len(mismatches)} tables: {', '.join(mismatches)}")
        else:
            report.log(f"parity OK for {len(report.source_counts)} tables; runtime {runtime:.2f}s")
        write_outputs(report)
        if mismatches:
            raise CommandError(f"row-count parity failed: {', '.join(mismatches)}")
        self.stdout.write(self.style.SUCCESS(f"backup drill passed; outputs in {output}"))
