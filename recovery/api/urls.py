from django.urls import path

from recovery.api.views import IntegrationListApi, RecoveryItemReplayApi, RecoveryQueueListApi

urlpatterns = [
    path("integrations", IntegrationListApi.as_view(), name="integration-list"),
    path(
        "integrations/<str:integration_id>/recovery/queue",
        RecoveryQueueListApi.as_view(),
        name="recovery-queue",
    ),
    path(
        "integrations/<str:integration_id>/recovery/queue/<str:recovery_id>/replay",
        RecoveryItemReplayApi.as_view(),
        name="recovery-replay",
    ),
]
