"""Promotional banners in the admin: operators add and change them with a reason (an audit
row each), the window and the link checked; viewers read."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from opsconsole.models import AuditEvent
from storefront.models import PromotionalBanner
from tests.opsconsole.factories import UserFactory
from tests.storefront.factories import PromotionalBannerFactory

ADMIN = "/admin/storefront/promotionalbanner/"


def staff_client(username: str, group: str) -> Client:
    client = Client()
    client.force_login(UserFactory(username=username, groups=[group], is_staff=True))
    return client


def form(**fields: str) -> dict[str, str]:
    """The add form as the page has it (the window's date and time boxes), filled."""
    return {
        "title": "Spring sale",
        "body": "Two court hours for the price of one.",
        "link": "/offers/spring",
        "starts_at_0": "2031-03-01",
        "starts_at_1": "09:00:00",
        "ends_at_0": "2031-03-31",
        "ends_at_1": "21:00:00",
        "reason": "spring campaign",
        **fields,
    }


@pytest.mark.django_db
def test_an_operator_adds_a_banner_with_a_reason_and_it_is_audited(db):
    operator = staff_client("opal", "Support operator")
    assert operator.get(f"{ADMIN}add/").status_code == 200

    response = operator.post(f"{ADMIN}add/", form())

    assert response.status_code == 302, response.content.decode()[:2000]
    banner = PromotionalBanner.objects.get()
    assert (banner.title, banner.link) == ("Spring sale", "/offers/spring")
    event = AuditEvent.objects.get(event="storefront.banner.created")
    assert (event.actor, event.reason, event.object_id) == (
        "opal",
        "spring campaign",
        str(banner.pk),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"reason": ""}, "Say why this change is made"),
        ({"ends_at_0": "2031-02-01"}, "A banner ends after it starts."),
        ({"link": "javascript:alert(1)"}, "A storefront path (/offers/spring) or an https://"),
        ({"link": "//evil.example.com/"}, "A storefront path (/offers/spring) or an https://"),
    ],
)
def test_a_banner_the_storefront_cannot_show_is_refused_with_the_reason(db, fields, said):
    operator = staff_client("opal", "Support operator")
    response = operator.post(f"{ADMIN}add/", form(**fields))
    assert response.status_code == 200
    assert said in response.content.decode()
    assert not PromotionalBanner.objects.exists()
    assert not AuditEvent.objects.filter(event__startswith="storefront.banner.").exists()


@pytest.mark.django_db
def test_an_operator_ends_a_banner_and_the_change_is_audited(surfaces, anonymous_client):
    banner = PromotionalBannerFactory(title="Spring sale")
    operator = staff_client("opal", "Support operator")
    page = f"{ADMIN}{banner.pk}/change/"
    current = {
        "title": banner.title,
        "body": banner.body,
        "link": banner.link,
        "starts_at_0": banner.starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": banner.starts_at.strftime("%H:%M:%S"),
    }
    now = timezone.localtime()
    response = operator.post(
        page,
        {
            **current,
            "ends_at_0": now.strftime("%Y-%m-%d"),
            "ends_at_1": now.strftime("%H:%M:%S"),
            "reason": "wrong price on it",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert anonymous_client.get("/api/v1/storefront/banners").json()["banners"] == []
    event = AuditEvent.objects.get(event="storefront.banner.updated")
    assert event.reason == "wrong price on it"
    assert event.before_state["ends_at"] is None and event.after_state["ends_at"]


@pytest.mark.django_db
def test_a_viewer_reads_banners_and_changes_none(db):
    banner = PromotionalBannerFactory(title="Spring sale")
    viewer = staff_client("vera", "Support viewer")
    assert viewer.get(ADMIN).status_code == 200
    page = viewer.get(f"{ADMIN}{banner.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert viewer.get(f"{ADMIN}add/").status_code == 403
    viewer.post(f"{ADMIN}{banner.pk}/change/", {"title": "Hacked", "reason": "x"})
    assert PromotionalBanner.objects.get().title == "Spring sale"
