"""Missing or odd ids on admin pages are 404s (or the page's own refusal), never a 500."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from recovery.cases.refs import user_ref
from tests.opsconsole.factories import UserFactory

ODD_IDS = ["999999999", "\u00b2", "\u0661\u0662", "9" * 40, "-1", "abc", "1e3"]


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", password="pw-123456"))
    return client


@pytest.mark.django_db
def test_every_models_pages_answer_an_odd_id_without_a_500(superuser_client):
    answered: dict[str, int] = {}
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for odd in ODD_IDS:
            for suffix in ("change/", "history/", "delete/"):
                url = f"{base}{odd}/{suffix}"
                answered[url] = superuser_client.get(url).status_code
    server_errors = {url: status for url, status in answered.items() if status >= 500}
    assert server_errors == {}
    # Django's admin sends a missing object's page back to the list with a message; delete
    # pages are refused to everyone (records are disabled and kept, never deleted).
    shown = {status for url, status in answered.items() if not url.endswith("/delete/")}
    assert shown <= {302, 404}
    assert {answered[url] for url in answered if url.endswith("/delete/")} <= {302, 403, 404}


@pytest.mark.django_db
def test_edit_and_replay_of_a_missing_item_is_a_404(superuser_client):
    for odd in ("999999999", "9" * 30):
        url = f"/admin/recovery/recoveryitem/{odd}/edit-and-replay/"
        assert superuser_client.get(url).status_code == 404
        assert superuser_client.post(url, {"payload": "{}", "reason": "x"}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("source_id", ["\u00b2", "\u0661", "9" * 40, "-3", ""])
def test_a_case_action_with_an_odd_source_id_is_refused_on_the_page(source_id):
    maria = UserFactory(username="maria", groups=["Booking client"])
    lead = UserFactory(username="lead", groups=["Support operator"], is_staff=True)
    client = Client(raise_request_exception=False)
    client.force_login(lead)
    page = f"/admin/cases/{user_ref(maria.pk)}/"
    response = client.post(
        page,
        {"verb": "replay", "source": "stripe_webhook", "source_id": source_id, "reason": "x"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Unknown action." in response.content.decode()
