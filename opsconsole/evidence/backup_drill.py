"""Backup/restore drill (docs/runbooks/backup-restore-drill.md): dump, copy off the host, restore
the copy into a scratch database, compare row counts, run the smoke checks on it.

PostgreSQL: the row counts and pg_dump share one exported snapshot, so writes during the
drill cannot make parity fail falsely. SQLite: the online backup API copies the file. The
smoke checks run in a child process whose database is the restored copy and whose providers
are the sandbox, so they change nothing outside the copy.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from psycopg import sql

from opsconsole.evidence.backup_offsite import OffsiteCopyFailed, offsite_copy
from opsconsole.evidence.csv_export import SafeCsvWriter

# Provider settings a smoke check must never see: with them unset, the sandbox stands in.
PROVIDER_ENV_PREFIXES = (
    "STRIPE_", "PAYMENTS_CHECKOUT_", "NOTIFICATIONS_", "SMS_", "WHATSAPP_", "PUSH_", "TWILIO_",
    "FCM_", "ANYMAIL", "RESEND_", "EMAIL_", "VOUCHER_RENDERER_", "REDIS_URL", "OPERATIONS_",
)  # fmt: skip


class DrillFailed(Exception):
    pass


@dataclass
class DrillReport:
    started_at: datetime
    output_dir: Path
    backup_path: Path | None = None
    scratch: str = ""
    source_counts: dict[str, int] = field(default_factory=dict)
    restored_counts: dict[str, int] = field(default_factory=dict)
    copied_to: str = ""
    smoke_checks: dict[str, str] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.log_lines.append(f"{datetime.now(UTC).isoformat()} {message}")

    @property
    def mismatches(self) -> list[str]:
        return compare_rowcounts(self.source_counts, self.restored_counts)


def compare_rowcounts(source: dict[str, int], restored: dict[str, int]) -> list[str]:
    """Tables whose restored count differs from the source (or that are missing)."""
    return sorted(
        table for table in set(source) | set(restored) if source.get(table) != restored.get(table)
    )


def pg_binary(name: str, bin_dir: str = "") -> str:
    if bin_dir:
        candidate = Path(bin_dir) / name
        if not candidate.exists():
            raise DrillFailed(f"{name} not found in {bin_dir}")
        return str(candidate)
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise DrillFailed(f"{name} not found; install the PostgreSQL client tools")
    return found


def _pg_env(settings_dict: dict) -> dict[str, str]:
    env = dict(os.environ)
    for key, var in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
    ):
        if settings_dict.get(key):
            env[var] = str(settings_dict[key])
    return env


def _count_tables(cursor, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    return counts


def run_postgres_drill(
    report: DrillReport, *, bin_dir: str = "", keep_scratch: bool = False
) -> None:
    params = connection.settings_dict
    database = params["NAME"]
    env = _pg_env(params)
    dump = report.output_dir / "backup.dump"
    conninfo: dict[str, Any] = {
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
    }
    tables = sorted(connection.introspection.table_names())
    with psycopg.connect(dbname=database, **conninfo) as source:
        source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        exported = source.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = exported[0] if exported else ""
        report.source_counts = _count_tables(source.cursor(), tables)
        report.log(f"source {database}: {len(tables)} tables counted in snapshot {snapshot}")
        started = time.monotonic()
        result = subprocess.run(
            [
                pg_binary("pg_dump", bin_dir),
                "-Fc",
                f"--snapshot={snapshot}",
                "-f",
                str(dump),
                database,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DrillFailed(f"pg_dump failed: {result.stderr.strip()[:500]}")
        source.rollback()
    report.backup_path = dump
    report.log(
        f"dump written to {dump} ({dump.stat().st_size} bytes) in {time.monotonic() - started:.2f}s"
    )
    fetched = copy_off_host(
        report, dump, name=f"{database}-{report.started_at:%Y%m%dT%H%M%SZ}.dump"
    )
    report.scratch = f"{database}_drill_{report.started_at:%Y%m%d%H%M%S}"
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(report.scratch)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(report.scratch)))
    try:
        started = time.monotonic()
        result = subprocess.run(
            [pg_binary("pg_restore", bin_dir), "--no-owner", "-d", report.scratch, str(fetched)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DrillFailed(f"pg_restore failed: {result.stderr.strip()[:500]}")
        report.log(
            f"restored into scratch database {report.scratch} in {time.monotonic() - started:.2f}s"
        )
        with psycopg.connect(dbname=report.scratch, **conninfo) as restored:
            report.restored_counts = _count_tables(restored.cursor(), tables)
        run_smoke_checks(report, database_url=_postgres_url(params, report.scratch))
    finally:
        if not keep_scratch:
            with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(report.scratch))
                )
            report.log(f"scratch database {report.scratch} dropped")


def run_sqlite_drill(report: DrillReport) -> None:
    path = connection.settings_dict["NAME"]
    backup = report.output_dir / "backup.sqlite3"
    tables = sorted(connection.introspection.table_names())
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
        source.execute("BEGIN")  # one read transaction: the counts and the copy agree
        report.source_counts = {
            t: source.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
        }
        source.backup(copy)
        source.rollback()
    report.backup_path = backup
    report.log(f"sqlite backup written to {backup}")
    fetched = copy_off_host(report, backup, name=f"{report.started_at:%Y%m%dT%H%M%SZ}.sqlite3")
    with sqlite3.connect(fetched) as restored:
        report.restored_counts = {
            t: restored.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
        }
    run_smoke_checks(report, database_url=f"sqlite:///{fetched}")


def copy_off_host(report: DrillReport, backup: Path, *, name: str) -> Path:
    """Copy the backup off the host and fetch it back: the restore reads the fetched copy."""
    fetched = report.output_dir / f"fetched-{backup.name}"
    try:
        report.copied_to = offsite_copy(backup, name=name, fetched=fetched)
    except OffsiteCopyFailed as exc:
        raise DrillFailed(f"off-host copy failed: {exc}") from exc
    report.log(f"copied off host to {report.copied_to}; fetched back, SHA-256 matches")
    return fetched


def _postgres_url(params: dict, database: str) -> str:
    from urllib.parse import quote

    user = quote(str(params.get("USER") or ""))
    password = quote(str(params.get("PASSWORD") or ""))
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = params.get("HOST") or "localhost"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(database)}"


def run_smoke_checks(report: DrillReport, *, database_url: str) -> None:
    """Run `manage.py drill_smoke_checks` against the restored copy, in a child process with
    the sandbox providers; a failed check fails the drill."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(PROVIDER_ENV_PREFIXES)
    }
    env.update(
        DATABASE_URL=database_url,
        PROVIDERS_SANDBOX="true",
        OPSCONSOLE_READ_ENV_FILE="false",
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
    )
    result = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "drill_smoke_checks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    try:
        report.smoke_checks = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report.smoke_checks = {}
    report.log(f"smoke checks on the restored copy: {report.smoke_checks or 'no result'}")
    if result.returncode != 0 or not report.smoke_checks:
        failed = {k: v for k, v in report.smoke_checks.items() if v != "passed"}
        detail = failed or result.stderr.strip()[-500:]
        raise DrillFailed(f"smoke checks failed on the restored copy: {detail}")


def write_outputs(report: DrillReport) -> None:
    with open(report.output_dir / "rowcount.csv", "w", newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(["table", "source_rows", "restored_rows", "match"])
        for table in sorted(set(report.source_counts) | set(report.restored_counts)):
            source, restored = report.source_counts.get(table), report.restored_counts.get(table)
            writer.writerow([table, source, restored, "yes" if source == restored else "NO"])
    (report.output_dir / "backup.log").write_text("\n".join(report.log_lines) + "\n")
