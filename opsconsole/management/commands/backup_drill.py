"""The backup/restore drill (docs/runbooks/backup-restore-drill.md): dump, copy off the host,
restore the copy into a scratch database, check row parity, run the smoke checks on it.

Writes backup.log and rowcount.csv into --output-dir and a BackupDrillRun row (its result
shows in readyz); exits non-zero when any step fails, so a scheduler or CI can page on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from opsconsole.evidence.backup_drill import (
    DrillFailed,
    DrillReport,
    run_postgres_drill,
    run_sqlite_drill,
    write_outputs,
)
from opsconsole.models import BackupDrillRun


class Command(BaseCommand):
    help = "Back up the database, restore it into a scratch database and compare row counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output-dir", default="")
        parser.add_argument("--triggered-by", default="manual")
        parser.add_argument("--pg-bin-dir", default="", help="Where pg_dump/pg_restore live")
        parser.add_argument("--keep-scratch", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        started = datetime.now(UTC)
        base = options["output_dir"] or str(settings.BACKUP_DRILL["output_dir"])
        output = Path(base) / started.strftime("%Y%m%dT%H%M%SZ")
        output.mkdir(parents=True, exist_ok=True)
        run = BackupDrillRun.objects.create(
            started_at=started, triggered_by=options["triggered_by"], output_dir=str(output)
        )
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
            self._finish(run, report, detail=str(exc))
            raise CommandError(f"backup drill failed: {exc} (see {output / 'backup.log'})") from exc
        mismatches = report.mismatches
        runtime = (datetime.now(UTC) - started).total_seconds()
        if mismatches:
            report.log(f"PARITY FAILED for {len(mismatches)} tables: {', '.join(mismatches)}")
        else:
            report.log(f"parity OK for {len(report.source_counts)} tables; runtime {runtime:.2f}s")
        write_outputs(report)
        detail = f"row-count parity failed: {', '.join(mismatches)}" if mismatches else ""
        self._finish(run, report, detail=detail)
        if mismatches:
            raise CommandError(detail)
        self.stdout.write(self.style.SUCCESS(f"backup drill passed; outputs in {output}"))

    def _finish(self, run: BackupDrillRun, report: DrillReport, *, detail: str) -> None:
        run.finished_at = timezone.now()
        run.status = BackupDrillRun.Status.FAILED if detail else BackupDrillRun.Status.PASSED
        run.detail = detail[:2000]
        run.copied_to = report.copied_to
        run.tables = len(report.source_counts)
        run.mismatches = report.mismatches
        run.smoke_checks = report.smoke_checks
        run.save()
