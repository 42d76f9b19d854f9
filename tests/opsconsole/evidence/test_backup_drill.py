"""The backup/restore drill (docs/runbooks/backup-restore-drill.md): the dump goes off the host
(an S3 bucket, against moto's server, or a directory), is fetched back and restored into a
scratch database, with row-count parity and smoke checks on the restored copy; scheduled
quarterly, its last result in readyz."""

from __future__ import annotations

import csv
import io
import socket
from datetime import UTC, datetime

import boto3
import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule
from moto.server import ThreadedMotoServer

from opsconsole.evidence.backup_drill import compare_rowcounts
from opsconsole.management.commands.setup_schedules import first_tuesday_of_next_quarter
from opsconsole.models import BackupDrillRun
from opsconsole.monitoring.health import readiness


@pytest.fixture(autouse=True)
def offsite_dir(settings, tmp_path_factory):
    """The filesystem fallback, unless a test configures the bucket."""
    offsite = tmp_path_factory.mktemp("offsite")
    settings.BACKUP_DRILL = {**settings.BACKUP_DRILL, "copy_dir": str(offsite)}
    return offsite


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """moto in server mode: boto3 speaks real HTTP to it, as it would to S3 or MinIO."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "drill-key",
        "AWS_SECRET_ACCESS_KEY": "drill-secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_backup_drill_restores_with_row_count_parity(tmp_path, offsite_dir):
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
    assert "copied off host to file://" in log and "SHA-256 matches" in log
    assert [copy.suffix for copy in offsite_dir.iterdir()] == [".dump"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_restore_is_a_non_zero_exit_with_the_reason_logged(tmp_path):
    from opsconsole.evidence.backup_drill import pg_binary

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


def smoke_checks_passed(run: BackupDrillRun) -> bool:
    return set(run.smoke_checks) == {
        "voucher_issue_and_redeem",
        "campaign_send",
        "station_redeem",
    } and set(run.smoke_checks.values()) == {"passed"}


@pytest.mark.django_db(transaction=True)
def test_the_drill_copies_the_dump_to_a_bucket_and_restores_the_copy(settings, tmp_path, s3_server):
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="drills", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    settings.BACKUP_DRILL = {
        **settings.BACKUP_DRILL,
        "s3_bucket": "drills",
        "s3_endpoint_url": s3_server,
        "s3_prefix": "console/",
        "copy_dir": "",
    }
    call_command("backup_drill", "--output-dir", str(tmp_path / "out"))
    (stored,) = s3.list_objects_v2(Bucket="drills", Prefix="console/")["Contents"]
    head = s3.head_object(Bucket="drills", Key=stored["Key"])
    assert len(head["Metadata"]["sha256"]) == 64
    run = BackupDrillRun.objects.get()
    assert run.status == "passed" and run.copied_to == f"s3://drills/{stored['Key']}"
    assert smoke_checks_passed(run)
    component = readiness()["components"]["backup_drill"]
    assert component["status"] == "ready"
    assert component["details"]["copied_to"] == run.copied_to


@pytest.mark.django_db(transaction=True)
def test_a_drill_with_nowhere_off_host_or_an_unreachable_bucket_fails_and_readyz_says_so(
    settings, tmp_path
):
    settings.BACKUP_DRILL = {**settings.BACKUP_DRILL, "copy_dir": ""}
    with pytest.raises(CommandError, match="no off-host destination"):
        call_command("backup_drill", "--output-dir", str(tmp_path / "a"))
    settings.BACKUP_DRILL = {
        **settings.BACKUP_DRILL,
        "s3_bucket": "drills",
        "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
    }
    with pytest.raises(CommandError, match="off-host copy failed: copy to s3://drills/"):
        call_command("backup_drill", "--output-dir", str(tmp_path / "b"))
    assert list(BackupDrillRun.objects.values_list("status", flat=True)) == ["failed", "failed"]
    component = readiness()["components"]["backup_drill"]
    assert component["status"] == "degraded"
    assert "off-host copy failed" in component["details"]["detail"]


@pytest.mark.django_db(transaction=True)
def test_smoke_checks_run_on_the_restored_copy_and_leave_the_source_untouched(tmp_path):
    from payments.models import Voucher

    call_command("backup_drill", "--output-dir", str(tmp_path))
    run = BackupDrillRun.objects.get()
    assert smoke_checks_passed(run), run.smoke_checks
    assert not Voucher.objects.exists()  # the checks' vouchers live and die with the copy


@pytest.mark.django_db
def test_the_drill_is_scheduled_quarterly_from_the_seeds_cadence(settings):
    assert first_tuesday_of_next_quarter(datetime(2026, 11, 24, tzinfo=UTC)) == datetime(
        2027, 1, 5, 14, 0, tzinfo=UTC
    )
    assert first_tuesday_of_next_quarter(datetime(2027, 1, 6, tzinfo=UTC)) == datetime(
        2027, 4, 6, 14, 0, tzinfo=UTC
    )
    call_command("setup_schedules")
    drill = Schedule.objects.get(name="backup_drill")
    assert (drill.func, drill.schedule_type) == ("opsconsole.tasks.run_backup_drill", "Q")
    assert drill.next_run.weekday() == 1 and drill.next_run.hour == 14
    settings.BACKUP_DRILL = {**settings.BACKUP_DRILL, "schedule": "off"}
    call_command("setup_schedules")
    assert not Schedule.objects.filter(name="backup_drill").exists()
