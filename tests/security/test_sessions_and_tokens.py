"""Sessions and tokens end when they should: a new password or a deactivation revokes the
user's API tokens; everyone lists and revokes their own; a staff session lasts a shift; every
page carries a Content-Security-Policy under which it runs no inline script."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from knox.models import AuthToken

from opsconsole.models import AuditEvent
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory
from tests.security.test_authorization_matrix import admin_urls

TOKENS = "/api/v1/auth/tokens"


def works(client) -> bool:
    return client.get(TOKENS).status_code == 200


@pytest.mark.django_db
def test_a_new_password_revokes_every_api_token_of_the_user():
    user = UserFactory(username="ana", groups=["Booking client"])
    first, second = token_client(user), token_client(user)
    other = token_client(UserFactory(username="bea", groups=["Booking client"]))
    assert works(first) and works(second)
    user.set_password("a-new-long-password-42")
    user.save()
    assert first.get(TOKENS).status_code == 401 and second.get(TOKENS).status_code == 401
    assert works(other)
    revoked = AuditEvent.objects.filter(event="platform.api_token.revoked")
    assert revoked.count() == 2
    assert {row.reason for row in revoked} == {"the password changed"}


@pytest.mark.django_db
def test_the_admins_password_form_revokes_the_tokens_too(world):
    operator = world["operator"]
    api = token_client(operator)
    admin = Client()
    admin.force_login(User.objects.get(username="admin"))
    response = admin.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {"password1": "Another-long-pass-77", "password2": "Another-long-pass-77"},
    )
    assert response.status_code == 302, response.content[:500]
    assert api.get(TOKENS).status_code == 401


@pytest.mark.django_db
def test_a_deactivated_user_has_no_token_left():
    user = UserFactory(username="leaver", groups=["Support operator"])
    api = token_client(user)
    user.is_active = False
    user.save()
    assert not AuthToken.objects.filter(user=user).exists()
    assert api.get(TOKENS).status_code == 401
    assert AuditEvent.objects.get(event="platform.api_token.revoked").reason == (
        "the account was deactivated"
    )


@pytest.mark.django_db
def test_signing_in_changes_nothing_of_the_tokens(client):
    user = UserFactory(username="vera", groups=["Support viewer"], is_staff=True)
    user.set_password("pw-long-enough-1")
    user.save()
    api = token_client(user)
    signed_in = client.post(
        "/admin/login/?next=/admin/", {"username": "vera", "password": "pw-long-enough-1"}
    )
    assert signed_in.status_code == 302  # and Django saved last_login
    assert works(api)


@pytest.mark.django_db
def test_users_list_and_revoke_their_own_tokens_and_never_anothers():
    ana = UserFactory(username="ana", groups=["Booking client"])
    bea = UserFactory(username="bea", groups=["Booking client"])
    ana_api, ana_laptop = token_client(ana), token_client(ana)
    bea_api = token_client(bea)
    listed = ana_api.get(TOKENS).json()["items"]
    assert len(listed) == 2
    assert sum(item["current"] for item in listed) == 1
    bea_key = AuthToken.objects.get(user=bea).token_key
    assert bea_key not in str(listed)

    refused = ana_api.delete(f"{TOKENS}/{bea_key}", {"reason": "mine?"}, format="json")
    assert refused.status_code == 404
    assert error_of(refused)["code"] == "OPS-404-TOKEN-NOT-FOUND"
    assert works(bea_api)

    laptop_key = next(item["token_key"] for item in listed if not item["current"])
    revoked = ana_api.delete(f"{TOKENS}/{laptop_key}", {"reason": "lost laptop"}, format="json")
    assert revoked.status_code == 200, revoked.content
    assert ana_laptop.get(TOKENS).status_code == 401
    assert works(ana_api)
    row = AuditEvent.objects.get(event="platform.api_token.revoked")
    assert (row.actor, row.reason) == ("ana", "lost laptop")
    again = ana_api.delete(f"{TOKENS}/{laptop_key}", format="json")
    assert again.status_code == 404


@pytest.mark.django_db
def test_staff_see_their_own_tokens_in_the_admin_and_superusers_all(world):
    mine = AuthToken.objects.create(world["operator"])[0].token_key
    theirs = AuthToken.objects.create(world["viewer"])[0].token_key
    operator = Client()
    operator.force_login(world["operator"])
    page = operator.get("/admin/knox/authtoken/").content.decode()
    assert mine in page and theirs not in page
    superuser = Client()
    superuser.force_login(User.objects.get(username="admin"))
    page = superuser.get("/admin/knox/authtoken/").content.decode()
    assert mine in page and theirs in page


@pytest.mark.django_db
def test_a_staff_session_lasts_eight_hours(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    user = UserFactory(username="vera", groups=["Support viewer"], is_staff=True)
    user.set_password("pw-long-enough-1")
    user.save()
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "vera", "password": "pw-long-enough-1"}
    )
    assert response.status_code == 302
    assert response.cookies["opsconsole_session"]["max-age"] == 8 * 3600


SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)


@pytest.mark.django_db
def test_every_admin_page_has_a_csp_and_no_inline_script_it_would_block(world):
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    pages = [url for _, url in admin_urls()] + ["/api/docs/", "/api/redoc/"]
    checked = 0
    for url in pages:
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response["Content-Type"]:
            continue
        policy = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert "frame-ancestors 'none'" in policy
        nonce = re.search(r"'nonce-([^']+)'", script_src)
        for attributes in SCRIPT.findall(response.content.decode()):
            inline_allowed = nonce and f'nonce="{nonce.group(1)}"' in attributes
            assert "src=" in attributes or inline_allowed, (url, attributes)
        checked += 1
    assert checked > 60
