"""Run any registered worker now, from a terminal: during an incident, a drill, or to drain a
backlog by hand. The run is the scheduled one (kill switch, leases, run record, metrics)."""

from __future__ import annotations

import json
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.workers import UnknownWorker, run
from opsconsole.workers.heap import settle_after_start
from opsconsole.workers.listeners import listener_of
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


# A listening process's runs: one run record, heartbeat and kill-switch cycle this long.
LISTEN_RUN_SECONDS = 60.0


def listen(name: str, *, limit: int | None) -> None:
    """Run `name` until SIGTERM or SIGINT, claiming the moment a wake arrives
    (opsconsole.workers.listeners): one run after another, each LISTEN_RUN_SECONDS long.
    A signal lets the calls in flight end and their outcomes be written first."""
    workers = registered_workers()
    if name not in workers:
        known = ", ".join(sorted(workers))
        raise CommandError(f"No worker named {name!r}. Known workers: {known}")
    if not workers[name].listens:
        listening = sorted(n for n, w in workers.items() if w.listens)
        raise CommandError(f"{name!r} does not listen; these do: {', '.join(listening)}")
    settle_after_start()
    with listener_of(name) as waker:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: waker.stop())
        while not waker.stopped.is_set():
            summary = run(name, "listen", limit=limit, drain_seconds=LISTEN_RUN_SECONDS)
            if summary.get("skipped"):
                waker.stopped.wait(waker.poll_seconds)  # switched off: look again later


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
        parser.add_argument(
            "--listen",
            action="store_true",
            help="Keep running, woken as work is committed (the Procfile's delivery process).",
        )

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
        if options["listen"]:
            if options["once"] or options["drain_seconds"] is not None:
                raise CommandError("--listen runs until stopped; no --once or --drain-seconds.")
            listen(options["name"], limit=options["limit"])
            return
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
