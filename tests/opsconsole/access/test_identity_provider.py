"""The identity provider's answers, from a local server standing in for its userinfo, key set
and token endpoints: what counts as down (connection refused, a timeout, a 5xx, garbage: the
specification's "unavailable") and what is an answer (a 401 ends the session; the groups it
gives now are the roles). The whole sign-in against a real provider is walked in
tests/runbooks/test_identity_provider_outage.py."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from werkzeug import Request, Response

from opsconsole.access import identity
from opsconsole.access.roles import ensure_support_groups
from opsconsole.models import AuditEvent
from opsconsole.monitoring.alerts import alert_raise
from tests.opsconsole.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(httpserver, settings):
    settings.OIDC_RP_CLIENT_ID = "ops-console"
    settings.OIDC_RP_CLIENT_SECRET = "secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = httpserver.url_for("/authorize/")
    settings.OIDC_OP_TOKEN_ENDPOINT = httpserver.url_for("/token/")
    settings.OIDC_OP_USER_ENDPOINT = httpserver.url_for("/userinfo/")
    settings.OIDC_OP_JWKS_ENDPOINT = httpserver.url_for("/jwks.json")
    settings.OIDC_TIMEOUT = 1
    settings.IDP_RECHECK_SECONDS = 0
    settings.IDP_FALLBACK_MINUTES = 15
    ensure_support_groups(ContentType, Permission, Group)
    return httpserver


def signed_in_at_the_provider(client, *, verified_minutes_ago: float = 0):
    """A session the provider verified (what the callback leaves behind)."""
    user = UserFactory(username="alice", groups=["Support operator"], is_staff=True)
    client.force_login(user)
    session = client.session
    now = time.time()
    session[identity.VERIFIED_AT] = now - verified_minutes_ago * 60
    session[identity.CHECKED_AT] = 0
    session["oidc_access_token"] = "access-token"
    session.save()
    return user


def acknowledge(client, user) -> AuditEvent:
    alert = alert_raise(kind="refund-failed", severity="warning", obj=user, message="m")
    response = client.post(
        f"/admin/platform/alert/{alert.pk}/act/acknowledge_alerts/",
        {"reason": "called the customer", "confirm": "yes"},
    )
    assert response.status_code in (200, 302), response.content[:300]
    return AuditEvent.objects.get(event="platform.alert.acknowledged")


def slow(request: Request) -> Response:
    time.sleep(1.5)
    return Response("{}", content_type="application/json")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Response("upstream down", status=503), "http_503"),
        (Response("<html>maintenance</html>", content_type="text/html"), "invalid_response"),
        (slow, "timeout"),
    ],
    ids=["5xx", "garbage", "timeout"],
)
def test_a_provider_that_is_down_leaves_a_recent_session_working_marked_in_the_audit(
    client, provider, answer, reason
):
    handler = answer if callable(answer) and not isinstance(answer, Response) else None
    if handler:
        provider.expect_request("/userinfo/").respond_with_handler(handler)
    else:
        provider.expect_request("/userinfo/").respond_with_response(answer)
    user = signed_in_at_the_provider(client, verified_minutes_ago=5)

    page = client.get("/admin/")
    assert page.status_code == 200
    assert f"is not answering ({reason})" in page.content.decode()
    row = acknowledge(client, user)
    assert row.metadata["auth_fallback"] == {"session": "cached", "provider_down": reason}


def test_connection_refused_is_down_too(client, provider, settings):
    settings.OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/userinfo/"  # nothing listens
    signed_in_at_the_provider(client, verified_minutes_ago=1)
    page = client.get("/admin/")
    assert "is not answering (connection_refused)" in page.content.decode()


def test_past_the_fallback_window_the_session_ends_with_a_page_that_says_why(client, provider):
    provider.expect_request("/userinfo/").respond_with_data("down", status=502)
    signed_in_at_the_provider(client, verified_minutes_ago=16)
    page = client.get("/admin/")
    assert page.status_code == 503
    assert "more than 15 minutes ago" in page.content.decode()
    assert client.get("/admin/").status_code == 302  # signed out: to the login page


def test_a_401_is_an_answer_the_session_ends(client, provider):
    provider.expect_request("/userinfo/").respond_with_data("", status=401)
    signed_in_at_the_provider(client)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?sso=expired"
    assert "_auth_user_id" not in client.session


def test_the_groups_the_provider_gives_now_are_the_roles(client, provider):
    provider.expect_request("/userinfo/").respond_with_json(
        {"sub": "1", "email": "alice@example.test", "groups": ["console-viewers"]}
    )
    user = signed_in_at_the_provider(client)
    assert client.get("/admin/").status_code == 200
    assert list(user.groups.values_list("name", flat=True)) == ["Support viewer"]
    row = AuditEvent.objects.get(event="access.sso.session_verified")
    assert (row.before_state, row.after_state) == (
        {"roles": ["Support operator"]},
        {"roles": ["Support viewer"]},
    )


def test_a_re_check_that_changes_nothing_writes_no_audit_row(client, provider):
    provider.expect_request("/userinfo/").respond_with_json(
        {"sub": "1", "email": "alice@example.test", "groups": ["console-operators"]}
    )
    signed_in_at_the_provider(client)
    for _ in range(3):
        assert client.get("/admin/").status_code == 200
    assert len(provider.log) >= 3  # asked on every request (IDP_RECHECK_SECONDS=0)
    assert not AuditEvent.objects.filter(event="access.sso.session_verified").exists()


def test_a_callback_this_browser_did_not_start_asks_to_sign_in_again(client, provider):
    response = client.get("/auth/sso/callback/", {"code": "c", "state": "not-ours"})
    assert response["Location"] == "/admin/login/?sso=failed"
    session = client.session
    session["oidc_states"] = {}
    session.save()
    response = client.get("/auth/sso/callback/", {"code": "c", "state": "replayed"})
    assert response["Location"] == "/admin/login/?sso=failed"


def test_someone_the_provider_no_longer_puts_in_a_console_group_is_signed_out(client, provider):
    provider.expect_request("/userinfo/").respond_with_json(
        {"sub": "1", "email": "alice@example.test", "groups": ["marketing"]}
    )
    signed_in_at_the_provider(client)
    response = client.get("/admin/")
    assert response["Location"] == "/admin/login/?sso=refused"


def test_readyz_shows_the_provider_degraded_while_its_keys_do_not_load(provider, admin_client):
    provider.expect_request("/jwks.json").respond_with_data("down", status=500)
    component = identity.identity_provider_health()
    assert component.status == "degraded"
    assert component.details["reason"] == "http_500"


def test_readyz_shows_the_provider_ready_when_its_keys_load(provider):
    provider.expect_request("/jwks.json").respond_with_json({"keys": []})
    assert identity.identity_provider_health().status == "ready"


def test_not_configured_the_provider_is_no_component_worry_and_passwords_work(settings):
    settings.OIDC_RP_CLIENT_ID = ""
    assert identity.identity_provider_health().details == {"configured": False}
    staff_member = UserFactory(username="opal", groups=["Support operator"], is_staff=True)
    identity.check_password_sign_in(None, staff_member)  # no ValidationError


def test_a_token_endpoint_that_fails_gives_the_unavailable_page_not_a_500(client, provider):
    """The browser comes back from the provider with a code, and the provider's token
    endpoint then fails: the person is told the provider is down."""
    provider.expect_request("/token/").respond_with_data("bad gateway", status=502)
    session = client.session
    session["oidc_states"] = {
        "the-state": {"code_verifier": "v" * 64, "nonce": "n", "added_on": time.time()}
    }
    session.save()
    response = client.get("/auth/sso/callback/", {"code": "the-code", "state": "the-state"})
    assert response.status_code == 503
    assert "is not answering" in response.content.decode()


def test_the_password_form_tells_nothing_about_a_staff_password(client, provider):
    """Staff passwords are refused before they are checked: a right one and a wrong one get
    the same answer, so the form is no way to test a leaked password."""
    provider.expect_request("/jwks.json").respond_with_json({"keys": []})  # the provider is up
    UserFactory(username="opal", groups=["Support operator"], is_staff=True)
    notes = []
    for password in (PASSWORD, "not-the-password"):
        page = client.post("/admin/login/", {"username": "opal", "password": password})
        assert "_auth_user_id" not in client.session
        notes.append(
            re.findall(r'<p class="errornote">\s*(.*?)\s*</p>', page.content.decode(), re.S)
        )
    assert notes[0] == notes[1]
    assert "Staff sign in through" in notes[0][0]
