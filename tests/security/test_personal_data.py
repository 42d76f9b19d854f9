"""Personal data is masked for staff without `platform.view_personal_data`, in the API and
the admin; operators (who hold it) see it whole."""

from __future__ import annotations

import pytest

from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory
from tests.payments.factories import HostedSessionFactory
from tests.security.sentinels import AUTH, EMAIL, SENTINELS, URL_TOKEN


def staff(group: str, name: str):
    user = UserFactory(username=name, groups=[group])
    user.is_staff = True
    user.save()
    return user


def leaked(content: bytes) -> list[str]:
    text = content.decode()
    return [s for s in SENTINELS if s in text]


@pytest.mark.django_db
def test_the_api_masks_personal_data_for_a_viewer(planted):
    integration, _, voucher = planted
    viewer = token_client(staff("Support viewer", "v"))
    operator = token_client(staff("Support operator", "o"))
    # A checkout link is a bearer link: whoever reads it may use it.
    session = HostedSessionFactory(checkout_url=f"https://checkout.example.test/c/{URL_TOKEN}")
    urls = [
        "/platform/integrations",
        f"/platform/integrations/{integration.pk}/recovery/queue?status=dlq",
        "/api/v1/failures",
        f"/api/v1/vouchers/{voucher.pk}/preview",
        f"/api/v1/billing/sessions/{session.pk}",
    ]
    for url in urls:
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert leaked(response.content) == [], url
    shown = b"".join(operator.get(url).content for url in urls)
    assert {EMAIL, AUTH, URL_TOKEN} <= set(leaked(shown))
    masked = viewer.get(urls[1]).json()["items"][0]
    assert masked["request_snapshot"]["headers"]["Authorization"] == "***"
    assert masked["request_snapshot"]["body"]["email"] == "s***@example.com"
    assert viewer.get(urls[3]).json()["voucher_code"] == voucher.code[:2] + "***"
    assert viewer.get(urls[4]).json()["checkoutUrl"] == "https://checkout.example.test/***"


@pytest.mark.django_db
def test_the_admin_masks_personal_data_for_a_viewer(client, planted):
    _, item, voucher = planted
    pages = [
        f"/admin/recovery/recoveryitem/{item.pk}/change/",
        "/admin/recovery/integration/",
        "/admin/payments/voucher/",
        f"/admin/payments/voucher/{voucher.pk}/change/",
    ]
    client.force_login(staff("Support viewer", "v"))
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert leaked(response.content) == [], page
        assert voucher.code not in response.content.decode(), page
    client.force_login(staff("Support operator", "o"))
    whole = b"".join(client.get(page).content for page in pages)
    assert {EMAIL, AUTH, URL_TOKEN} <= set(leaked(whole))
    assert voucher.code in whole.decode()
