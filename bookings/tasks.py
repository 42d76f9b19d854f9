"""Earlier django-q2 entry point of the hold expiry worker. Every worker runs through
`opsconsole.workers.run(name, triggered_by)`; this name stays because tasks queued before
that still carry it."""

from __future__ import annotations

from typing import Any

from opsconsole.workers import run


def run_booking_hold_expiry_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("booking_hold_expiry_worker", triggered_by)
