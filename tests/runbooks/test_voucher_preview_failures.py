"""docs/runbooks/voucher-preview-failures.md, walked in the browser: the voucher renderer is
unset, then configured but hanging; the voucher's page shows the degraded box with the code
and the renderer's status, the operator tells support with a console banner, the renderer
is fixed, the page shows the image again and the banner is cleared from its list."""

from __future__ import annotations

import struct
import zlib
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from opsconsole.models import AuditEvent, ConsoleBanner
from payments.vouchers import voucher_issue
from tests.helpers import token_client
from tests.runbooks.walk import OPERATOR, Walk, support_staff, viewer_reads_but_acts_on_nothing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BANNER = "Voucher previews unavailable; read the code from the voucher page"
DEGRADED = "Voucher previews unavailable; fallback to code view."


def voucher_png(width: int = 240, height: int = 90) -> bytes:
    """A real (solid green) PNG, so the fixed page's screenshot shows an image, not a broken
    one: no imaging library is installed, and a PNG is a signature and three chunks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x41\x76\x5a" * width  # filter byte, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def voucher_png_status(client) -> str:
    """Runbook step 2: the integrations status probed now (`force=true`)."""
    body = client.get("/api/integrations/status?force=true").json()
    return {item["name"]: item["status"] for item in body["integrations"]}["voucher_png"]


def test_a_degraded_preview_is_announced_with_a_banner_and_cleared_once_fixed(
    page, live_server, settings, httpserver, hanging_handler
):
    operator, _ = support_staff()
    voucher = voucher_issue(description="Spa day", value=Decimal("40"), station_scope="*")
    walk = Walk(page, live_server.url, "voucher-preview-failures")

    # No renderer configured: the fallback shows by itself.
    settings.VOUCHER_RENDERER_URL = ""
    walk.log_in(OPERATOR)
    walk.link("Vouchers")
    walk.link(voucher.code, within=page.locator("#result_list"))
    degraded = page.get_by_test_id("voucher-preview-degraded")
    expect(degraded).to_contain_text(DEGRADED)
    expect(degraded).to_contain_text("(renderer: not_configured)")
    expect(degraded).to_contain_text(voucher.code)
    walk.shot("preview-not-configured")
    voucher_page = page.url

    # Configured, but the renderer answers after the timeout.
    httpserver.expect_request("/render").respond_with_handler(hanging_handler(1.5))
    settings.VOUCHER_RENDERER_URL = httpserver.url_for("/render")
    settings.VOUCHER_RENDERER_TIMEOUT_SECONDS = 0.3
    page.reload()
    expect(degraded).to_contain_text("(renderer: timeout)")
    expect(degraded).to_contain_text(voucher.code)
    expect(page.get_by_test_id("voucher-preview")).to_have_count(0)
    walk.shot("preview-timeout")
    operator_api = token_client(operator)
    assert voucher_png_status(operator_api) == "red"

    # Step 3: tell support with the console banner.
    walk.link("Console banners")
    walk.link("Add console banner")
    page.get_by_label("Message:").fill(BANNER)
    page.get_by_label("Level:").select_option(label="Warning")
    page.get_by_label("Reason:").fill("Voucher renderer times out")
    walk.shot("banner-form")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "was added successfully" in walk.message()
    banner = page.get_by_test_id("console-banner")
    expect(banner).to_contain_text(BANNER)
    expect(banner).to_contain_text(f"set by {OPERATOR}")
    walk.shot("banner-set")

    # Step 4, outside the console: the renderer answers again.
    httpserver.clear_all_handlers()
    httpserver.expect_request("/render", method="POST").respond_with_data(
        voucher_png(), content_type="image/png"
    )
    # Step 5: probe until green, see the image, then clear the banner.
    assert voucher_png_status(operator_api) == "green"
    page.goto(voucher_page)
    expect(page.get_by_test_id("voucher-preview")).to_be_visible()
    expect(page.get_by_test_id("voucher-preview-degraded")).to_have_count(0)
    expect(banner).to_contain_text(BANNER)  # still up on every page until cleared
    walk.shot("preview-image")
    walk.link("Console banners")
    set_banner = ConsoleBanner.objects.get(active=True)
    page.locator(f"#result_list input[name=_selected_action][value='{set_banner.pk}']").check()
    page.get_by_label("Action:").select_option(label="Clear the banner…")
    walk.shot("clear-selected")
    page.get_by_role("button", name="Go").click()
    walk.shot("clear-confirmation")
    done = walk.confirm("Renderer answers again; previews back")
    assert "Clear the console banner: 1 row done." in done
    expect(page.get_by_test_id("console-banner")).to_have_count(0)
    walk.shot("banner-cleared")

    set_banner.refresh_from_db()
    assert (set_banner.active, set_banner.set_by, set_banner.cleared_by) == (
        False,
        OPERATOR,
        OPERATOR,
    )
    set_event = AuditEvent.objects.get(event="platform.banner.set")
    assert (set_event.actor, set_event.reason) == (OPERATOR, "Voucher renderer times out")
    assert set_event.after_state == {"message": BANNER, "level": "warning"}
    cleared = AuditEvent.objects.get(event="platform.banner.cleared")
    assert (cleared.actor, cleared.reason) == (OPERATOR, "Renderer answers again; previews back")
    # Confirm it worked: Admin → Audit events, the event filter.
    walk.link("Audit events")
    walk.link("platform.banner.cleared", within=page.locator("#changelist-filter"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    walk.shot("audit-cleared")

    # The viewer: the degraded box with the code masked, and no image even now it renders.
    ConsoleBanner.objects.create(message=BANNER, reason="for the viewer", set_by=OPERATOR)
    viewer_reads_but_acts_on_nothing(
        walk,
        reads=[
            "/admin/payments/voucher/",
            "/admin/platform/consolebanner/",
            f"/admin/payments/voucher/{voucher.pk}/change/",
        ],
        refused=["/admin/platform/consolebanner/add/"],
    )
    walk.open(f"/admin/payments/voucher/{voucher.pk}/change/")
    masked = page.get_by_test_id("voucher-preview-degraded")
    expect(masked).to_contain_text("masked")
    expect(masked).not_to_contain_text(voucher.code)
    expect(page.get_by_test_id("voucher-preview")).to_have_count(0)
    walk.shot("viewer-masked-preview")
    walk.open("/admin/platform/consolebanner/")
    expect(page.get_by_test_id("console-banner")).to_contain_text(BANNER)
    expect(page.get_by_role("link", name="Add console banner")).to_have_count(0)
    expect(page.locator("#result_list input[name=_selected_action]")).to_have_count(0)
