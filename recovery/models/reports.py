"""Reports the console sends on a schedule."""

from __future__ import annotations

from django.db import models


class WeeklyDigest(models.Model):
    """One ISO week's operations digest (docs/runbooks/incident-response.md): what it said, and
    whether it went out.

    The scheduled run sends each week once (a retried task finds it sent); `send_weekly_
    digest --week` sends it again on purpose, with a new provider idempotency key.
    """

    week = models.CharField(max_length=8, unique=True, help_text="ISO week, e.g. 2026-W47")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    summary = models.JSONField(default=dict)
    recipient = models.CharField(max_length=254, blank=True)
    sends = models.PositiveIntegerField(default=0, help_text="Times it went out.")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"digest {self.week}"
