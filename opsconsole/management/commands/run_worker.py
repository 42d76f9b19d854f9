"""Run any registered worker now, from a terminal: during an incident, a drill, or to drain a
backlog by hand. The run is the scheduled one (kill switch, leases, run record, metrics)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.workers import UnknownWorker, run
from opsconsole.workers.registry import registered_workers
from opsconsole.workers.switches import worker_enabled


def run_worker(
    name: str, *, triggered_by: str, once: bool, drain_seconds: float | None, limit: int | None
) -> dict[str, Any]:
    """What the worker's schedule runs (`opsconsole.workers.run`: its drain time and its
    processors), unless `--once` or `--drain-seconds` narrows the drain."""
    try:
        return run(name, triggered_by, limit=limit, drain_seconds=0.0 if once else drain_seconds)
    except UnknownWorker:
        known = ", ".join(sorted(registered_workers()))
        raise CommandError(f"No worker named {name!r}. Known workers: {known}") from None


class Command(BaseCommand):
    help = (
        "Run a worker now: `run_worker NAME` runs it as its schedule does, `--once` claims one "
        "batch, `--drain-seconds N` drains for up to N seconds; `--list` names every worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="A worker's name (see --list).")
        parser.add_argument("--list", action="store_true", help="List the workers and stop.")
        parser.add_argument("--once", action="store_true", help="Claim and process one batch.")
        parser.add_argument("--drain-seconds", type=float, default=None)
        parser.add_argument("--limit", type=int, default=None, help="Items per batch.")
        parser.add_argument("--triggered-by", default="manual")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for name, worker_class in sorted(registered_workers().items()):
                state = "on" if worker_enabled(name) else "off (kill switch)"
                every = f"every {worker_class.schedule_minutes} min"
                self.stdout.write(f"{name:36} {state:18} {every:14} {worker_class.description}")
            return
        if not options["name"]:
            raise CommandError("Name a worker, or pass --list.")
        if options["once"] and options["drain_seconds"] is not None:
            raise CommandError("--once and --drain-seconds exclude each other.")
        summary = run_worker(
            options["name"],
            triggered_by=options["triggered_by"],
            once=options["once"],
            drain_seconds=options["drain_seconds"],
            limit=options["limit"],
        )
        self.stdout.write(json.dumps(summary, sort_keys=True, default=str))
        if summary.get("skipped"):
            self.stderr.write(f"{options['name']} is disabled (kill switch); nothing ran")
