from django.urls import path

from notifications.api.producers import (
    CampaignCreateApi,
    PushTokenRegisterApi,
    PushTokenRemoveApi,
)
from notifications.api.views import CampaignStartApi, CampaignStatusApi, CampaignStopApi

urlpatterns = [
    path("campaigns", CampaignCreateApi.as_view(), name="campaign-create"),
    path("push-tokens", PushTokenRegisterApi.as_view(), name="push-token-register"),
    path("push-tokens/<str:token>", PushTokenRemoveApi.as_view(), name="push-token-remove"),
    path("campaigns/<str:campaign_id>/status", CampaignStatusApi.as_view(), name="campaign-status"),
    path("campaigns/<str:campaign_id>/start", CampaignStartApi.as_view(), name="campaign-start"),
    path("campaigns/<str:campaign_id>/stop", CampaignStopApi.as_view(), name="campaign-stop"),
]
