from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from opsconsole.worker_registry import registered_workers
from payments.models import HostedCheckoutSession
from tests.payments.factories import HostedSessionFactory


@pytest.fixture
def sandbox(settings):
    settings.PAYMENTS_CHECKOUT_URL = ""
    settings.NOTIFICATION_CHANNELS = {}


@pytest.mark.django_db
def test_the_list_names_every_registered_worker_and_its_switch(capsys, settings):
    settings.WORKER_DEFAULTS_ENABLED = {"dlq_sweeper": False}
    call_command("run_worker", "--list")
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(registered_workers())
    assert len(registered_workers()) >= 10
    sweeper = next(line for line in lines if line.startswith("dlq_sweeper "))
    assert "off (kill switch)" in sweeper


@pytest.mark.django_db
def test_once_claims_one_batch_and_drain_seconds_drains_the_rest(capsys, sandbox):
    HostedSessionFactory.create_batch(5)
    call_command("run_worker", "hosted_recovery_worker", "--once", "--limit", "2")
    first = json.loads(capsys.readouterr().out)
    assert (first["claimed"], first["batches"], first["triggered_by"]) == (2, 1, "manual")
    call_command("run_worker", "hosted_recovery_worker", "--drain-seconds", "30", "--limit", "2")
    rest = json.loads(capsys.readouterr().out)
    assert (rest["claimed"], rest["batches"]) == (3, 2)
    assert not HostedCheckoutSession.objects.filter(retry_count=0).exists()


@pytest.mark.django_db
def test_an_unknown_worker_or_conflicting_options_are_refused():
    with pytest.raises(CommandError, match=r"Known workers: .*integration_delivery_worker"):
        call_command("run_worker", "no_such_worker")
    with pytest.raises(CommandError, match="exclude each other"):
        call_command("run_worker", "dlq_sweeper", "--once", "--drain-seconds", "3")
    with pytest.raises(CommandError, match="--list"):
        call_command("run_worker")


@pytest.mark.django_db
def test_a_switched_off_worker_runs_nothing_and_says_so(capsys, settings, sandbox):
    settings.WORKER_DEFAULTS_ENABLED = {"hosted_recovery_worker": False}
    HostedSessionFactory()
    call_command("run_worker", "hosted_recovery_worker")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] is True
    assert "kill switch" in captured.err
    assert HostedCheckoutSession.objects.get().retry_count == 0
