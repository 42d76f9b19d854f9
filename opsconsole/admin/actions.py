"""Admin actions that act: narrow to legal rows, show the count, ask for a reason, confirm.

Nothing destructive runs from a single click at 3 a.m.: the first POST renders a
confirmation page that says how many of the selected rows the action will touch; only the
second POST, with a non-empty reason, calls the service.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from opsconsole.http.errors import ApplicationError
from opsconsole.models import IdempotencyKey
from opsconsole.outbound.guard import web_time_left_for_a_provider_call

# perform(legal rows, reason, the confirmation page's options) -> (done, not done)
ActionPerformer = Callable[[QuerySet, str, dict[str, Any]], tuple[int, int]]


def new_action_token() -> str:
    """The one-time token a confirmation form carries (see claim_action_token)."""
    return uuid.uuid4().hex


def each_legal(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    selected: QuerySet,
    call: Callable[[int, str, dict[str, Any]], object],
) -> ActionPerformer:
    """The usual `perform`: call a service for each eligible row with the reason. A row that
    changed state since the confirmation page is skipped, and the operator is told why."""

    def perform(legal: QuerySet, reason: str, options: dict[str, Any]) -> tuple[int, int]:
        done = 0
        # Counted before acting: a row acted on may leave the selection's filter (a replayed
        # DLQ item is no longer in the DLQ list), and counting after would read "-1 not done".
        selected_count = selected.count()
        for pk in list(legal.values_list("pk", flat=True)):
            if not web_time_left_for_a_provider_call():
                modeladmin.message_user(
                    request,
                    f"Stopped after {done} rows: this request's time is spent (each row may "
                    "call a provider). The rest are untouched; select them again, or start a "
                    "bulk action for many rows.",
                    messages.WARNING,
                )
                break
            try:
                call(pk, reason, options)
                done += 1
            except ApplicationError as exc:
                modeladmin.message_user(request, f"#{pk}: {exc.message}", messages.WARNING)
        return done, max(selected_count - done, 0)

    return perform


def permission_denied_page(request: HttpRequest, permission: str) -> HttpResponse | None:
    """For custom admin pages: None when the user has `permission`, else the console's
    refused page (403.html), the same one a model page's refused action shows, so a viewer
    who opens an action's address meets one page whichever kind of page it was."""
    if request.user.has_perm(permission):
        return None
    return TemplateResponse(
        request,
        "403.html",
        {
            **admin.site.each_context(request),
            "exception": f"This page needs the {permission} permission.",
        },
        status=403,
    )


def claim_action_token(request: HttpRequest, action: str) -> bool:
    """Idempotency-Key semantics for admin actions: the confirmation page carries a one-time
    token, so a double click or a resubmitted form acts once. False: already used."""
    token = (request.POST.get("action_token") or "").strip()
    if not token:
        return True
    now = timezone.now()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                owner=f"admin:{request.user.pk}",
                key=f"admin-action:{token}"[:255],
                request_fingerprint=action[:64],
                method="POST",
                path=request.path[:500],
                state=IdempotencyKey.State.COMPLETED,
                locked_at=now,
                expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
            )
    except IntegrityError:
        return False
    return True


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
    options: type[forms.Form] | None = None,
) -> HttpResponse | None:
    """Render the confirmation page, or perform on `legal` when confirmed with a reason.

    `perform(queryset, reason, options)` returns (done, skipped) and must call services only;
    `options` is a form of the action's own choices shown above the reason (a regeneration's
    override window), validated before anything runs.
    """
    reason = (request.POST.get("reason") or "").strip()
    confirmed = request.POST.get("confirm") == "yes"
    options_form = (
        options(request.POST if confirmed else None, prefix="option") if options else None
    )
    if confirmed:
        if not reason:
            modeladmin.message_user(request, "A reason is required.", messages.ERROR)
        elif options_form is not None and not options_form.is_valid():
            modeladmin.message_user(request, "Correct the options below.", messages.ERROR)
        elif not claim_action_token(request, action):
            modeladmin.message_user(
                request,
                f"{title}: this confirmation was already submitted; nothing was done twice.",
                messages.WARNING,
            )
            return None
        else:
            chosen = options_form.cleaned_data if options_form is not None else {}
            done, skipped = perform(legal, reason, chosen)
            rows = "row" if done == 1 else "rows"
            if done == 0 and legal.exists():
                # Every eligible row refused (a time in the past, a state the service will
                # not take): the page comes back with what the operator typed, to correct.
                modeladmin.message_user(
                    request,
                    f"{title}: nothing was done, for the reason said above. What you typed "
                    "is kept below: confirm again once that is fixed, or go back.",
                    messages.ERROR,
                )
            else:
                if skipped == 0:
                    modeladmin.message_user(
                        request, f"{title}: {done} {rows} done.", messages.SUCCESS
                    )
                else:
                    modeladmin.message_user(
                        request,
                        f"{title}: {done} {rows} done; {skipped} not done (no longer eligible, "
                        "refused or stopped, as said above).",
                        messages.WARNING,
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
        "options_form": options_form,
        "action_token": new_action_token(),
    }
    return TemplateResponse(request, "admin/confirm_with_reason.html", context)


def destructive_action(
    *,
    description: str,
    title: str,
    legal: Callable[[QuerySet], QuerySet],
    legal_description: str,
    each: bool = True,
    permissions: Sequence[str] = ("operate",),
    button: str = "",
    options: type[forms.Form] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., HttpResponse | None]]:
    """An admin action that changes things, with its confirmation page and reason.

    Listed as `description` for users with `permissions`. The first POST shows the page:
    `title`, how many of the selected rows are `legal(selected)` and what acting on them
    means (`legal_description`); the second, with a reason, acts, once per confirmation.
    The decorated method acts on one legal row, `(self, request, pk, reason)`, a row that
    changed meanwhile being skipped with its message; with `each=False` it acts on them all,
    `(self, request, legal_rows, reason) -> done`. Its name is the action's name. On a
    record's own page it is a button reading `button` (default: `title…`: it opens a
    confirmation page), shown while the record is legal. `options`, a form, adds the
    action's own choices to the confirmation page; their cleaned values reach the method as
    keyword arguments.
    """

    def decorate(act: Callable[..., Any]) -> Callable[..., HttpResponse | None]:
        @admin.action(permissions=list(permissions), description=description)
        @functools.wraps(act)
        def action(
            modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
        ) -> HttpResponse | None:
            if each:
                perform = each_legal(
                    modeladmin,
                    request,
                    queryset,
                    lambda pk, reason, chosen: act(modeladmin, request, pk, reason, **chosen),
                )
            else:

                def perform(rows: QuerySet, reason: str, chosen: dict[str, Any]) -> tuple[int, int]:
                    selected_count = queryset.count()  # before: acting may move rows out
                    done = act(modeladmin, request, rows, reason, **chosen)
                    return done, max(selected_count - done, 0)

            return confirm_with_reason(
                modeladmin,
                request,
                queryset,
                action=act.__name__,
                title=title,
                legal=legal(queryset),
                perform=perform,
                legal_description=legal_description,
                options=options,
            )

        action.asks_for_confirmation = True  # type: ignore[attr-defined]
        # For the record's own page (ObjectPageActions): which rows it applies to, and the
        # button's words there.
        action.legal = legal  # type: ignore[attr-defined]
        action.button = button or f"{title}…"  # type: ignore[attr-defined]
        return action

    return decorate
