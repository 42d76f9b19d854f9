"""What the overview leads with: counters (failing now, DLQ, stuck, the oldest stuck item's
age) and the rows that need someone, worst first: readiness components that are not ready
and what the apps report as failing (an integration whose deliveries fail behind its circuit).
Ready components are only counted, so a healthy console shows one line, not 24 rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

from opsconsole.workers.registry import registered_workers

# The readiness statuses an attention row may have, worst first (ready rows never show).
LEVELS = ("error", "degraded")
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class AttentionRow:
    level: str  # one of LEVELS: error is red, degraded amber
    kind: str  # what the row is about: "component", "integration"...
    name: str
    text: str
    link: str = ""


AttentionSource = Callable[[], list[AttentionRow]]
_sources: dict[str, AttentionSource] = {}


def register_attention_source(name: str, source: AttentionSource) -> None:
    """An app's rows for the overview's attention list (the platform imports no app)."""
    _sources[name] = source


def component_summary(details: dict[str, Any]) -> str:
    """A component's details on one line, empty values left out; a component that words its
    own state (`note`) is read in its words."""
    if isinstance(details.get("note"), str) and details["note"]:
        note = details["note"]
        return note if len(note) <= SUMMARY_CHARS else note[: SUMMARY_CHARS - 1] + "…"
    parts = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(
                " ".join(str(v) for v in item.values()) if isinstance(item, dict) else str(item)
                for item in value
            )
        parts.append(f"{key.replace('_', ' ')}: {value}")
    text = "; ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def attention_rows(health: dict[str, Any]) -> tuple[list[AttentionRow], int]:
    """The rows needing someone, errors before degraded ones, and how many components are
    ready (counted, not listed)."""
    rows = [
        AttentionRow(
            component["status"],
            "component",
            name,
            component_summary(component["details"]),
            component_link(name),
        )
        for name, component in health["components"].items()
        if component["status"] in LEVELS
    ]
    for source in _sources.values():
        rows.extend(source())
    rows.sort(key=lambda row: LEVELS.index(row.level))
    ready = sum(1 for c in health["components"].values() if c["status"] not in LEVELS)
    return rows, ready


def component_link(name: str) -> str:
    """A worker's component (or its listener's) leads to the worker's page, where it is run
    again or switched off (docs/runbooks/incident-response.md); others lead nowhere."""
    worker = name.removesuffix("_listener")
    if worker not in registered_workers():
        return ""
    return reverse("admin:platform_workerstatus_change", args=[worker])


def changelist_link(model: Any, statuses: Iterable[str]) -> str:
    """The model's admin list filtered to `statuses`, or "" when it has no admin."""
    opts = model._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?status__in={','.join(statuses)}"


def counters(queues: Sequence[dict[str, Any]], failing: Sequence[AttentionRow]) -> dict[str, Any]:
    """The four numbers at the top, each with the queues behind it."""
    oldest = max(
        (queue for queue in queues if queue["oldest_stuck_age"] is not None),
        key=lambda queue: queue["oldest_stuck_age"],
        default=None,
    )
    return {
        "failing_now": len(failing),
        "dlq": sum(queue["dead"] for queue in queues),
        "dlq_by_queue": [q for q in queues if q["dead"]],
        "stuck": sum(queue["stuck"] for queue in queues),
        "stuck_by_queue": [q for q in queues if q["stuck"]],
        "estimated": any(queue["estimated"] for queue in queues),
        "oldest_stuck": oldest,
        "oldest_stuck_age": oldest["oldest_stuck_age"] if oldest else None,
    }
