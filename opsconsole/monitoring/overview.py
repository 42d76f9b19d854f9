"""The console overview (docs/runbooks/incident-response.md), what support staff open at 3 a.m.:
first the counters and what needs attention (opsconsole/monitoring/overview_attention.py: failing
integrations, components not ready, open alerts and incidents), then charts of outcomes
(sections the apps register); below, counts per queue and status with the oldest stuck item and
each queue's depth over the day, readiness in full, and the last operator actions.

Counts come from the newest queue-depth sample (a minute old at most), so the page costs
the same at 10M rows as at 10k; before the first sample they are counted live. The page
refreshes itself every 5 seconds without a reload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from opsconsole.admin.actions import permission_denied_page
from opsconsole.models import VIEW_PERMISSION, Alert, AuditEvent, Incident
from opsconsole.monitoring import charts
from opsconsole.monitoring.health import readiness
from opsconsole.monitoring.metrics import registered_queues
from opsconsole.monitoring.overview_attention import attention_rows, changelist_link, counters
from opsconsole.monitoring.queue_depth import depth_series, latest_samples, status_counts

RECENT_ACTIONS = 20
OPEN_SHOWN = 20
REFRESH_SECONDS = 5

_sections: dict[str, tuple[int, Callable[[], str]]] = {}


def register_overview_section(title: str, render: Callable[[], str], *, order: int = 0) -> None:
    """A chart section of the overview, drawn by an app from its own rollups; sections show
    by `order`, then as registered."""
    _sections[title] = (order, render)


def overview_sections() -> list[tuple[str, str]]:
    ordered = sorted(_sections.items(), key=lambda section: section[1][0])
    return [(title, render()) for title, (_, render) in ordered]


def queue_overview() -> list[dict[str, Any]]:
    rows = []
    now = timezone.now()
    samples = latest_samples()
    for name, queue in registered_queues().items():
        model = queue.model
        sample = samples.get(name)
        if sample is not None:
            counts, estimated, as_of = sample.counts, sample.estimated, sample.sampled_at
        else:
            (counts, estimated), as_of = status_counts(model), now
        oldest = None
        if queue.stuck_statuses:
            oldest = (
                model._default_manager.filter(status__in=queue.stuck_statuses)
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
                "stuck_link": changelist_link(model, queue.stuck_statuses),
                "dead": sum(counts.get(s, 0) for s in queue.dead_statuses),
                "dead_link": changelist_link(model, queue.dead_statuses),
                "oldest_stuck": oldest,
                "oldest_stuck_link": link,
                "oldest_stuck_age": (now - since) if since else None,
                "estimated": estimated,
                "as_of": as_of,
                "depth_chart": charts.line(
                    depth_series(name, queue.stuck_statuses), testid=f"depth-{name}"
                ),
            }
        )
    return rows


def console_home(request: HttpRequest) -> HttpResponse:
    """GET /admin/: support staff land on the overview; the app list is one click away
    (/admin/apps/). Staff without the console's view permission get the app list."""
    if request.user.has_perm(VIEW_PERMISSION):
        return console_overview(request)
    return admin.site.index(request)


def console_overview(request: HttpRequest) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    health = readiness()
    queues = queue_overview()
    attention, ready_count = attention_rows(health)
    context = {
        **admin.site.each_context(request),
        "title": "Console overview",
        "counters": counters(queues, attention),
        "attention": attention,
        "ready_count": ready_count,
        "queues": queues,
        "sections": overview_sections(),
        "refresh_seconds": REFRESH_SECONDS,
        "health": health,
        "open_alerts": Alert.objects.filter(acknowledged_at__isnull=True)[:OPEN_SHOWN],
        "open_alert_count": Alert.objects.filter(acknowledged_at__isnull=True).count(),
        "open_incidents": Incident.objects.filter(status=Incident.Status.OPEN)[:OPEN_SHOWN],
        "recent_actions": AuditEvent.objects.filter(actor_user__isnull=False).order_by("-id")[
            :RECENT_ACTIONS
        ],
    }
    return TemplateResponse(request, "admin/console_overview.html", context)
