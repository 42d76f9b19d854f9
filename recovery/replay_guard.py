"""The inbox's one replay of an open failure, shared by the bulk engine and the case view:
its guard first, then its source's own replay service."""

from __future__ import annotations

from typing import Any

from opsconsole.failure_sources import FailureSource
from recovery.inbox import failure_resolve


def guarded_replay(source: FailureSource, row: Any, actor: Any, reason: str) -> tuple[bool, str]:
    """(replayed, what happened): a replay that no longer makes sense resolves the failure
    with the guard's reason instead (audited by `failure_resolve`)."""
    if verdict := source.guard(row):
        failure_resolve(source=source.name, source_id=row.pk, actor=actor, reason=verdict)
        return False, verdict
    return True, source.replay(row.pk, actor, reason)
