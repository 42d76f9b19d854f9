from django.urls import path

from payments.api.producers import HostedSessionOpenApi, VoucherIssueApi
from payments.api.views import (
    HostedSessionDetailApi,
    HostedSessionRegenerateApi,
    StationRedeemApi,
    StripeWebhookApi,
    VoucherPreviewApi,
)

urlpatterns = [
    path("billing/sessions", HostedSessionOpenApi.as_view(), name="hosted-session-open"),
    path("vouchers", VoucherIssueApi.as_view(), name="voucher-issue"),
    path(
        "billing/sessions/<str:session_id>", HostedSessionDetailApi.as_view(), name="hosted-session"
    ),
    path(
        "billing/sessions/<str:session_id>/regenerate",
        HostedSessionRegenerateApi.as_view(),
        name="hosted-session-regenerate",
    ),
    path("vouchers/<str:voucher_id>/preview", VoucherPreviewApi.as_view(), name="voucher-preview"),
]

# Routes outside /api/v1/, at the paths stations and Stripe call.
station_urlpatterns = [path("redeem", StationRedeemApi.as_view(), name="station-redeem")]
webhook_urlpatterns = [path("stripe", StripeWebhookApi.as_view(), name="stripe-webhook")]
