"""Every add and change form an operator can open saves when filled as the page asks: the
test reads the rendered form, fills its visible fields (the reason among them) and submits
it, so a required field the page does not show, or an error it does not explain, fails."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from opsconsole.models import AuditEvent
from tests.admin_forms.form_filler import filled, form_controls

REASON = "runbook: checked every form"
# What a person types where a sample of the field's kind would not do (by model and name).
TYPED: dict[str, dict[str, str]] = {
    "recovery.integration": {
        "name": "partner-form-test",
        "endpoint_url": "https://partner.example.com/hooks",
        "event_types": '["booking.confirmed"]',
        "payload_schema": "null",
    },
    "bookings.resource": {"name": "Court 9"},
    "bookings.catalogchange": {
        "kind": "price_change",
        "apply_at_0": "2030-01-07",
        "apply_at_1": "09:00:00",
        "price": "32.50",
    },
    "platform.incident": {"title": "Checkout links fail", "severity": "sev2"},
    "platform.consolebanner": {"message": "Stripe is slow; refunds are delayed"},
    "payments.stationcredential": {"station_id": "faro-1", "label": "Faro"},
    "storefront.promotionalbanner": {"title": "Padel week", "link": "/offers/padel"},
}


# What an operator changes on a record's page, each saved through its service and audited.
EDITS: dict[str, dict[str, str]] = {
    "recovery.integration": {"rate_per_second": "7"},
    "bookings.resource": {"name": "Court renamed by the form test"},
    "platform.incident": {"summary": "Links failed for 20 minutes; regenerated."},
    "payments.voucher": {"station_scope": "lisbon-1,porto-2"},
    "storefront.promotionalbanner": {"body": "Now on weekends too."},
    "notifications.campaign": {
        "throttle_per_minute": "45",
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "08:00",
    },
}


def error_text(html: str) -> str:
    notes = re.findall(r'class="(?:errornote|errorlist[^"]*)"[^>]*>(.*?)</', html, re.S)
    return " | ".join(note.strip() for note in notes)


def submit(client: Client, url: str, model_name: str, typed: dict[str, str]) -> tuple[int, str]:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    html = page.content.decode()
    controls = [c for c in form_controls(html, f"{model_name}_form") if "__prefix__" not in c.name]
    assert any(c.kind == "hidden" and c.name == "csrfmiddlewaretoken" for c in controls), url
    names = {c.name for c in controls}
    data = filled(controls, typed)
    unknown = set(typed) - names
    assert not unknown, (url, "fields the page does not show", unknown)
    if "reason" in names:
        data["reason"] = REASON
    response = client.post(url, data)
    return response.status_code, error_text(response.content.decode())


@pytest.mark.django_db
def test_every_add_and_change_form_an_operator_opens_saves(world):
    operator = Client()
    operator.force_login(world["operator"])
    request_user = User.objects.get(username="operator")
    tried: list[str] = []
    refused: dict[str, str] = {}
    for model, model_admin in admin.site._registry.items():
        label, name = model._meta.label_lower, model._meta.model_name
        base = f"/admin/{model._meta.app_label}/{name}/"

        class Request:
            user = request_user

        if model_admin.has_add_permission(Request()):
            status, errors = submit(operator, f"{base}add/", name, TYPED.get(label, {}))
            tried.append(f"add {label}")
            if status != 302:
                refused[f"add {label}"] = errors or f"HTTP {status}"
        obj = model.objects.order_by("pk").first()
        if obj is not None and model_admin.has_change_permission(Request(), obj):
            audited = AuditEvent.objects.count()
            url = f"{base}{obj.pk}/change/"
            status, errors = submit(operator, url, name, EDITS.get(label, {}))
            tried.append(f"change {label}")
            if status != 302:
                refused[f"change {label}"] = errors or f"HTTP {status}"
            elif label in EDITS:
                assert AuditEvent.objects.count() > audited, (url, "saved without an audit row")
    print(f"\nforms submitted: {len(tried)}: {', '.join(sorted(tried))}")
    assert refused == {}
    assert {f"change {label}" for label in EDITS} <= set(tried)
    assert {f"add {label}" for label in TYPED} <= set(tried)


@pytest.mark.django_db
def test_every_action_button_an_operator_is_offered_confirms_from_what_its_page_shows(world):
    """Each record's action buttons (ObjectPageActions) on the demo world: the confirmation
    page is filled as shown (the reason, and any options with their defaults) and confirms;
    an action the record no longer allows says why in a message, never a silent refusal."""
    from django.contrib.messages import get_messages

    operator = Client()
    operator.force_login(world["operator"])
    pressed: list[str] = []
    unexplained: dict[str, str] = {}
    for model, model_admin in admin.site._registry.items():
        if not hasattr(model_admin, "object_page_tools"):
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for obj in model.objects.order_by("pk")[:3]:
            page = operator.get(f"{base}{obj.pk}/change/")
            if page.status_code != 200:
                continue
            for url, slug in re.findall(
                r'href="([^"]+)" data-testid="object-tool-([a-z_]+)"', page.content.decode()
            ):
                confirm = operator.get(url)
                html = confirm.content.decode()
                controls = form_controls(html, "confirm-with-reason")
                if not controls:
                    # An earlier button on this page (a regeneration) made the record
                    # ineligible: the page must say so.
                    if "Nothing to do." not in html:
                        unexplained[url] = "no confirmation form"
                    continue
                done = operator.post(url, filled(controls, {"reason": REASON}))
                pressed.append(f"{model._meta.label_lower}.{slug}")
                said = [str(m) for m in get_messages(done.wsgi_request)]
                if done.status_code == 200 and any("nothing was done" in m for m in said):
                    # Refused by the service (the demo record's state): the page came back
                    # with the refusal's reason for the operator to correct.
                    if not any(m.startswith("#") for m in said):
                        unexplained[url] = "refused without the service's reason"
                elif done.status_code != 302:
                    unexplained[url] = (
                        error_text(done.content.decode()) or f"HTTP {done.status_code}"
                    )
                elif not list(get_messages(done.wsgi_request)):
                    unexplained[url] = "no message said what happened"
    print(f"\naction buttons pressed: {len(pressed)}: {', '.join(sorted(set(pressed)))}")
    assert unexplained == {}
    assert {"platform.workerstatus.disable_workers", "recovery.integration.pause_integrations"} <= (
        set(pressed)
    )
    assert len(set(pressed)) >= 12
