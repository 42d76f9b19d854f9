"""Seed 004's backup/restore drill with row-count parity."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from opsconsole.backup_drill import compare_rowcounts


@pytest.mark.django_db(transaction=True)
def test_the_backup_drill_restores_with_row_count_parity(tmp_path):
    from recovery import services

    services.integration_create(name="drill", endpoint_url="https://x.test", actor="t")
    call_command("backup_drill", "--output-dir", str(tmp_path))
    [run] = list(tmp_path.iterdir())
    rows = list(csv.DictReader(io.StringIO((run / "rowcount.csv").read_text())))
    by_table = {row["table"]: row for row in rows}
    assert by_table["recovery_integration"]["source_rows"] == "1"
    assert by_table["recovery_integration"]["restored_rows"] == "1"
    assert all(row["match"] == "yes" for row in rows)
    log = (run / "backup.log").read_text()
    assert "parity OK" in log and "dropped" in log


@pytest.mark.django_db(transaction=True)
def test_a_failed_restore_is_a_non_zero_exit_with_the_reason_logged(tmp_path):
    from opsconsole.backup_drill import pg_binary

    only_dump = tmp_path / "bin"
    only_dump.mkdir()
    (only_dump / "pg_dump").symlink_to(pg_binary("pg_dump"))
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="pg_restore not found"):
        call_command("backup_drill", "--output-dir", str(out), "--pg-bin-dir", str(only_dump))
    [run] = list(out.iterdir())
    assert "FAILED: pg_restore not found" in (run / "backup.log").read_text()


def test_parity_compares_every_table_both_ways():
    assert compare_rowcounts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert compare_rowcounts({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ["b"]
    assert compare_rowcounts({"a": 1}, {"a": 1, "c": 0}) == ["c"]
