"""Re-run the onboarding nudges for a window of sign-ups once readiness reports `ready` (the
incident guide's step): nudges of those customers that parked go round again, the steps they
are owed and lack are planned, and the onboarding worker sends what is due. A nudge that
went out is never sent again, so running it twice sends nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from bookings.models import Nudge
from bookings.nudges import OnboardingNudges, nudges_requeue, onboarding_nudges_plan

COMMAND = "manage.py onboarding_nudges"


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date like 2026-12-01") from exc


class Command(BaseCommand):
    help = "Send the onboarding nudges owed to customers who signed up in a window."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="", help="first sign-up day, e.g. 2026-11-20")
        parser.add_argument("--until", default="", help="last sign-up day (default: today)")
        parser.add_argument("--reason", default="re-run after the incident", help="audited")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        until = _day(options["until"]) + timedelta(days=1) if options["until"] else now
        since = (
            _day(options["since"])
            if options["since"]
            else now - timedelta(days=settings.ONBOARDING_WINDOW_DAYS)
        )
        if since >= until:
            raise CommandError("--since is after --until")
        parked = Nudge.objects.filter(
            status=Nudge.Status.PARKED,
            kind__in=Nudge.ONBOARDING_KINDS,
            customer__date_joined__gte=since,
            customer__date_joined__lt=until,
        ).values_list("pk", flat=True)
        requeued = nudges_requeue(nudge_ids=list(parked), actor=COMMAND, reason=options["reason"])
        planned = onboarding_nudges_plan(now, signed_up_from=since, signed_up_until=until)
        summary = OnboardingNudges.as_scheduled().run_once(
            triggered_by=COMMAND, drain_seconds=float(settings.WORKER_DRAIN_SECONDS)
        )
        self.stdout.write(
            json.dumps(
                {
                    "signed_up_from": since.isoformat(),
                    "signed_up_until": until.isoformat(),
                    "requeued": requeued,
                    "planned": planned,
                    **summary.as_dict(),
                },
                default=str,
            )
        )
        if summary.skipped:
            raise CommandError("onboarding_nudges is switched off (its kill switch)")
