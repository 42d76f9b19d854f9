"""The failure-source registry: each app declares its kinds of failure here, so the failure
inbox, the DLQ sweeper and the bulk engine work on every app without importing any.

A source says how to list its failing rows, describe one (provider, code, error, when,
customer impact), ask its domain whether a replay still makes sense (the guard) and replay
it. Apps register theirs in their `failures.py`, which the platform app imports at start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import OuterRef, Q
from django.urls import NoReverseMatch, reverse

from opsconsole.failures.fingerprints import failure_fingerprint, normalise_error


@dataclass(frozen=True)
class Impact:
    score: int
    reason: str


@dataclass
class FailureEntry:
    source: str
    app: str
    source_id: int
    provider: str
    failure_code: str
    error: str
    first_seen: datetime
    last_seen: datetime
    impact: Impact
    admin_url: str | None
    normalised_error: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.normalised_error = normalise_error(self.error)
        self.fingerprint = failure_fingerprint(
            app=self.app,
            source=self.source,
            provider=self.provider,
            failure_code=self.failure_code,
            error=self.error,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_id": self.source_id,
            "provider": self.provider,
            "failure_code": self.failure_code,
            "error": self.error[:500],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "impact": self.impact.score,
            "impact_reason": self.impact.reason,
            "admin_url": self.admin_url,
        }


CATEGORIES = ("payment", "notification", "booking", "integration", "station")


@dataclass(frozen=True)
class FailureSource:
    name: str
    app: str
    failing: Callable[[], models.QuerySet]
    provider: Callable[[Any], str]
    failure_code: Callable[[Any], str]
    error: Callable[[Any], str]
    first_seen: Callable[[Any], datetime]
    last_seen: Callable[[Any], datetime]
    impact: Callable[[Any], Impact]
    # None: replay makes sense; otherwise why it no longer does.
    guard: Callable[[Any], str | None]
    predicted: Callable[[Any], str]
    # (row id, actor, reason) -> what happened, for the operator.
    replay: Callable[[int, Any, str], str]
    moves_money: bool = False
    # A source that can hold a great many failures stores each row's fingerprint when the
    # failure is written; the inbox then groups it in SQL. `ranks_first` narrows rows to those
    # whose impact may beat the source's usual one (few), so impact stays exact.
    fingerprint_field: str = ""
    first_seen_field: str = "created_at"
    last_seen_expression: Any = None
    ranks_first: Callable[[models.QuerySet], models.QuerySet] | None = None
    # The column that moves when the row fails again (a change time, or an attempt count):
    # a resolution covers the occurrence it saw, not the row forever.
    occurrence_field: str = "updated_at"
    # The DLQ sweeper's share: the open rows that are dead-lettered (retries exhausted).
    # None: the source is not swept.
    dead_lettered: Callable[[models.QuerySet], models.QuerySet] | None = None
    # The error category (docs/runbooks/bookings-payments-notifications.md), which decides the alert
    # policy: payment failures page the on-call (a critical alert each), notification
    # failures raise one batched alert per window; booking, integration and station (refused
    # redemptions) failures are worked from the inbox.
    category: str = ""
    # Called with the row's id inside the transaction that resolves it (e.g. a delivery
    # releases the ordering key it held). None: nothing else changes.
    on_resolved: Callable[[int], None] | None = None
    # Why replaying the row would be refused right now, and what to do first (a delivery to
    # a paused integration: resume it); None: nothing stands in the way. A dry run counts
    # these apart instead of promising a replay the run will refuse.
    blocked: Callable[[Any], str | None] | None = None
    # True: the row stays as it was after a replay that worked (a refused redemption is a
    # record, not a state), so the inbox closes its occurrence with the replay's reason.
    replay_resolves: bool = False

    def entry(self, row: Any) -> FailureEntry:
        return FailureEntry(
            source=self.name,
            app=self.app,
            source_id=row.pk,
            provider=self.provider(row),
            failure_code=self.failure_code(row) or "unknown",
            error=self.error(row) or "",
            first_seen=self.first_seen(row),
            last_seen=self.last_seen(row),
            impact=self.impact(row),
            admin_url=admin_url(row),
        )

    def occurrence_match(self, *, outer: bool, row: Any = None) -> Q:
        """Resolutions (or requests) of the row's current occurrence: correlated to the outer
        row in SQL, or for one loaded `row`."""
        field = self.occurrence_field
        value = OuterRef(field) if outer else getattr(row, field)
        if field.endswith("_at"):
            return Q(occurrence_at=value, occurrence_count__isnull=True)
        return Q(occurrence_count=value, occurrence_at__isnull=True)

    def occurrence_of(self, row: Any) -> dict[str, Any]:
        field = self.occurrence_field
        key = "occurrence_at" if field.endswith("_at") else "occurrence_count"
        return {key: getattr(row, field)}


_SOURCES: dict[str, FailureSource] = {}
_BATCH_CONTEXTS: list[Callable[[], AbstractContextManager[None]]] = []


def register_batch_context(
    factory: Callable[[], AbstractContextManager[None]],
) -> Callable[[], AbstractContextManager[None]]:
    """An app's context for reading many failures at once: what its impact rule looks up
    per row (the bookings starting soon) is read once for the whole batch instead."""
    _BATCH_CONTEXTS.append(factory)
    return factory


@contextmanager
def batch() -> Iterator[None]:
    """Read many failures (the inbox, a group's page) inside every app's batch context."""
    with ExitStack() as stack:
        for factory in _BATCH_CONTEXTS:
            stack.enter_context(factory())
        yield


def register(source: FailureSource) -> FailureSource:
    """Declare a source; a name is registered once (a second app may not take it over)."""
    existing = _SOURCES.get(source.name)
    if existing is not None and existing is not source:
        raise ValueError(f"failure source {source.name!r} is registered already")
    _SOURCES[source.name] = source
    return source


def get(name: str) -> FailureSource:
    return _SOURCES[name]


def names() -> list[str]:
    return sorted(_SOURCES)


def apps() -> list[str]:
    return sorted({source.app for source in _SOURCES.values()})


def all_sources() -> Iterator[FailureSource]:
    return iter(list(_SOURCES.values()))


def admin_url(row: Any) -> str | None:
    opts = row._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    except NoReverseMatch:
        return None


def error_code(error: str) -> str:
    """The code in front of a stored error ("HTTP_503: ..." -> "HTTP_503")."""
    return (error or "").split(":", 1)[0].strip()[:60]


def autodiscover() -> None:
    """Import every installed app's `failures` module, which registers its sources."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("failures")
