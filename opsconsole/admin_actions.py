"""Admin actions that act: narrow to legal rows, show the count, ask for a reason, confirm.

Nothing destructive runs from a single click at 3 a.m.: the first POST renders a
confirmation page that says how many of the selected rows the action will touch; only the
second POST, with a non-empty reason, calls the service.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

ActionPerformer = Callable[[QuerySet, str], tuple[int, int]]


def confirm_with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    legal: QuerySet,
    perform: ActionPerformer,
    legal_description: str,
) -> HttpResponse | None:
    """Render the confirmation page, or perform on `legal` when confirmed with a reason.

    `perform(queryset, reason)` returns (done, skipped) and must call services only.
    """
    reason = (request.POST.get("reason") or "").strip()
    if request.POST.get("confirm") == "yes":
        if not reason:
            modeladmin.message_user(request, "A reason is required.", messages.ERROR)
        else:
            done, skipped = perform(legal, reason)
            level = messages.SUCCESS if skipped == 0 else messages.WARNING
            modeladmin.message_user(
                request, f"{title}: {done} done, {skipped} skipped (no longer eligible).", level
            )
            return None
    selected = queryset.count()
    eligible = legal.count()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "action": action,
        "selected_count": selected,
        "eligible_count": eligible,
        "ineligible_count": selected - eligible,
        "legal_description": legal_description,
        "eligible_objects": list(legal[:50]),
        "selected_ids": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
        "reason": reason,
    }
    return TemplateResponse(request, "admin/confirm_with_reason.html", context)
