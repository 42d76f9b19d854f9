"""An API token works as `Token <key>` and as `Bearer <key>` (what OpenAPI clients send)."""

from __future__ import annotations

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.helpers import error_of


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", ["Token", "Bearer", "bearer"])
def test_the_key_is_accepted_under_either_prefix(viewer, prefix):
    _, key = AuthToken.objects.create(user=viewer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{prefix} {key}")
    assert client.get("/api/v1/incidents").status_code == 200


@pytest.mark.django_db
def test_a_wrong_bearer_key_is_refused_and_another_schemes_bearer_is_not_ours(viewer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 64)
    response = client.get("/api/v1/incidents")
    assert (response.status_code, error_of(response)["code"]) == (401, "OPS-401-UNAUTHENTICATED")
    # Not a key knox could have issued: left to the other schemes, so the caller is anonymous.
    client.credentials(HTTP_AUTHORIZATION="Bearer monitoring-token")
    assert client.get("/api/v1/health/livez").status_code == 200
    assert client.get("/api/v1/incidents").status_code == 401
