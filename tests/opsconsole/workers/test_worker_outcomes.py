"""Worker outcomes are enums, and a run hands its rows over in a per-run context."""

from __future__ import annotations

from enum import StrEnum

import pytest

from opsconsole.workers import BatchWorker
from opsconsole.workers.claims import RunContext
from opsconsole.workers.registry import registered_workers


def test_every_registered_worker_declares_its_outcomes_as_an_enum():
    for name, worker_class in registered_workers().items():
        assert issubclass(worker_class.Outcome, StrEnum), name
        assert list(worker_class.Outcome), name


class CountingWorker(BatchWorker):
    name = "counting_test_worker"

    class Outcome(StrEnum):
        COUNTED = "counted"

    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        self.labels = labels

    def claim(self, run: RunContext, *, limit: int) -> list[int]:
        return list(range(len(self.labels)))[:limit]

    def process(self, item_id: int, run: RunContext) -> str:
        return self.labels[item_id]


@pytest.mark.django_db
def test_an_outcome_outside_the_enum_is_an_error_not_a_new_label():
    summary = CountingWorker(["counted", "counted", "invented"]).run_once(triggered_by="test")
    assert dict(summary.outcomes) == {"counted": 2}
    assert summary.errors == 1


@pytest.mark.django_db
def test_nothing_of_a_run_stays_on_the_worker():
    worker = CountingWorker(["counted"])
    state_before = dict(vars(worker))
    worker.run_once(triggered_by="test")
    assert vars(worker) == state_before
    run = worker.run_context(triggered_by="manual")
    assert (run.triggered_by, worker.claim(run, limit=5)) == ("manual", [0])
