"""The failure inbox: every failed, dead-lettered, stalled or manual-review item of every app
in one list, grouped by error fingerprint and sorted by customer impact.

The kinds of failure come from the registry (opsconsole/failures/failure_sources.py), where each app
declares its own in its `failures.py`; the inbox imports no business app. It owns what is
common to all of them: which occurrences are resolved, grouping, and the resolution rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q

from opsconsole.admin.scale import planner_rows
from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureEntry, FailureSource, Impact
from opsconsole.http.errors import Conflict, NotFound
from opsconsole.monitoring.alerts import alerts_settle
from opsconsole.outbound.ai_help import AiHelp, ai_help
from recovery.models import FailureResolution, FailureResolutionRequest

# A group with more open failures than this is counted by the planner's estimate: an exact
# count of a million-row group read every row of it on every page load.
EXACT_GROUP_COUNT = 1000
MAX_GROUPS_PER_SOURCE = 1000


def open_rows(failure_source: FailureSource) -> models.QuerySet:
    """The source's failing rows whose current occurrence nobody resolved."""
    legacy = Q(occurrence_at__isnull=True, occurrence_count__isnull=True)
    resolved = FailureResolution.objects.filter(
        legacy | failure_source.occurrence_match(outer=True),
        source=failure_source.name,
        source_id=OuterRef("pk"),
    )
    return failure_source.failing().exclude(Exists(resolved))


@dataclass
class FailureGroup:
    """One fingerprint's open failures: those grouped in Python (`entries`) and those grouped
    in SQL by their stored fingerprint (`stored_count`, read on demand)."""

    fingerprint: str
    app: str
    source: str
    provider: str
    failure_code: str
    normalised_error: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    impact: Impact = field(default_factory=lambda: Impact(0, ""))
    entries: list[FailureEntry] = field(default_factory=list)
    stored_count: int = 0
    count_estimated: bool = False  # past EXACT_GROUP_COUNT: the planner's estimate

    @property
    def count(self) -> int:
        return self.stored_count + len(self.entries)

    def add(self, entry: FailureEntry) -> None:
        self.entries.append(entry)
        self._widen(entry.first_seen, entry.last_seen, entry.impact)

    def add_stored(
        self, *, count: int, first_seen: datetime, last_seen: datetime, impact: Impact
    ) -> None:
        self.stored_count += count
        self._widen(first_seen, last_seen, impact)

    def _widen(self, first_seen: datetime, last_seen: datetime, impact: Impact) -> None:
        self.first_seen = min(self.first_seen or first_seen, first_seen)
        self.last_seen = max(self.last_seen or last_seen, last_seen)
        if impact.score > self.impact.score:
            self.impact = impact

    def _stored_rows(self) -> models.QuerySet:
        failure_source = failure_sources.get(self.source)
        return open_rows(failure_source).filter(
            **{failure_source.fingerprint_field: self.fingerprint}
        )

    def source_ids(self) -> list[int]:
        """Every open failure in the group (what a bulk action freezes)."""
        ids = [entry.source_id for entry in self.entries]
        if self.stored_count:
            ids += self._stored_rows().order_by("pk").values_list("pk", flat=True)
        return ids

    def top_entries(self, limit: int) -> list[FailureEntry]:
        """The group's first `limit` failures, highest impact first, then oldest first."""
        with failure_sources.batch():
            return self._top_entries(limit)

    def _top_entries(self, limit: int) -> list[FailureEntry]:
        entries = list(self.entries)
        if self.stored_count:
            failure_source = failure_sources.get(self.source)
            rows = self._stored_rows()
            order = (failure_source.first_seen_field, "pk")
            picked = list(rows.order_by(*order)[:limit])
            if failure_source.ranks_first:
                picked += failure_source.ranks_first(rows).order_by(*order)[:limit]
            seen: set[int] = set()
            for row in picked:
                if row.pk not in seen:
                    seen.add(row.pk)
                    entries.append(failure_source.entry(row))
        entries.sort(key=lambda e: (-e.impact.score, e.first_seen))
        return entries[:limit]

    def as_dict(self, *, with_items: bool = False, item_limit: int = 50) -> dict[str, Any]:
        top = self.top_entries(max(5, item_limit) if with_items else 5)
        data = {
            "fingerprint": self.fingerprint,
            "app": self.app,
            "source": self.source,
            "provider": self.provider,
            "failure_code": self.failure_code,
            "normalised_error": self.normalised_error,
            # What people read: one error as the partner wrote it (the normalised form, with
            # its <n> and <email> placeholders, is what groups them).
            "example_error": top[0].error if top else self.normalised_error,
            "count": self.count,
            "count_estimated": self.count_estimated,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "impact": self.impact.score,
            "impact_reason": self.impact.reason,
            "sample_ids": [e.source_id for e in top[:5]],
        }
        if with_items:
            data["items"] = [e.as_dict() for e in top[:item_limit]]
        return data


def failure_groups(*, app: str = "", source: str = "", fingerprint: str = "") -> list[FailureGroup]:
    """The open failures by group; with `fingerprint`, only that group (a source that stores
    fingerprints aggregates just that group's rows, through its index)."""
    with failure_sources.batch():
        return _failure_groups(app=app, source=source, fingerprint=fingerprint)


