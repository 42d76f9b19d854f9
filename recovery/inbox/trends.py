"""The failure inbox over time: the minute's sample of its groups (taken by the queue-depth
sampler), and each group's sparkline read from those samples, not from the failures."""

from __future__ import annotations

from django.utils.safestring import SafeString

from opsconsole.monitoring import charts
from opsconsole.monitoring.queue_depth import Reading, group_series
from recovery.inbox.groups import failure_groups

INBOX_SAMPLE = "failure_inbox"


def failure_inbox_reading() -> Reading:
    """The inbox for the minute's sample: open failures per group, so each group's
    sparkline (and its growth) reads samples, not the failures."""
    groups = failure_groups()
    return Reading(
        counts={"open": sum(group.count for group in groups)},
        estimated=any(group.count_estimated for group in groups),
        groups={group.fingerprint: {"open": group.count} for group in groups},
    )


def failure_group_sparklines(fingerprints: list[str]) -> dict[str, SafeString]:
    """Each group's open failures over the last 24 hours, from the inbox samples."""
    series = group_series(INBOX_SAMPLE, fingerprints, "open")
    return {
        fingerprint: charts.line(points, testid=f"group-trend-{fingerprint}", width=120, height=24)
        for fingerprint, points in series.items()
    }
