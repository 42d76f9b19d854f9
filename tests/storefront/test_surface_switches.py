"""The storefront surfaces' switches (docs/runbooks/incident-response.md): on in a fresh
database, flipped by operators only, with a reason and an audit row; viewers read them."""

from __future__ import annotations

import pytest
from django.test import Client
from waffle.models import Switch

from opsconsole.models import AuditEvent
from storefront.errors import StorefrontInvalidPayload, SurfaceAlreadySwitched
from storefront.models import LOYALTY_REDEMPTIONS, PROMOTIONAL_BANNERS, StorefrontSurface
from storefront.surfaces import ensure_storefront_surfaces, surface_is_on, surface_switch_set
from tests.helpers import action_post
from tests.opsconsole.factories import UserFactory
from tests.storefront.factories import suspend

BANNERS = "/api/v1/storefront/banners"
SURFACES_ADMIN = "/admin/storefront/storefrontsurface/"


def staff_client(username: str, group: str) -> Client:
    client = Client()
    client.force_login(UserFactory(username=username, groups=[group], is_staff=True))
    return client


# --------------------------------------------------------------------- the switches


@pytest.mark.django_db
def test_a_fresh_database_serves_every_surface_and_a_rerun_keeps_a_suspension(surfaces):
    assert {s.name: s.active for s in StorefrontSurface.objects.all()} == {
        PROMOTIONAL_BANNERS.switch: True,
        LOYALTY_REDEMPTIONS.switch: True,
    }
    suspend(surfaces["promotional_banners"])
    ensure_storefront_surfaces(Switch)  # the data migration's step, run again
    assert not surface_is_on(PROMOTIONAL_BANNERS)
    assert surface_is_on(LOYALTY_REDEMPTIONS)


@pytest.mark.django_db
def test_a_missing_switch_reads_as_served(db, anonymous_client):
    Switch.objects.filter(name=PROMOTIONAL_BANNERS.switch).delete()
    assert surface_is_on(PROMOTIONAL_BANNERS)
    assert anonymous_client.get(BANNERS).json()["suppressed"] is False


@pytest.mark.django_db
def test_a_flip_needs_a_reason_and_a_second_flip_is_a_conflict(surfaces):
    banners = surfaces["promotional_banners"]
    with pytest.raises(StorefrontInvalidPayload):
        surface_switch_set(switch_id=banners.pk, active=False, actor="test", reason="  ")
    assert surface_is_on(PROMOTIONAL_BANNERS)
    suspend(banners)
    with pytest.raises(SurfaceAlreadySwitched):
        suspend(banners, reason="someone else, a second later")
    events = AuditEvent.objects.filter(event__startswith="storefront.surface.")
    assert [(e.event, e.reason) for e in events] == [
        ("storefront.surface.suspended", "loyalty ledger double-counts")
    ]


# ------------------------------------------------------------------------ the admin


@pytest.mark.django_db
def test_an_operator_suspends_a_surface_in_the_admin_with_a_reason_and_an_audit_row(
    surfaces, anonymous_client
):
    operator = staff_client("opal", "Support operator")
    banners = surfaces["promotional_banners"]

    confirmation = action_post(operator, SURFACES_ADMIN, "suspend_surfaces", [banners.pk])
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert 'id="confirm-with-reason"' in page
    assert '<textarea id="id_reason" name="reason"' in page  # the visible reason field

    without_reason = action_post(
        operator, SURFACES_ADMIN, "suspend_surfaces", [banners.pk], confirm="yes", reason=" "
    )
    assert without_reason.status_code == 200  # the page again, saying why
    assert "A reason is required." in without_reason.content.decode()
    assert surface_is_on(PROMOTIONAL_BANNERS)
    assert not AuditEvent.objects.filter(event__startswith="storefront.surface.").exists()

    done = action_post(
        operator,
        SURFACES_ADMIN,
        "suspend_surfaces",
        [banners.pk],
        confirm="yes",
        reason="banner images 500 on the CDN",
    )
    assert done.status_code == 302
    assert not surface_is_on(PROMOTIONAL_BANNERS)
    assert anonymous_client.get(BANNERS).json() == {"banners": [], "suppressed": True}
    event = AuditEvent.objects.get(event="storefront.surface.suspended")
    assert (event.actor, event.reason) == ("opal", "banner images 500 on the CDN")
    assert (event.object_type, event.object_id) == ("storefront.storefrontsurface", str(banners.pk))
    assert event.before_state == {
        "surface": "promotional_banners",
        "switch": PROMOTIONAL_BANNERS.switch,
        "active": True,
    }
    assert event.after_state["active"] is False

    # The list shows each surface, its state, who flipped it last and why.
    listing = operator.get(SURFACES_ADMIN).content.decode()
    assert "SUSPENDED" in listing and "opal" in listing
    assert "banner images 500 on the CDN" in listing
    assert "Loyalty redemptions" in listing and "on (served)" in listing

    operator.post(
        f"{SURFACES_ADMIN}{banners.pk}/act/resume_surfaces/",
        {"confirm": "yes", "reason": "CDN fixed"},
    )
    assert surface_is_on(PROMOTIONAL_BANNERS)
    assert AuditEvent.objects.get(event="storefront.surface.resumed").reason == "CDN fixed"


@pytest.mark.django_db
def test_a_viewer_sees_the_surfaces_but_cannot_flip_them(surfaces):
    viewer = staff_client("vera", "Support viewer")
    banners = surfaces["promotional_banners"]

    listing = viewer.get(SURFACES_ADMIN)
    assert listing.status_code == 200
    assert "Promotional banners" in listing.content.decode()
    assert 'name="action"' not in listing.content.decode()  # no action offered
    page = viewer.get(f"{SURFACES_ADMIN}{banners.pk}/change/")
    assert page.status_code == 200
    assert "object-tool-suspend_surfaces" not in page.content.decode()

    forged = action_post(
        viewer, SURFACES_ADMIN, "suspend_surfaces", [banners.pk], confirm="yes", reason="x"
    )
    assert forged.status_code in (200, 302, 403)
    refused = viewer.post(
        f"{SURFACES_ADMIN}{banners.pk}/act/suspend_surfaces/", {"confirm": "yes", "reason": "x"}
    )
    assert refused.status_code == 403
    assert surface_is_on(PROMOTIONAL_BANNERS)
    assert not AuditEvent.objects.filter(event__startswith="storefront.surface.").exists()