def _failure_groups(*, app: str, source: str, fingerprint: str) -> list[FailureGroup]:
    groups: dict[str, FailureGroup] = {}
    for failure_source in failure_sources.all_sources():
        name = failure_source.name
        if (source and name != source) or (app and failure_source.app != app):
            continue
        rows = open_rows(failure_source)
        if failure_source.fingerprint_field:
            stored = rows.exclude(**{failure_source.fingerprint_field: ""})
            if fingerprint:
                stored = stored.filter(**{failure_source.fingerprint_field: fingerprint})
            _add_stored_groups(failure_source, stored, groups, only=fingerprint)
            # Rows written before fingerprints were stored (or by hand) are grouped here.
            rows = rows.filter(**{failure_source.fingerprint_field: ""})
        for row in rows:
            entry = failure_source.entry(row)
            _group_of(groups, entry.fingerprint, entry).add(entry)
    if fingerprint:
        groups = {key: group for key, group in groups.items() if key == fingerprint}
    return sorted(groups.values(), key=lambda g: (-g.impact.score, -g.count, g.fingerprint))


def _group_of(
    groups: dict[str, FailureGroup], fingerprint: str, entry: FailureEntry
) -> FailureGroup:
    return groups.setdefault(
        fingerprint,
        FailureGroup(
            fingerprint=fingerprint,
            app=entry.app,
            source=entry.source,
            provider=entry.provider,
            failure_code=entry.failure_code,
            normalised_error=entry.normalised_error,
        ),
    )


def _add_stored_groups(
    failure_source: FailureSource,
    rows: models.QuerySet,
    groups: dict[str, FailureGroup],
    *,
    only: str = "",
) -> None:
    """Each stored fingerprint's group, read through the inbox index so the cost follows the
    number of groups, not of rows: the fingerprints one index probe each, then per group
    its oldest EXACT_GROUP_COUNT + 1 rows. A group that fits is counted exactly; a larger
    one takes the planner's estimate (kept accurate by the status-fingerprint statistics)
    and its last seen from its newest row. Each group is described by its newest row, and
    its impact is the highest of that row's and of the few rows that rank first. With
    `only`, just that fingerprint's group."""
    key = failure_source.fingerprint_field
    ranked: dict[str, Impact] = {}
    if failure_source.ranks_first:
        for row in failure_source.ranks_first(rows):
            impact = failure_source.impact(row)
            fingerprint = getattr(row, key)
            if fingerprint not in ranked or impact.score > ranked[fingerprint].score:
                ranked[fingerprint] = impact
    oldest_first = (failure_source.first_seen_field, "pk")
    for fingerprint in [only] if only else _fingerprints(rows, key):
        in_group = rows.filter(**{key: fingerprint})
        window = in_group.order_by(*oldest_first)[: EXACT_GROUP_COUNT + 1]
        stats = window.aggregate(
            rows=Count("pk"),
            first=Min(failure_source.first_seen_field),
            last=Max(failure_source.last_seen_expression),
            newest=Max("pk"),
        )
        if not stats["rows"]:
            continue  # closed since the fingerprint was read
        estimated = stats["rows"] > EXACT_GROUP_COUNT
        representative = None
        if estimated:
            representative = in_group.order_by(*(f"-{name}" for name in oldest_first)).first()
            planned = planner_rows(failure_source.failing().filter(**{key: fingerprint}))
            stats["rows"] = max(planned or 0, stats["rows"])
        else:
            representative = in_group.filter(pk=stats["newest"]).first()
        if representative is None:  # it changed state since the count: the next load shows it
            continue
        entry = failure_source.entry(representative)
        if estimated:
            stats["last"] = max(stats["last"], entry.last_seen)
        impact = entry.impact
        if (other := ranked.get(fingerprint)) and other.score > impact.score:
            impact = other
        group = _group_of(groups, fingerprint, entry)
        group.add_stored(
            count=stats["rows"], first_seen=stats["first"], last_seen=stats["last"], impact=impact
        )
        group.count_estimated = group.count_estimated or estimated


def _fingerprints(rows: models.QuerySet, key: str) -> list[str]:
    """The distinct fingerprints of `rows`, one probe of the inbox index each (a skip scan:
    the next value above the last), instead of a GROUP BY over every row."""
    found: list[str] = []
    while len(found) < MAX_GROUPS_PER_SOURCE:
        after = rows.filter(**{f"{key}__gt": found[-1]}) if found else rows
        value = after.order_by(key).values_list(key, flat=True).first()
        if value is None:
            break
        found.append(value)
    return found


GROUP_SUMMARY_INSTRUCTIONS = (
    "You explain an operations console's failure group to a support operator in plain "
    "language: what is failing, for whom, the likely cause, and what to check first. Three "
    "to five sentences. Use only what the material says."
)


