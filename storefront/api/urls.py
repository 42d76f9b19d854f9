from django.urls import path

from storefront.api.views import StorefrontBannersApi

urlpatterns = [
    path("storefront/banners", StorefrontBannersApi.as_view(), name="storefront-banners"),
]
