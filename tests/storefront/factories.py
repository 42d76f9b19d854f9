"""Promotional banners and suspended surfaces, made through the storefront's services (their
checks and audit rows apply as in production)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from storefront.banners import promotional_banner_create
from storefront.models import PromotionalBanner, StorefrontSurface
from storefront.surfaces import surface_switch_set


class PromotionalBannerFactory(DjangoModelFactory):
    """`PromotionalBannerFactory(title="Spring sale")`: live since an hour ago, no end."""

    class Meta:
        model = PromotionalBanner

    title = factory.Sequence(lambda n: f"Spring sale {n + 1}")
    body = "Two court hours for the price of one."
    link = "/offers/spring"
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = None

    @classmethod
    def _create(cls, model_class: type, *args: Any, **fields: Any) -> PromotionalBanner:
        return promotional_banner_create(**fields, actor="test", reason="a test's banner")


def suspend(surface: StorefrontSurface, reason: str = "loyalty ledger double-counts") -> None:
    surface_switch_set(switch_id=surface.pk, active=False, actor="test", reason=reason)


def resume(surface: StorefrontSurface, reason: str = "ledger fixed") -> None:
    surface_switch_set(switch_id=surface.pk, active=True, actor="test", reason=reason)
