from django.urls import path

from opsconsole.api.views import AuthAttemptsApi, AuthLockoutApi, HealthLivezApi, HealthReadyzApi

urlpatterns = [
    path("health/livez", HealthLivezApi.as_view(), name="health-livez"),
    path("health/readyz", HealthReadyzApi.as_view(), name="health-readyz"),
    path("auth/attempts", AuthAttemptsApi.as_view(), name="auth-attempts"),
    path("auth/lockout", AuthLockoutApi.as_view(), name="auth-lockout"),
]
