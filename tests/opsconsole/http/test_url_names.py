"""Each URL name names one route: `{% url %}` and reverse() take the last of two routes with
one name, so a page's link would silently lead to another room's route (the admin header's
"Customer cases" once opened the API's JSON search)."""

from __future__ import annotations

from collections import Counter

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver


def route_names(resolver: URLResolver, namespace: str = "") -> list[str]:
    names: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names += route_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.append(namespace + entry.name)
    return names


def test_no_two_routes_share_a_name():
    counts = Counter(route_names(get_resolver()))
    assert {name: n for name, n in counts.items() if n > 1} == {}


def test_the_headers_customer_cases_link_opens_the_admins_case_search(admin_user):
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/failures/").content.decode()
    assert '<a href="/admin/cases/"' in page


def test_a_refused_page_is_the_consoles_own_and_logs_one_line(db, caplog):
    from tests.opsconsole.factories import UserFactory

    viewer = UserFactory(username="vera", groups=["Support viewer"], is_staff=True)
    client = Client()
    client.force_login(viewer)
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/admin/platform/incident/add/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-testid="refused-page"' in page and "vera" in page
    assert "Back to the overview" in page
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert refusals and all(r.exc_info is None for r in refusals)
