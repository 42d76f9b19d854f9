"""Odd requests get a clear refusal, never a 500 or an HTML page on the API: NUL bytes in a
path or query, a history version that is no number, unsafe methods on unknown API routes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from recovery import services
from tests.helpers import error_of, token_client
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_nul_bytes_are_refused_at_the_door():
    api = token_client(UserFactory(username="ana", groups=["Booking client"]))
    for method, url in (
        ("delete", "/api/v1/auth/tokens/%00"),
        ("delete", "/api/v1/push-tokens/%00"),
        ("get", "/api/v1/cases?q=%00"),
    ):
        response = getattr(api, method)(url)
        assert response.status_code == 400, (url, response.status_code)
        assert error_of(response)["code"] == "OPS-400-INVALID-PAYLOAD"
    staff = Client()
    staff.force_login(UserFactory(username="vera", groups=["Support viewer"], is_staff=True))
    for url in ("/admin/cases/?q=%00", "/admin/failures/%00/"):
        assert staff.get(url).status_code == 400, url


@pytest.mark.django_db
def test_a_history_version_that_is_no_number_is_a_404():
    integration = services.integration_create(
        name="crm", endpoint_url="https://crm.example.com/hooks", actor="t"
    )
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="pw-123456"))
    base = f"/admin/recovery/integration/{integration.pk}/history/"
    assert root.get(f"{base}abc/").status_code == 404
    assert root.get("/admin/platform/workerswitch/x/history/y/").status_code == 404


@pytest.mark.django_db
def test_an_unsafe_method_on_an_unknown_api_route_is_the_404_envelope():
    api = Client(enforce_csrf_checks=True)
    api.force_login(UserFactory(username="otto", groups=["Support operator"]))
    for method in ("post", "delete", "put"):
        response = getattr(api, method)("/api/v1/nope")
        assert response.status_code == 404, method
        assert response["Content-Type"].startswith("application/json")
