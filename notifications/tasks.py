"""django-q2 entry points of the notifications app. Every worker runs through
`opsconsole.workers.run(name, triggered_by)`; the workers' earlier names stay because tasks
queued before that still carry them."""

from __future__ import annotations

from typing import Any

from notifications.services import push_tokens_cleanup
from opsconsole.workers import run


def run_notification_delivery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("notification_delivery_worker", triggered_by)


def run_campaign_dispatcher_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("campaign_dispatcher_worker", triggered_by)


def run_campaign_target_importer(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("campaign_target_importer", triggered_by)


def run_campaign_stall_detector(triggered_by: str = "schedule") -> dict[str, Any]:
    return run("campaign_stall_detector", triggered_by)


def cleanup_push_tokens() -> int:
    return push_tokens_cleanup()
