"""django-q2 entry points: they only wake a worker; the rows hold the state."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from notifications.services import push_tokens_cleanup
from notifications.workers import (
    CampaignDispatcherWorker,
    CampaignStallDetector,
    CampaignTargetImporter,
    NotificationDeliveryWorker,
)


def run_notification_delivery_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return (
        NotificationDeliveryWorker()
        .run_once(triggered_by=triggered_by, drain_seconds=settings.WORKER_DRAIN_SECONDS)
        .as_dict()
    )


def run_campaign_dispatcher_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return CampaignDispatcherWorker().run_once(triggered_by=triggered_by).as_dict()


def run_campaign_target_importer(triggered_by: str = "schedule") -> dict[str, Any]:
    return (
        CampaignTargetImporter()
        .run_once(triggered_by=triggered_by, drain_seconds=settings.WORKER_DRAIN_SECONDS)
        .as_dict()
    )


def run_campaign_stall_detector(triggered_by: str = "schedule") -> dict[str, Any]:
    return CampaignStallDetector().run_once(triggered_by=triggered_by).as_dict()


def cleanup_push_tokens() -> int:
    return push_tokens_cleanup()
