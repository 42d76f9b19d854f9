"""docs/runbooks/backup-restore-drill.md, walked in the browser: the drill runs from a shell
(`manage.py backup_drill`, against the test database, its dump copied to a directory), then
the operator reads its result where the runbook says: Admin → Backup drill runs → the run,
and the overview's readiness."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import Locator, Page, expect

from opsconsole.models import BackupDrillRun
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SMOKE_CHECKS = ("voucher_issue_and_redeem", "campaign_send", "station_redeem")


def shown(page: Page, field: str) -> Locator:
    """A read-only field's value on a record's page, alone on its row or paired in one."""
    return page.locator(
        f".fieldBox.field-{field} .readonly, .form-row.field-{field}:not(:has(.fieldBox)) .readonly"
    )


def test_a_drill_run_is_read_on_its_page_and_in_readiness(page, live_server, settings, tmp_path):
    support_staff()
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    settings.BACKUP_DRILL = {**settings.BACKUP_DRILL, "copy_dir": str(offsite)}
    # Step 1, outside the console: the drill itself (dump, off-host copy, restore, parity,
    # smoke checks on the restored copy), as a shell runs it.
    call_command("backup_drill", "--output-dir", str(tmp_path / "out"))
    run = BackupDrillRun.objects.get()
    assert run.status == BackupDrillRun.Status.PASSED
    walk = Walk(page, live_server.url, "backup-restore-drill")

    # Step 2: Admin → Backup drill runs → the run.
    walk.log_in(OPERATOR)
    walk.link("Backup drill runs")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".field-status")).to_have_text("Passed")
    expect(rows.first.locator(".field-triggered_by")).to_have_text("manual")
    expect(rows.first.locator(".field-copied_to")).to_contain_text(f"file://{offsite}")
    # The list offers no action, to anyone: the drill runs where the database tools are.
    expect(page.locator("select[name=action]")).to_have_count(0)
    expect(page.locator("#content a.addlink")).to_have_count(0)
    walk.shot("drill-runs")
    rows.first.locator("th a").click()
    expect(shown(page, "status")).to_contain_text("Passed")
    expect(shown(page, "started_at")).not_to_have_text("-")
    expect(shown(page, "finished_at")).not_to_have_text("-")
    expect(shown(page, "copied_to")).to_contain_text(run.copied_to)
    expect(shown(page, "tables")).to_contain_text(str(run.tables))
    expect(shown(page, "mismatch_list")).to_contain_text("none")
    checks = shown(page, "smoke_check_list")
    for check in SMOKE_CHECKS:
        expect(checks).to_contain_text(f"{check}: passed")
    expect(page.locator("[data-testid^=object-tool-]")).to_have_count(0)
    walk.shot("drill-run")

    assert run.tables > 10 and run.mismatches == []
    assert run.smoke_checks == {check: "passed" for check in SMOKE_CHECKS}
    assert run.copied_to.startswith(f"file://{offsite}")

    # The overview's readiness: backup_drill ready, with the last result and its age.
    walk.link("Console overview")
    page.get_by_test_id("readiness-details").locator("summary").click()
    drill = page.get_by_test_id("readiness-backup_drill")
    expect(drill).to_contain_text("ready")
    expect(drill).to_contain_text("last drill passed, 0 days old")
    walk.shot("readiness")

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/platform/backupdrillrun/",
            f"/admin/platform/backupdrillrun/{run.pk}/change/",
        ],
        refused=[f"/admin/platform/backupdrillrun/{run.pk}/delete/"],
    )
    walk.open(f"/admin/platform/backupdrillrun/{run.pk}/change/")
    expect(shown(page, "smoke_check_list")).to_contain_text("station_redeem: passed")
    walk.link("Console overview")
    page.get_by_test_id("readiness-details").locator("summary").click()
    expect(page.get_by_test_id("readiness-backup_drill")).to_contain_text("last drill passed")
    walk.shot("viewer-readiness")
