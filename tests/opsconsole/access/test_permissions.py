from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from knox.models import AuthToken

from opsconsole.models import OPERATE_PERMISSION, VIEW_PERMISSION


@pytest.mark.smoke
@pytest.mark.django_db
def test_the_support_groups_hold_the_seed_permissions(viewer, operator, outsider):
    assert {g.name for g in Group.objects.all()} >= {"Support viewer", "Support operator"}
    assert viewer.has_perm(VIEW_PERMISSION) and not viewer.has_perm(OPERATE_PERMISSION)
    assert operator.has_perm(VIEW_PERMISSION) and operator.has_perm(OPERATE_PERMISSION)
    assert not outsider.has_perm(VIEW_PERMISSION)


@pytest.mark.django_db
def test_create_api_token_prints_a_hashed_expiring_token_that_authenticates(anonymous_client):
    user = User.objects.create_user("api-client", password="pw-123456")
    out = io.StringIO()
    call_command("create_api_token", "api-client", stdout=out)
    key = out.getvalue().split()[-1]
    token = AuthToken.objects.get(user=user)
    assert key not in (token.digest, token.token_key)  # only the hash is stored
    assert 89 <= (token.expiry - token.created).days <= 90
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = anonymous_client.get("/api/v1/nothing")
    assert response.status_code == 404  # authenticated, so the route lookup answers
