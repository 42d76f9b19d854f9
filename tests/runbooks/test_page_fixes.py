"""What walking the runbooks found wrong on the pages, fixed and kept so."""

from __future__ import annotations

import pytest
from django.test import Client

from recovery.admin.queue import pretty_json
from tests.recovery.factories import ParkedItemFactory
from tests.runbooks.walk import support_staff

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_custom_pages_refusal_is_the_consoles_refused_page():
    # The failure inbox's own pages refused with a bare line; a viewer opening an action's
    # address now meets the refused page every other admin page shows.
    _, viewer = support_staff()
    item = ParkedItemFactory()
    response = signed_in(viewer).get(f"/admin/recovery/recoveryitem/{item.pk}/edit-and-replay/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-testid="refused-page"' in page
    assert "platform.member_admin.operate" in page and viewer.username in page


def test_a_viewer_is_not_offered_edit_and_replay_on_an_items_page():
    operator, viewer = support_staff()
    item = ParkedItemFactory()
    url = f"/admin/recovery/recoveryitem/{item.pk}/change/"
    assert "Edit the payload and replay…" not in signed_in(viewer).get(url).content.decode()
    assert "Edit the payload and replay…" in signed_in(operator).get(url).content.decode()


def test_a_dry_runs_arrow_reads_as_an_arrow():
    assert "dlq → replayed" in pretty_json({"predicted": "dlq → replayed"})
