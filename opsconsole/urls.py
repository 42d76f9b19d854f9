from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from prometheus_client import CONTENT_TYPE_LATEST

from notifications.email_tracking import email_tracking_webhook
from opsconsole.access.identity import SignInCallbackView, SignInStartView
from opsconsole.access.monitoring_access import may_scrape_metrics
from opsconsole.admin.incidents import incident_ai_draft
from opsconsole.api.views import IntegrationsStatusApi
from opsconsole.http.errors import api_not_found, error_json_response
from opsconsole.monitoring import metrics
from opsconsole.monitoring.overview import console_home, console_overview
from payments.api.urls import station_urlpatterns, webhook_urlpatterns
from recovery.api.urls import case_urlpatterns, inbox_urlpatterns
from recovery.cases.admin import case_page, case_search_page
from recovery.inbox.admin_views import (
    edit_and_replay,
    failure_group_ai_summary,
    failure_group_detail,
    failure_inbox,
)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape_metrics(request):
        response = error_json_response(
            401,
            "OPS-401-UNAUTHENTICATED",
            "/metrics needs the metrics bearer token or an allowed network.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [
    # Before the admin's own index: staff land on the overview, the app list one click away.
    path("admin/", admin.site.admin_view(console_home), name="console-home"),
    path("admin/apps/", admin.site.admin_view(admin.site.index), name="console-apps"),
    path(
        "admin/overview/",
        admin.site.admin_view(console_overview),
        name="console-overview",
    ),
    path("admin/failures/", admin.site.admin_view(failure_inbox), name="failure-inbox"),
    path("admin/cases/", admin.site.admin_view(case_search_page), name="admin-case-search"),
    path("admin/cases/<str:ref>/", admin.site.admin_view(case_page), name="case-page"),
    path(
        "admin/failures/<str:fingerprint>/",
        admin.site.admin_view(failure_group_detail),
        name="failure-group",
    ),
    path(
        "admin/failures/<str:fingerprint>/ai-summary/",
        admin.site.admin_view(failure_group_ai_summary),
        name="failure-group-ai-summary",
    ),
    path(
        "admin/platform/incident/<int:incident_id>/ai-draft/",
        admin.site.admin_view(incident_ai_draft),
        name="incident-ai-draft",
    ),
    path(
        "admin/recovery/recoveryitem/<int:item_id>/edit-and-replay/",
        admin.site.admin_view(edit_and_replay),
        name="recovery-item-edit-and-replay",
    ),
    path("admin/", admin.site.urls),
    # Staff sign-in through the identity provider (opsconsole/access/identity.py).
    path("auth/sso/start/", SignInStartView.as_view(), name="sso-start"),
    path("auth/sso/callback/", SignInCallbackView.as_view(), name="sso-callback"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("opsconsole.api.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/v1/", include("bookings.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("api/v1/", include(inbox_urlpatterns)),
    path("api/v1/", include(case_urlpatterns)),
    path("api/v1/", include("storefront.api.urls")),
    path("api/integrations/status", IntegrationsStatusApi.as_view(), name="integrations-status"),
    path("api/station/", include(station_urlpatterns)),
    path("webhooks/", include(webhook_urlpatterns)),
    path(
        "webhooks/anymail/resend/tracking/",
        email_tracking_webhook,
        name="email-tracking-webhook",
    ),
    path("platform/", include("recovery.api.urls")),
    # Unknown routes under the API prefixes answer the JSON envelope, never an HTML page.
    re_path(r"^(?:api|platform|webhooks)/(?P<unmatched>.*)$", api_not_found),
]

handler400 = "opsconsole.http.errors.handler400"
handler403 = "opsconsole.http.errors.handler403"
handler404 = "opsconsole.http.errors.handler404"
handler500 = "opsconsole.http.errors.handler500"
