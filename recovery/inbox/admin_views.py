"""Admin pages of the failure inbox: the grouped inbox, a group's items with the dry-run form,
and edit-and-replay of a delivery's payload."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from opsconsole.admin.actions import (
    claim_action_token,
    new_action_token,
    permission_denied_page,
)
from opsconsole.failures import failure_sources
from opsconsole.http.errors import ApplicationError
from opsconsole.models import OPERATE_PERMISSION, VIEW_PERMISSION
from opsconsole.outbound.ai_help import ai_configured
from recovery import services
from recovery.inbox import bulk_actions
from recovery.inbox import groups as inbox
from recovery.inbox import trends as inbox_trends
from recovery.integrations.circuits import circuit_state
from recovery.models import BulkAction, Integration, RecoveryItem


def failure_inbox(request: HttpRequest) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    app = request.GET.get("app", "")
    groups = inbox.failure_groups(app=app if app in failure_sources.apps() else "")
    circuits = {
        name: circuit_state(integration)
        for integration in Integration.objects.all()
        for name in [integration.name]
    }
    trends = inbox_trends.failure_group_sparklines([group.fingerprint for group in groups])
    rows = [
        {
            **group.as_dict(),
            "trend": trends[group.fingerprint],
            "circuit": circuits.get(group.provider)
            if group.source == "integration_delivery"
            else "",
        }
        for group in groups
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Failure inbox",
        "groups": rows,
        "apps": failure_sources.apps(),
        "current_app": app,
    }
    return TemplateResponse(request, "admin/failure_inbox.html", context)


def _group_gone(request: HttpRequest) -> HttpResponse:
    """A group whose failures were all resolved meanwhile: back to the inbox, saying so."""
    messages.info(request, "No open failures have this fingerprint any more.")
    return HttpResponseRedirect(reverse("failure-inbox"))


def failure_group_detail(request: HttpRequest, fingerprint: str) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    group = inbox.failure_group(fingerprint)
    if group is None:
        return _group_gone(request)
    if request.method == "POST":
        if denied := permission_denied_page(request, OPERATE_PERMISSION):
            return denied
        reason = (request.POST.get("reason") or "").strip()
        mode = request.POST.get("mode") or BulkAction.Mode.REPLAY
        try:
            rate = float(request.POST.get("rate_per_second") or 1)
        except ValueError:
            rate = -1
        if not reason:
            messages.error(request, "A reason is required.")
        elif claim_action_token(request, "bulk_action_create"):
            try:
                action = bulk_actions.bulk_action_create(
                    actor=request.user,
                    reason=reason,
                    fingerprint=fingerprint,
                    rate_per_second=rate,
                    mode=mode,
                )
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                refused = action.preview.get("would_be_refused") or {}
                messages.success(
                    request,
                    f"Dry run #{action.pk}: {_items(action.preview['would_replay'])} would be "
                    f"replayed, "
                    f"{_items(action.preview['would_resolve'])} resolved. Review it below, then "
                    + (
                        "a second operator presses Approve, and Start runs it."
                        if action.moves_money
                        else "press Start."
                    ),
                )
                for why, count in refused.items():
                    messages.warning(
                        request,
                        f"{_items(count)} would be refused: {why}. Starting now would leave "
                        f"{'it' if count == 1 else 'them'} failing.",
                    )
                return HttpResponseRedirect(
                    reverse("admin:recovery_bulkaction_change", args=[action.pk])
                )
        else:
            messages.warning(request, "This form was already submitted.")
    context = {
        **admin.site.each_context(request),
        # Titled by what failed, not by its fingerprint (which stays in the URL).
        "title": f"{group.app} · {group.source}: {group.provider} {group.failure_code}",
        "group": group.as_dict(with_items=True, item_limit=200),
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "action_token": new_action_token(),
    }
    return TemplateResponse(request, "admin/failure_group.html", context)


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def edit_and_replay(request: HttpRequest, item_id: int) -> HttpResponse:
    if denied := permission_denied_page(request, OPERATE_PERMISSION):
        return denied
    item = get_object_or_404(RecoveryItem.objects.select_related("integration"), pk=item_id)
    current = item.payload_override if item.payload_override is not None else item.payload
    text = request.POST.get("payload") or json.dumps(current, indent=2, sort_keys=True)
    reason = (request.POST.get("reason") or "").strip()
    diff, errors = "", []
    if request.method == "POST":
        try:
            edited = json.loads(text)
        except ValueError as exc:
            errors = [f"Not JSON: {exc}"]
            edited = None
        if edited is not None:
            diff = services.payload_diff(current, edited)
            if request.POST.get("confirm") == "yes":
                if not reason:
                    errors = ["A reason is required."]
                elif not claim_action_token(request, "edit_and_replay"):
                    messages.warning(request, "This edit was already submitted.")
                    return HttpResponseRedirect(
                        reverse("admin:recovery_recoveryitem_change", args=[item.pk])
                    )
                else:
                    try:
                        services.recovery_item_edit_and_replay(
                            integration_id=item.integration_id,
                            item_id=item.pk,
                            payload=edited,
                            actor=request.user,
                            reason=reason,
                        )
                    except ApplicationError as exc:
                        errors = exc.details.get("fields", {}).get("payload") or [exc.message]
                    else:
                        messages.success(request, "Payload edited and the item replayed.")
                        return HttpResponseRedirect(
                            reverse("admin:recovery_recoveryitem_change", args=[item.pk])
                        )
    context = {
        **admin.site.each_context(request),
        "title": f"Edit and replay item #{item.pk}",
        "item": item,
        "payload_text": text,
        "reason": reason,
        "diff": diff,
        "errors": errors,
        "schema": json.dumps(services.payload_schema_for(item), indent=2),
        "action_token": new_action_token(),
    }
    return TemplateResponse(request, "admin/edit_and_replay.html", context)


def failure_group_ai_summary(request: HttpRequest, fingerprint: str) -> HttpResponse:
    """The group in plain language by the AI help, or its own material with the reason the
    help is not available: never an error, and nothing changes."""
    if denied := permission_denied_page(request, OPERATE_PERMISSION):
        return denied
    group = inbox.failure_group(fingerprint)
    if group is None:
        return _group_gone(request)
    result = (
        inbox.failure_group_summary(group, actor=request.user) if request.method == "POST" else None
    )
    context = {
        **admin.site.each_context(request),
        "title": "Summarize a failure group",
        "subject": (
            f"{group.count} open failure(s) of {group.source} ({group.provider}): "
            f"{group.failure_code} {group.normalised_error}"
        ),
        "sends": "the group's description and its first ten items",
        "button": "Summarize with AI help",
        "result": result,
        "ai_configured": ai_configured(),
        "back_url": reverse("failure-group", args=[fingerprint]),
        "back_label": "Back to the group",
    }
    return TemplateResponse(request, "admin/ai_help.html", context)