def failure_group_summary(group: FailureGroup, *, actor: audit.Actor) -> AiHelp:
    """The group in plain language by the AI help (its description and first ten items,
    masked), or that material itself with the reason it is not enhanced; audited on the
    group. The API and the group's page both ask here."""
    return ai_help(
        purpose="failure_group_summary",
        instructions=GROUP_SUMMARY_INSTRUCTIONS,
        material=json.dumps(group.as_dict(with_items=True, item_limit=10), default=str),
        actor=actor,
        object_type="recovery.failure_group",
        object_id=group.fingerprint,
    )


def failure_group(fingerprint: str) -> FailureGroup | None:
    return next(iter(failure_groups(fingerprint=fingerprint)), None)


class SecondOperatorRequired(Conflict):
    code = "OPS-409-SECOND-OPERATOR-REQUIRED"
    default_message = "This failure moves money: another operator must confirm its resolution."


class FailureNotOpen(NotFound):
    code = "OPS-404-NOT-FOUND"
    default_message = "No open failure with this id."


def failure_resolve(*, source: str, source_id: int, actor: audit.Actor, reason: str) -> bool:
    """Close a failure's current occurrence without replaying it; audited, and it leaves
    the inbox until the row fails again. False when it was resolved already.

    Callers that are not the bulk engine (whose money-moving runs were approved by a second
    operator already) go through `failure_resolve_by_operator`."""
    failure_source = failure_sources.get(source)
    row = failure_source.failing().filter(pk=source_id).first()
    occurrence = failure_source.occurrence_of(row) if row is not None else {}
    try:
        with transaction.atomic():
            _record_resolution(
                source=source,
                source_id=source_id,
                occurrence=occurrence,
                actor=actor,
                reason=reason,
            )
    except IntegrityError:
        return False  # this occurrence is resolved already
    return True


def _record_resolution(
    *,
    source: str,
    source_id: int,
    occurrence: dict[str, Any],
    actor: audit.Actor,
    reason: str,
    requested_by: str = "",
) -> FailureResolution:
    resolution = FailureResolution.objects.create(
        source=source,
        source_id=source_id,
        reason=reason,
        resolved_by=audit.actor_label(actor),
        requested_by=requested_by,
        **occurrence,
    )
    failure_source = failure_sources.get(source)
    if failure_source.on_resolved is not None:
        failure_source.on_resolved(source_id)
    # The alerts it raised are about a failure a person has now closed.
    alerts_settle(
        obj=failure_source.failing().model(pk=source_id),
        reason=f"its failure was resolved by {audit.actor_label(actor)}",
    )
    audit.record(
        "recovery.failure.resolved",
        obj=resolution,
        after={"source": source, "source_id": source_id, "requested_by": requested_by},
        actor=actor,
        reason=reason,
    )
    return resolution


@dataclass(frozen=True)
class ResolveOutcome:
    resolved: bool
    awaiting_second_operator: bool
    requested_by: str = ""


def failure_resolve_by_operator(
    *, source: str, source_id: int, actor: Any, reason: str
) -> ResolveOutcome:
    """An operator resolves an open failure (API and admin). A failure that moves money
    needs two operators: the first call records a request, a different operator's call
    completes it, and the same operator's second call is refused."""
    failure_source = failure_sources.get(source)
    with transaction.atomic():
        row = open_rows(failure_source).select_for_update(of=("self",)).filter(pk=source_id).first()
        if row is None:
            raise FailureNotOpen()
        occurrence = failure_source.occurrence_of(row)
        if not failure_source.moves_money:
            _record_resolution(
                source=source,
                source_id=source_id,
                occurrence=occurrence,
                actor=actor,
                reason=reason,
            )
            return ResolveOutcome(resolved=True, awaiting_second_operator=False)
        request = (
            FailureResolutionRequest.objects.select_for_update()
            .filter(failure_source.occurrence_match(outer=False, row=row))
            .filter(source=source, source_id=source_id)
            .first()
        )
        actor_name = audit.actor_label(actor)
        if request is None:
            try:
                with transaction.atomic():
                    request = FailureResolutionRequest.objects.create(
                        source=source,
                        source_id=source_id,
                        reason=reason,
                        requested_by=actor_name,
                        requested_by_user=actor if getattr(actor, "pk", None) else None,
                        **occurrence,
                    )
            except IntegrityError as exc:  # another operator's request landed first
                raise SecondOperatorRequired(
                    "Another operator asked to resolve this failure just now; reload."
                ) from exc
            audit.record(
                "recovery.failure.resolution_requested",
                obj=request,
                after={"source": source, "source_id": source_id},
                actor=actor,
                reason=reason,
            )
            return ResolveOutcome(
                resolved=False, awaiting_second_operator=True, requested_by=actor_name
            )
        if request.requested_by == actor_name:
            raise SecondOperatorRequired(details={"requested_by": request.requested_by})
        _record_resolution(
            source=source,
            source_id=source_id,
            occurrence=occurrence,
            actor=actor,
            reason=f"{request.reason} / confirmed: {reason}",
            requested_by=request.requested_by,
        )
        request.delete()
        return ResolveOutcome(
            resolved=True, awaiting_second_operator=False, requested_by=request.requested_by
        )
