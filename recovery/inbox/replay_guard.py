"""The inbox's one replay of an open failure, shared by the bulk engine and the case view:
its guard first, then its source's own replay service; the DLQ sweeper replays through it too."""

from __future__ import annotations

from typing import Any

from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource
from recovery.inbox.groups import failure_resolve


def guarded_replay(source: FailureSource, row: Any, actor: Any, reason: str) -> tuple[bool, str]:
    """(replayed, what happened): a replay that no longer makes sense resolves the failure
    with the guard's reason instead (audited by `failure_resolve`)."""
    if verdict := source.guard(row):
        failure_resolve(source=source.name, source_id=row.pk, actor=actor, reason=verdict)
        return False, verdict
    return True, failure_replay(source=source.name, source_id=row.pk, actor=actor, reason=reason)


def failure_replay(*, source: str, source_id: int, actor: audit.Actor, reason: str) -> str:
    """Run a failure's own replay service; a source whose row stays as it was after a replay
    that worked (`replay_resolves`) has that occurrence closed with the replay's reason."""
    failure_source = failure_sources.get(source)
    outcome = failure_source.replay(source_id, actor, reason)
    if failure_source.replay_resolves:
        failure_resolve(
            source=source, source_id=source_id, actor=actor, reason=f"replayed: {reason}"
        )
    return outcome
