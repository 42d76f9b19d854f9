from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from opsconsole.models import OPERATE_PERMISSION, VIEW_PERMISSION


@pytest.mark.smoke
@pytest.mark.django_db
def test_the_support_groups_hold_the_seed_permissions(viewer, operator, outsider):
    assert {g.name for g in Group.objects.all()} >= {"Support viewer", "Support operator"}
    assert viewer.has_perm(VIEW_PERMISSION) and not viewer.has_perm(OPERATE_PERMISSION)
    assert operator.has_perm(VIEW_PERMISSION) and operator.has_perm(OPERATE_PERMISSION)
    assert not outsider.has_perm(VIEW_PERMISSION)


@pytest.mark.django_db
def test_drf_create_token_prints_a_token_that_authenticates(anonymous_client):
    user = User.objects.create_user("api-client", password="pw-123456")
    out = io.StringIO()
    call_command("drf_create_token", "api-client", stdout=out)
    key = Token.objects.get(user=user).key
    assert key in out.getvalue()
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = anonymous_client.get("/api/v1/nothing")
    assert response.status_code == 404  # authenticated, so the route lookup answers
