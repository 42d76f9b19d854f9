"""A draining run's upkeep, shared by every drain loop: the kill switch is rechecked every
SWITCH_RECHECK_SECONDS and the heartbeat written every HEARTBEAT_SECONDS, so the
bookkeeping does not grow with the number of batches or items."""

from __future__ import annotations

import time

from django.utils import timezone

from opsconsole.models import WorkerStatus
from opsconsole.workers.switches import worker_enabled

SWITCH_RECHECK_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0


class RunUpkeep:
    def __init__(self, worker_name: str, *, heartbeat: bool) -> None:
        self.worker_name = worker_name
        self.heartbeat = heartbeat
        self.last_switch_check = self.last_heartbeat = time.monotonic()

    def still_enabled(self) -> bool:
        """Heartbeat when due; False once the worker's kill switch is found off."""
        now = time.monotonic()
        enabled = True
        if now - self.last_switch_check >= SWITCH_RECHECK_SECONDS:
            self.last_switch_check = now
            enabled = worker_enabled(self.worker_name)
        if enabled and self.heartbeat and now - self.last_heartbeat >= HEARTBEAT_SECONDS:
            self.last_heartbeat = now
            WorkerStatus.objects.filter(name=self.worker_name).update(
                last_heartbeat_at=timezone.now()
            )
        return enabled
