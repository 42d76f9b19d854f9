"""docs/runbooks/incident-response.md, "Suspend a storefront surface", walked in the
browser: an operator suspends promotional banners from the surface's page with a reason,
the storefront's banners answer comes back suppressed, and the operator resumes them."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect
from waffle.models import Switch

from opsconsole.models import AuditEvent
from storefront.models import PROMOTIONAL_BANNERS, StorefrontSurface
from storefront.surfaces import ensure_storefront_surfaces, surface_is_on
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing
from tests.storefront.factories import PromotionalBannerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BANNERS = "/api/v1/storefront/banners"


def storefront_banners(visitor: Page, base_url: str) -> dict:
    """What the storefront reads, opened as a visitor does (no session)."""
    visitor.goto(f"{base_url}{BANNERS}")
    return json.loads(visitor.locator("body").inner_text())


def test_an_operator_suspends_promotional_banners_then_resumes_them(page, live_server):
    support_staff()
    ensure_storefront_surfaces(Switch)  # as the data migration leaves them
    PromotionalBannerFactory(title="Spring courts: two hours for one")
    surface = StorefrontSurface.objects.get(name=PROMOTIONAL_BANNERS.switch)
    surface_page = f"/admin/storefront/storefrontsurface/{surface.pk}/change/"
    visitor = page.context.browser.new_context().new_page()
    walk = Walk(page, live_server.url, "storefront-surfaces")

    served = storefront_banners(visitor, live_server.url)
    assert served["suppressed"] is False
    assert [b["title"] for b in served["banners"]] == ["Spring courts: two hours for one"]

    walk.log_in(OPERATOR)
    walk.link("Storefront surfaces")
    expect(page.locator("#result_list")).to_contain_text("on (served)")
    walk.shot("surfaces")
    walk.link("Promotional banners", within=page.locator("#result_list"))
    expect(page.locator(".field-state")).to_contain_text("on (served)")
    walk.shot("surface-page")
    walk.tool("suspend_surfaces")
    reason = page.get_by_label("Reason (recorded in the audit log):")
    expect(reason).to_be_visible()
    walk.shot("suspend-confirmation")
    said = walk.confirm("Banner images fail on the CDN; customers see broken banners")
    assert "Suspend storefront surfaces: 1 row done." in said
    expect(page.locator(".field-state")).to_contain_text("SUSPENDED")
    expect(page.locator(".field-last_change")).to_contain_text("SUSPENDED by opal")
    expect(page.get_by_test_id("object-tool-suspend_surfaces")).to_have_count(0)
    walk.shot("suspended")
    assert not surface_is_on(PROMOTIONAL_BANNERS)

    assert storefront_banners(visitor, live_server.url) == {"banners": [], "suppressed": True}

    walk.link("Storefront surfaces")
    expect(page.locator("#result_list")).to_contain_text("SUSPENDED")
    expect(page.locator("#result_list")).to_contain_text(
        "Banner images fail on the CDN; customers see broken banners"
    )
    walk.shot("surfaces-suspended")
    walk.link("Promotional banners", within=page.locator("#result_list"))
    walk.tool("resume_surfaces")
    walk.shot("resume-confirmation")
    assert "Resume storefront surfaces: 1 row done." in walk.confirm("CDN fixed; images load")
    expect(page.locator(".field-state")).to_contain_text("on (served)")
    walk.shot("resumed")

    served = storefront_banners(visitor, live_server.url)
    assert served["suppressed"] is False and len(served["banners"]) == 1

    events = AuditEvent.objects.filter(
        object_type="storefront.storefrontsurface", object_id=str(surface.pk)
    ).order_by("id")
    assert [(e.event, e.actor, e.reason) for e in events] == [
        (
            "storefront.surface.suspended",
            OPERATOR,
            "Banner images fail on the CDN; customers see broken banners",
        ),
        ("storefront.surface.resumed", OPERATOR, "CDN fixed; images load"),
    ]

    viewer_reads_but_acts_on_nothing(
        walk,
        reads=["/admin/storefront/storefrontsurface/", surface_page],
        refused=[
            f"/admin/storefront/storefrontsurface/{surface.pk}/act/{action}/"
            for action in ("suspend_surfaces", "resume_surfaces")
        ],
    )
    visitor.context.close()
