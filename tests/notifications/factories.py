"""Notifications in the states the recovery tools work on."""

from __future__ import annotations

from notifications.models import Notification
from notifications.services import notification_enqueue


def dead_email(error: str) -> Notification:
    notification = notification_enqueue(channel="email", to="a@b.test", template="t", context={})
    Notification.objects.filter(pk=notification.pk).update(status="DEAD", last_error=error)
    return notification
