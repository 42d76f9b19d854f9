from __future__ import annotations

import ast
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils.module_loading import import_string

from opsconsole.workers.registry import registered_workers
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
    assert not HostedCheckoutSession.objects.filter(attempt_count=0).exists()


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
    assert HostedCheckoutSession.objects.get().attempt_count == 0


@pytest.mark.django_db
def test_every_path_runs_a_worker_as_its_schedule_does(monkeypatch, settings):
    """The schedule, a wake, "Run now", an old queued task name and `manage.py run_worker`
    all reach `opsconsole.workers.run`, which builds the worker with its drain time and its
    processors (the delivery worker's from INTEGRATION_DELIVERY_CONCURRENCY)."""
    from django_q.models import Schedule

    from opsconsole import workers
    from opsconsole.workers.claims import RunSummary
    from recovery import tasks
    from recovery.workers import IntegrationDeliveryWorker

    settings.INTEGRATION_DELIVERY_CONCURRENCY = 3
    settings.WORKER_DRAIN_SECONDS = 7
    runs: list[tuple[str, int, float, str]] = []

    def record(self, *, triggered_by, limit=None, drain_seconds=0.0):
        runs.append((self.name, self.concurrency, drain_seconds, triggered_by))
        return RunSummary(worker=self.name, triggered_by=triggered_by)

    monkeypatch.setattr(workers.BatchWorker, "run_once", record)
    call_command("setup_schedules")
    schedule = Schedule.objects.get(name="integration_delivery_worker")
    import_string(schedule.func)(*ast.literal_eval(schedule.args))
    tasks.run_integration_delivery_worker("replay")  # a task queued under the old name
    call_command("run_worker", "integration_delivery_worker")
    call_command("run_worker", "dlq_sweeper")
    assert runs == [
        ("integration_delivery_worker", 3, 7.0, "schedule"),
        ("integration_delivery_worker", 3, 7.0, "replay"),
        ("integration_delivery_worker", 3, 7.0, "manual"),
        ("dlq_sweeper", 1, 0.0, "manual"),  # one batch a run, as its schedule takes
    ]
    assert IntegrationDeliveryWorker.as_scheduled().concurrency == 3
