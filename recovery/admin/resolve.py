"""Resolve one failure from its own record's page ("Resolve…"), as the failure inbox and the
case view do: closed with a reason and audited, leaving the inbox until it fails again; one
that moves money waits for a second operator. Every app's failing records get the button,
attached here because the inbox's resolution lives in recovery (apps never import it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from opsconsole.admin.actions import destructive_action
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource
from recovery.inbox.groups import failure_resolve_by_operator, open_rows


def resolve_action(source: FailureSource) -> Callable[..., Any]:
    def legal(rows: QuerySet) -> QuerySet:
        return open_rows(source).filter(pk__in=rows.values("pk"))

    def resolve(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int, reason: str) -> None:
        outcome = failure_resolve_by_operator(
            source=source.name, source_id=pk, actor=request.user, reason=reason
        )
        if outcome.awaiting_second_operator:
            model_admin.message_user(
                request,
                f"#{pk}: money moves, so a second operator must resolve it too; "
                "your request is recorded.",
                messages.WARNING,
            )

    resolve.__name__ = f"resolve_{source.name}"
    two = " (two operators: money moves)" if source.moves_money else ""
    return destructive_action(
        description=f"Resolve without replaying ({source.name})…",
        title="Resolve failures",
        button="Resolve…",
        legal=legal,
        legal_description=f"open {source.name} failures; each is closed with your reason and "
        f"leaves the inbox until it fails again{two}",
    )(resolve)


def attach_resolve_buttons(site: admin.AdminSite) -> None:
    """Called from RecoveryConfig.ready(): every app's admin and failure sources exist."""
    for source in failure_sources.all_sources():
        model_admin = site._registry.get(source.failing().model)
        if model_admin is None:
            continue
        action = resolve_action(source)
        if action.__name__ not in {getattr(a, "__name__", a) for a in model_admin.actions or ()}:
            model_admin.actions = [*(model_admin.actions or ()), action]
