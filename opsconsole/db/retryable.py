"""What a worker keeps on a row it tries again: how many times it has tried and when the row
is due next. One spelling for every retried row (recovery items, hosted sessions, refunds,
webhook failures, notifications, campaign targets), so a claim, a backoff and an admin column
read the same everywhere.

Rows whose tables predate the spelling keep their column (`db_column=` on the subclass's
field), so the names changed without touching a table."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from opsconsole.failures.retry import RetryPolicy


class Retryable(models.Model):
    # Attempts made so far; the retry policy's backoff and budget read it.
    attempt_count = models.PositiveIntegerField(default=0)
    # When the worker tries the row again (None: not scheduled).
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def count_failed_attempt(self, policy: RetryPolicy) -> bool:
        """Count a failed attempt: due again after the policy's wait, or, its budget spent,
        not at all. Returns whether the budget is spent (the caller parks the row with its
        evidence). Nothing is saved here."""
        self.attempt_count += 1
        spent = self.attempt_count >= policy.max_attempts
        self.next_retry_at = (
            None
            if spent
            else timezone.now() + timedelta(seconds=policy.delay_seconds(self.attempt_count))
        )
        return spent
