"""Every worker the apps registered, by name: what the kill switches, the schedules and the
overview's outcome charts list. The engine (opsconsole/workers.py) adds to it; reading it
needs no import of the engine, which itself reads the switches and the outcome rollups."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsconsole.workers import BatchWorker

_workers: dict[str, type[BatchWorker]] = {}


def worker_add(worker_class: type[BatchWorker]) -> None:
    _workers[worker_class.name] = worker_class


def registered_workers() -> dict[str, type[BatchWorker]]:
    return dict(_workers)
