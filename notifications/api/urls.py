from django.urls import path

from notifications.api.views import CampaignStartApi, CampaignStatusApi, CampaignStopApi

urlpatterns = [
    path("campaigns/<str:campaign_id>/status", CampaignStatusApi.as_view(), name="campaign-status"),
    path("campaigns/<str:campaign_id>/start", CampaignStartApi.as_view(), name="campaign-start"),
    path("campaigns/<str:campaign_id>/stop", CampaignStopApi.as_view(), name="campaign-stop"),
]
