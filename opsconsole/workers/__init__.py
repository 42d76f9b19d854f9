"""The worker engine every app's workers run on (engine.py: claim with a lease, process,
record, drain), and around it: the claim statement and the run context (claims.py), the
registry (registry.py), kill switches, health, metrics, the run's upkeep, outcome rollups
and wake-ups.

Every worker runs through `opsconsole.workers.run(name, triggered_by)`: the schedules, the
wake-ups, "Run now" and `manage.py run_worker` queue or call that path."""

from opsconsole.workers.engine import (
    LEASE_CLOCK_SLACK_SECONDS,
    RUN_TASK,
    BatchWorker,
    PeriodicWorker,
    UnknownWorker,
    register_worker,
    run,
)

__all__ = [
    "LEASE_CLOCK_SLACK_SECONDS",
    "RUN_TASK",
    "BatchWorker",
    "PeriodicWorker",
    "UnknownWorker",
    "register_worker",
    "run",
]
