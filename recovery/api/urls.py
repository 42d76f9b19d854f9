from django.urls import path

from recovery.api.cases import (
    CaseDetailApi,
    CaseFailureReplayApi,
    CaseFailureResolveApi,
    CaseRefundSettleApi,
    CaseSearchApi,
)
from recovery.api.ingestion import EventBatchIngestApi, EventIngestApi
from recovery.api.integrations import (
    IntegrationDetailApi,
    IntegrationListApi,
    IntegrationRotateSecretApi,
)
from recovery.api.views import (
    BulkActionCreateApi,
    BulkActionDetailApi,
    BulkActionTransitionApi,
    FailureGroupSummaryApi,
    FailureInboxApi,
    FailureResolveApi,
    RecoveryItemEditAndReplayApi,
    RecoveryItemReplayApi,
    RecoveryQueueListApi,
)

urlpatterns = [
    path("integrations", IntegrationListApi.as_view(), name="integration-list"),
    path(
        "integrations/<str:integration_id>",
        IntegrationDetailApi.as_view(),
        name="integration-detail",
    ),
    path(
        "integrations/<str:integration_id>/events",
        EventIngestApi.as_view(),
        name="integration-events",
    ),
    path(
        "integrations/<str:integration_id>/events/batch",
        EventBatchIngestApi.as_view(),
        name="integration-events-batch",
    ),
    path(
        "integrations/<str:integration_id>/rotate-secret",
        IntegrationRotateSecretApi.as_view(),
        name="integration-rotate-secret",
    ),
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
    path(
        "integrations/<str:integration_id>/recovery/queue/<str:recovery_id>/edit-and-replay",
        RecoveryItemEditAndReplayApi.as_view(),
        name="recovery-edit-and-replay",
    ),
]

# The customer case view, mounted under /api/v1/.
case_urlpatterns = [
    path("cases", CaseSearchApi.as_view(), name="case-search"),
    path("cases/<str:ref>", CaseDetailApi.as_view(), name="case-detail"),
    path(
        "cases/<str:ref>/failures/<str:source>/<str:source_id>/replay",
        CaseFailureReplayApi.as_view(),
        name="case-failure-replay",
    ),
    path(
        "cases/<str:ref>/failures/<str:source>/<str:source_id>/resolve",
        CaseFailureResolveApi.as_view(),
        name="case-failure-resolve",
    ),
    path(
        "cases/<str:ref>/refunds/<str:refund_id>/settle",
        CaseRefundSettleApi.as_view(),
        name="case-refund-settle",
    ),
]

# The failure inbox, mounted under /api/v1/.
inbox_urlpatterns = [
    path("failures", FailureInboxApi.as_view(), name="failures"),
    path(
        "failures/groups/<str:fingerprint>/summary",
        FailureGroupSummaryApi.as_view(),
        name="failure-group-summary",
    ),
    path("failures/bulk-actions", BulkActionCreateApi.as_view(), name="bulk-action-create"),
    path(
        "failures/bulk-actions/<str:action_id>",
        BulkActionDetailApi.as_view(),
        name="bulk-action-detail",
    ),
    path(
        "failures/bulk-actions/<str:action_id>/<str:verb>",
        BulkActionTransitionApi.as_view(),
        name="bulk-action-transition",
    ),
    path(
        "failures/<str:source>/<str:source_id>/resolve",
        FailureResolveApi.as_view(),
        name="failure-resolve",
    ),
]
