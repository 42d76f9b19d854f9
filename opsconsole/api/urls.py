from django.urls import path

from opsconsole.api.views import HealthLivezApi, HealthReadyzApi

urlpatterns = [
    path("health/livez", HealthLivezApi.as_view(), name="health-livez"),
    path("health/readyz", HealthReadyzApi.as_view(), name="health-readyz"),
]
