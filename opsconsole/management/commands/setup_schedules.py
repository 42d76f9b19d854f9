"""Create or update every periodic django-q2 schedule. Safe to run any number of times.

Schedules only wake workers; the rows they work on hold all the state.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

from opsconsole.models import WorkerStatus
from opsconsole.workers import RUN_TASK
from opsconsole.workers.registry import registered_workers

# Housekeeping that is not a batch worker: (schedule name, task, every N minutes).
HOUSEKEEPING = [
    ("purge_expired_idempotency_keys", "opsconsole.tasks.purge_expired_idempotency_keys", 60),
    ("cleanup_push_tokens", "notifications.tasks.cleanup_push_tokens", 24 * 60),
]


class Command(BaseCommand):
    help = "Create or update the periodic schedules that wake the workers."

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = set()
        for name, worker_class in registered_workers().items():
            wanted.add(name)
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": RUN_TASK,
                    "args": repr((name,)),
                    "schedule_type": Schedule.MINUTES,
                    "minutes": worker_class.schedule_minutes,
                    "repeats": -1,
                },
            )
            # A row per worker lets the admin list and switch workers that never ran yet.
            WorkerStatus.objects.get_or_create(name=name)
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb} schedule {name} every {worker_class.schedule_minutes} min")
        for name, func, minutes in HOUSEKEEPING:
            wanted.add(name)
            Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"schedule {name} every {minutes} min")
        if self.backup_drill_scheduled():
            wanted.add(BACKUP_DRILL)
        # A schedule whose task no longer imports would fail every run: remove it.
        for schedule in Schedule.objects.exclude(name__in=wanted):
            if not task_exists(schedule.func):
                schedule.delete()
                self.stdout.write(f"deleted schedule {schedule.name}: {schedule.func} is gone")
        self.stdout.write(self.style.SUCCESS(f"{len(wanted)} schedules in place"))

    def backup_drill_scheduled(self) -> bool:
        """The backup drill at BACKUP_DRILL_SCHEDULE (quarterly by default); "off" removes it.
        A new schedule starts on the first Tuesday of the next quarter, 14:00 UTC
        (docs/runbooks/backup-restore-drill.md). An existing one keeps its next run."""
        cadence = str(settings.BACKUP_DRILL["schedule"])
        if cadence == "off":
            Schedule.objects.filter(name=BACKUP_DRILL).delete()
            self.stdout.write("backup drill not scheduled (BACKUP_DRILL_SCHEDULE=off)")
            return False
        schedule, created = Schedule.objects.update_or_create(
            name=BACKUP_DRILL,
            defaults={
                "func": "opsconsole.tasks.run_backup_drill",
                "schedule_type": DRILL_SCHEDULE_TYPES[cadence],
                "repeats": -1,
            },
        )
        if created:
            schedule.next_run = first_tuesday_of_next_quarter(timezone.now())
            schedule.save(update_fields=["next_run"])
        self.stdout.write(
            f"schedule {BACKUP_DRILL} {cadence}, next {schedule.next_run:%Y-%m-%d %H:%M}"
        )
        return True


BACKUP_DRILL = "backup_drill"
DRILL_SCHEDULE_TYPES = {
    "quarterly": Schedule.QUARTERLY,
    "monthly": Schedule.MONTHLY,
    "weekly": Schedule.WEEKLY,
    "daily": Schedule.DAILY,
}


def first_tuesday_of_next_quarter(now: datetime) -> datetime:
    """The DR cadence: the first Tuesday of each quarter at 14:00 UTC."""
    quarter_month = (now.month - 1) // 3 * 3 + 4
    year = now.year + (quarter_month > 12)
    first = datetime(year, (quarter_month - 1) % 12 + 1, 1, 14, 0, tzinfo=UTC)
    return first + timedelta(days=(1 - first.weekday()) % 7)


def task_exists(dotted_path: str) -> bool:
    module_path, _, name = dotted_path.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except ImportError:
        return False
    return callable(getattr(module, name, None))
