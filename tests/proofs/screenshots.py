"""`make screenshots`: the README's pictures of the console, taken with the browser tests'
machinery on the demo world (not collected by the suite: run by path)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from opsconsole.monitoring.queue_depth import queue_depth_sample
from recovery.workers import IntegrationDeliveryWorker
from tests.proofs.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PICTURES = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_the_overview_and_the_failure_inbox(page, live_server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    call_command("demo_data", stdout=io.StringIO())
    IntegrationDeliveryWorker().run_once(triggered_by="screenshots")  # real failures to show
    queue_depth_sample()
    admin = User.objects.get(username="admin")
    admin.set_password("pw-123456")
    admin.save()
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, "admin")
    PICTURES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PICTURES / "overview.png"), full_page=False)
    page.goto(f"{live_server.url}/admin/failures/")
    page.wait_for_selector("table")
    page.screenshot(path=str(PICTURES / "failure-inbox.png"), full_page=False)
