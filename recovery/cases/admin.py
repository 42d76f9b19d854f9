"""The case view in the admin: the same search box and case page as the API, with the
inbox's guarded actions on each open failure of the timeline."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from opsconsole.admin.actions import claim_action_token, new_action_token, permission_denied_page
from opsconsole.http.errors import ApplicationError
from opsconsole.http.inputs import is_id
from opsconsole.models import OPERATE_PERMISSION, VIEW_PERMISSION
from recovery.cases import services
from recovery.cases.timeline import KIND_MODELS

PAGE_SIZE = 100


def record_page(kind: str, pk: int) -> str:
    """The admin page of a timeline row's record ("" for a kind the admin does not show)."""
    model = KIND_MODELS.get(kind)
    if model is None or model not in admin.site._registry:
        return ""
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])


def case_search_page(request: HttpRequest) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    term = (request.GET.get("q") or "").strip()[:320]
    matches = services.case_search(term=term, viewer=request.user) if term else []
    context = {
        **admin.site.each_context(request),
        "title": "Customer cases",
        "q": term,
        "searched": bool(term),
        "matches": matches,
    }
    return TemplateResponse(request, "admin/case_search.html", context)


def case_page(request: HttpRequest, ref: str) -> HttpResponse:
    if denied := permission_denied_page(request, VIEW_PERMISSION):
        return denied
    if request.method == "POST":
        return _act(request, ref)
    reason = request.GET.get("reason", "")
    try:
        case = services.case_open(
            ref=ref,
            viewer=request.user,
            reason=reason,
            cursor=request.GET.get("cursor") or None,
            limit=PAGE_SIZE,
        )
    except ApplicationError as exc:
        context = {**admin.site.each_context(request), "title": "Customer case", "error": exc}
        status = exc.status_code
        return TemplateResponse(request, "admin/case.html", context, status=status)
    for entry in case["timeline"]:
        entry["admin_url"] = record_page(entry["kind"], entry["id"])
    next_query = (
        urlencode({"cursor": case["next_cursor"], "reason": reason}) if case["next_cursor"] else ""
    )
    context = {
        **admin.site.each_context(request),
        "title": "Customer case",
        "case": case,
        "reason": reason,
        "next_query": next_query,
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "action_token": new_action_token(),
    }
    return TemplateResponse(request, "admin/case.html", context)


def _act(request: HttpRequest, ref: str) -> HttpResponse:
    back = HttpResponseRedirect(reverse("case-page", args=[ref]))
    if denied := permission_denied_page(request, OPERATE_PERMISSION):
        return denied
    reason = (request.POST.get("reason") or "").strip()
    verb = request.POST.get("verb", "")
    source = request.POST.get("source", "")
    raw_id = request.POST.get("source_id", "")
    if not reason:
        messages.error(request, "A reason is required.")
        return back
    if verb not in ("replay", "resolve") or not is_id(raw_id):
        messages.error(request, "Unknown action.")
        return back
    if not claim_action_token(request, f"case_{verb}"):
        messages.warning(request, "This form was already submitted.")
        return back
    act = services.case_failure_replay if verb == "replay" else services.case_failure_resolve
    try:
        outcome = act(
            ref=ref, source=source, source_id=int(raw_id), actor=request.user, reason=reason
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return back
    if verb == "resolve":
        resolved = getattr(outcome, "resolved", False)
        outcome = "resolved" if resolved else "waiting for a second operator to confirm"
    messages.success(request, f"{source} #{raw_id}: {outcome}.")
    return back
