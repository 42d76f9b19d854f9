"""The console overview (seed 002): counts per app and status, the oldest stuck item of
each queue, workers' health, the open alerts and the last operator actions, on one page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from opsconsole.admin_actions import permission_denied_page
from opsconsole.health import readiness
from opsconsole.metrics import registered_queues
from opsconsole.models import VIEW_PERMISSION, Alert, AuditEvent

RECENT_ACTIONS = 20


def queue_overview() -> list[dict[str, Any]]:
    rows = []
    now = timezone.now()
    for name, queue in registered_queues().items():
        model = queue.model
        counts = dict(
            model.objects.order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        oldest = None
        if queue.stuck_statuses:
            oldest = (
                model.objects.filter(status__in=queue.stuck_statuses)
                .order_by(queue.age_field, "pk")
                .first()
            )
        link = None
        if oldest is not None:
            try:
                opts = model._meta
                link = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[oldest.pk])
            except NoReverseMatch:
                link = None
        since = getattr(oldest, queue.age_field, None) if oldest is not None else None
        rows.append(
            {
                "name": name,
                "app": model._meta.app_config.verbose_name,
                "counts": sorted(counts.items()),
                "stuck": sum(counts.get(s, 0) for s in queue.stuck_statuses),
                "oldest_stuck": oldest,
                "oldest_stuck_link": link,
                "oldest_stuck_age": (now - since) if since else None,
            }
        )
    return rows


def console_overview(request: HttpRequest) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    health = readiness()
    context = {
        **admin.site.each_context(request),
        "title": "Console overview",
        "queues": queue_overview(),
        "health": health,
        "open_alerts": Alert.objects.filter(acknowledged_at__isnull=True)[:20],
        "recent_actions": AuditEvent.objects.filter(actor_user__isnull=False).order_by("-id")[
            :RECENT_ACTIONS
        ],
    }
    return TemplateResponse(request, "admin/console_overview.html", context)
