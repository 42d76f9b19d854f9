"""Swagger UI and Redoc load from the installed package, so the docs work without internet."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_every_script_from_our_own_static_files(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert sources, html[:500]
    for source in sources:
        assert source.startswith(settings.STATIC_URL), source
        assert finders.find(source.removeprefix(settings.STATIC_URL)), source
    assert "cdn" not in html.lower()
