from django.urls import path

from payments.api.views import HostedSessionDetailApi, HostedSessionRegenerateApi

urlpatterns = [
    path(
        "billing/sessions/<str:session_id>", HostedSessionDetailApi.as_view(), name="hosted-session"
    ),
    path(
        "billing/sessions/<str:session_id>/regenerate",
        HostedSessionRegenerateApi.as_view(),
        name="hosted-session-regenerate",
    ),
]
