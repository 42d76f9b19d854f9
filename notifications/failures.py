"""The notifications app's failures: dead notifications and campaign messages not sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import F

from notifications.campaigns import campaign_target_requeue
from notifications.models import Campaign, CampaignTarget, Notification
from notifications.services import notification_requeue
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource, Impact, error_code


def _replay_notification(notification_id: int, actor: Any, reason: str) -> str:
    notification_requeue(notification_id=notification_id, actor=actor, reason=reason)
    return "DEAD → PENDING"


def _replay_target(target_id: int, actor: Any, reason: str) -> str:
    campaign_target_requeue(target_id=target_id, actor=actor, reason=reason)
    return "failed → pending"


# Why a message about another app's object (a booking) no longer makes sense to send, by
# subject type. The app that owns the object registers its rule here (bookings/failures.py),
# since this app sits below it and reads none of its models.
SubjectGuard = Callable[[str], str | None]
subject_guards: dict[str, SubjectGuard] = {}


def _guard_notification(notification: Notification) -> str | None:
    guard = subject_guards.get(notification.subject_type)
    return guard(notification.subject_id) if guard is not None else None


def _guard_target(target: CampaignTarget) -> str | None:
    if target.status == CampaignTarget.Status.INVALID:
        return "the number is invalid; fix the data instead of replaying"
    if target.campaign.status != Campaign.Status.RUNNING:
        return f"the campaign is {target.campaign.status}"
    return None


failure_sources.register(
    FailureSource(
        name="notification",
        category="notification",
        app="notifications",
        failing=lambda: Notification.objects.filter(status=Notification.Status.DEAD),
        provider=lambda n: n.channel,
        failure_code=lambda n: error_code(n.last_error),
        error=lambda n: n.last_error,
        first_seen=lambda n: n.created_at,
        last_seen=lambda n: n.created_at,
        last_seen_expression=F("created_at"),
        occurrence_field="attempt_count",
        impact=lambda n: Impact(5, "a customer message was not delivered"),
        guard=_guard_notification,
        predicted=lambda n: "DEAD → PENDING",
        replay=_replay_notification,
        dead_lettered=lambda rows: rows,
    )
)

failure_sources.register(
    FailureSource(
        name="campaign_target",
        category="notification",
        app="notifications",
        failing=lambda: CampaignTarget.objects.filter(
            status__in=[CampaignTarget.Status.FAILED, CampaignTarget.Status.INVALID]
        ).select_related("campaign"),
        provider=lambda t: "whatsapp",
        failure_code=lambda t: error_code(t.last_error) or t.status,
        error=lambda t: t.last_error,
        first_seen=lambda t: t.updated_at,
        last_seen=lambda t: t.updated_at,
        first_seen_field="updated_at",
        last_seen_expression=F("updated_at"),
        impact=lambda t: Impact(1, "a campaign message was not sent"),
        guard=_guard_target,
        predicted=lambda t: f"{t.status} → pending",
        replay=_replay_target,
    )
)
