from django.urls import path

from opsconsole.api.audit_events import AuditEventListApi
from opsconsole.api.incidents import IncidentDraftWriteupApi, IncidentExportApi, IncidentListApi
from opsconsole.api.tokens import OwnApiTokenListApi, OwnApiTokenRevokeApi
from opsconsole.api.views import AuthAttemptsApi, AuthLockoutApi, HealthLivezApi, HealthReadyzApi

urlpatterns = [
    path("health/livez", HealthLivezApi.as_view(), name="health-livez"),
    path("health/readyz", HealthReadyzApi.as_view(), name="health-readyz"),
    path("auth/attempts", AuthAttemptsApi.as_view(), name="auth-attempts"),
    path("auth/lockout", AuthLockoutApi.as_view(), name="auth-lockout"),
    path("auth/tokens", OwnApiTokenListApi.as_view(), name="auth-tokens"),
    path("auth/tokens/<str:token_key>", OwnApiTokenRevokeApi.as_view(), name="auth-token-revoke"),
    path("audit-events", AuditEventListApi.as_view(), name="audit-events"),
    path("incidents", IncidentListApi.as_view(), name="incidents"),
    path("incidents/<str:incident_id>/export", IncidentExportApi.as_view(), name="incident-export"),
    path(
        "incidents/<str:incident_id>/draft-write-up",
        IncidentDraftWriteupApi.as_view(),
        name="incident-draft-write-up",
    ),
]
