"""docs/runbooks/identity-provider-outage.md walked in the browser against a real OpenID
Connect provider (django-oauth-toolkit in a process of its own, tests/identity_provider):
staff sign in there and get the role its groups give; staff passwords are refused; the
provider is stopped mid-session and the signed-in operator keeps working from the cached
session, every action marked so; a new sign-in gets a page that says so; the break-glass
account signs in only then, raising a critical alert; the cache runs out after
IDP_FALLBACK_MINUTES; the provider back, sign-in works again."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from playwright.sync_api import Page, expect

from opsconsole.access.roles import ensure_support_groups
from opsconsole.models import Alert, AuditEvent
from opsconsole.monitoring.alerts import alert_raise
from tests.identity_provider.seed import PASSWORD as IDP_PASSWORD
from tests.identity_provider.server import LocalIdentityProvider
from tests.opsconsole.factories import PASSWORD
from tests.runbooks.walk import OPERATOR, Walk, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROVIDER = "Example IdP"
BREAK_GLASS = "breakglass"


@pytest.fixture
def identity_provider(live_server, tmp_path, settings):
    provider = LocalIdentityProvider(tmp_path, f"{live_server.url}/auth/sso/callback/")
    provider.start()
    for name, value in provider.console_settings().items():
        setattr(settings, name, value)
    settings.OIDC_PROVIDER_NAME = PROVIDER
    settings.IDP_RECHECK_SECONDS = 0  # every request asks the provider: the outage shows at once
    settings.IDP_FALLBACK_MINUTES = 15
    settings.BREAK_GLASS_USERNAME = BREAK_GLASS
    ensure_support_groups(ContentType, Permission, Group)
    yield provider
    provider.stop()


def sign_in_at_the_provider(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.get_by_role("link", name=f"Sign in with {PROVIDER}").click()
    expect(page.get_by_role("heading", name="Example Identity Provider")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def password_sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def readiness(page: Page, base_url: str) -> dict:
    page.goto(f"{base_url}/api/v1/health/readyz")
    return json.loads(page.locator("body").inner_text())


def wait_for_identity_provider(page: Page, base_url: str, status: str) -> None:
    """readyz's identity_provider reaches `status` (the provider's verdict is shared 5 s)."""
    deadline = time.monotonic() + 15
    while (component := readiness(page, base_url)["components"]["identity_provider"])[
        "status"
    ] != status:
        assert time.monotonic() < deadline, component
        time.sleep(1)


def test_staff_sign_in_at_the_provider_and_work_through_its_outage(
    page, live_server, identity_provider
):
    base = live_server.url
    staff(OPERATOR, "Support operator")  # a local account with a password
    staff(BREAK_GLASS, "Support operator")
    alert = alert_raise(
        kind="refund-failed",
        severity="warning",
        obj=User.objects.get(username=OPERATOR),
        message="A refund failed",
    )
    walk = Walk(page, base, "identity-provider-outage")

    # Staff passwords are off; the break-glass account is refused while the provider is up.
    password_sign_in(page, base, OPERATOR)
    expect(page.locator(".errornote")).to_contain_text(f"Staff sign in through {PROVIDER}")
    password_sign_in(page, base, BREAK_GLASS)
    expect(page.locator(".errornote")).to_contain_text("signs in only while")
    walk.shot("passwords-refused")

    # Alice signs in at the provider; its group gives her the operator role.
    sign_in_at_the_provider(page, base, "alice")
    expect(page).to_have_url(f"{base}/admin/")
    expect(page.locator("#user-tools")).to_contain_text("alice")
    alice = User.objects.get(username="alice")
    assert alice.is_staff and not alice.has_usable_password()
    assert list(alice.groups.values_list("name", flat=True)) == ["Support operator"]
    signed_in = AuditEvent.objects.get(event="access.sso.signed_in", actor="alice")
    assert signed_in.after_state == {"roles": ["Support operator"]}
    walk.shot("signed-in-at-the-provider")

    # The provider goes down mid-session.
    identity_provider.stop()
    page.goto(f"{base}/admin/platform/alert/{alert.pk}/change/")
    notice = page.get_by_test_id("identity-fallback")
    expect(notice).to_contain_text(f"{PROVIDER} is not answering (connection_refused)")
    expect(notice).to_contain_text("cached session")
    walk.tool("acknowledge_alerts")
    said = walk.confirm("Refund retried by hand with the customer on the phone")
    assert "1 row done" in said
    acknowledged = AuditEvent.objects.get(event="platform.alert.acknowledged")
    assert acknowledged.actor == "alice"
    assert acknowledged.metadata["auth_fallback"] == {
        "session": "cached",
        "provider_down": "connection_refused",
    }
    walk.shot("working-from-the-cached-session")

    visitor = page.context.browser.new_context().new_page()
    prober = page.context.browser.new_context().new_page()  # reads readyz, signed in nowhere
    wait_for_identity_provider(prober, base, "degraded")

    # A new sign-in is told why it cannot happen now; the break-glass account may sign in.
    visitor.goto(f"{base}/admin/login/")
    visitor.get_by_role("link", name=f"Sign in with {PROVIDER}").click()
    expect(visitor.get_by_test_id("identity-provider-unavailable")).to_contain_text(
        f"Sign-in is unavailable: {PROVIDER} is not answering"
    )
    password_sign_in(visitor, base, BREAK_GLASS)
    expect(visitor).to_have_url(f"{base}/admin/")
    glass_alert = Alert.objects.get(kind="break-glass-sign-in")
    assert glass_alert.severity == "critical"
    assert AuditEvent.objects.filter(
        event="access.break_glass.signed_in", actor=BREAK_GLASS
    ).exists()
    # Every page of the break-glass session says so, and so does every row it writes.
    visitor.goto(f"{base}/admin/platform/alert/{glass_alert.pk}/change/")
    expect(visitor.get_by_test_id("identity-fallback")).to_contain_text("Break-glass session")
    visitor.get_by_test_id("object-tool-acknowledge_alerts").click()
    form = visitor.locator("form#confirm-with-reason")
    form.get_by_label("Reason (recorded in the audit log):").fill("It was me, on call: Ana")
    form.locator("input[type=submit]").click()
    expect(visitor.locator("ul.messagelist")).to_contain_text("1 row done")
    glass_row = AuditEvent.objects.filter(event="platform.alert.acknowledged").latest("id")
    assert glass_row.actor == BREAK_GLASS
    assert glass_row.metadata["auth_fallback"]["session"] == "break_glass"
    # The audit list says which rows were written from a cached or break-glass session.
    visitor.goto(f"{base}/admin/platform/auditevent/?q=platform.alert.acknowledged")
    sessions = visitor.locator("td.field-signed_in_by")
    expect(sessions).to_have_text(["break-glass", "cached: provider down"])

    # The cache runs out IDP_FALLBACK_MINUTES after the provider last verified Alice.
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=True):
        page.goto(f"{base}/admin/")
        expect(page.get_by_test_id("identity-provider-unavailable")).to_contain_text("has ended")
        page.goto(f"{base}/admin/")
        expect(page).to_have_url(f"{base}/admin/login/?next=/admin/")
    walk.shot("cached-session-ended")

    # The provider is back: within the probe's 5 seconds readyz is ready and Alice signs in
    # again, with no notice.
    identity_provider.start()
    wait_for_identity_provider(prober, base, "ready")
    # The break-glass session ends with the outage.
    visitor.goto(f"{base}/admin/")
    expect(visitor.get_by_test_id("sso-break-glass-ended")).to_contain_text(
        "the break-glass session has ended"
    )
    page.goto(f"{base}/admin/login/")
    # Still signed in at the provider (its session outlived its restart): straight back in.
    page.get_by_role("link", name=f"Sign in with {PROVIDER}").click()
    expect(page).to_have_url(f"{base}/admin/")
    expect(page.locator("#user-tools")).to_contain_text("alice")
    expect(page.get_by_test_id("identity-fallback")).to_have_count(0)


def test_the_provider_groups_decide_the_role(page, live_server, identity_provider):
    base = live_server.url
    sign_in_at_the_provider(page, base, "vera")
    expect(page).to_have_url(f"{base}/admin/")
    vera = User.objects.get(email="vera@example.test")
    assert list(vera.groups.values_list("name", flat=True)) == ["Support viewer"]

    page.context.clear_cookies()
    sign_in_at_the_provider(page, base, "mallory")  # in no group the console maps
    expect(page.get_by_test_id("sso-refused")).to_contain_text("gives you no role")
    assert not User.objects.filter(email="mallory@example.test").exists()
