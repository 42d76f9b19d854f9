from __future__ import annotations

from django.db.models import QuerySet

from opsconsole.http.pagination import Page, keyset_page
from recovery.errors import IntegrationNotFound
from recovery.models import Integration, RecoveryItem


def integration_list() -> QuerySet[Integration]:
    return Integration.objects.order_by("name")


def integration_get(*, integration_id: int) -> Integration:
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        raise IntegrationNotFound()
    return integration


def recovery_queue_page(
    *, integration_id: int, statuses: list[str] | None, limit: int, cursor: str | None
) -> Page:
    integration_get(integration_id=integration_id)
    queryset = RecoveryItem.objects.filter(integration_id=integration_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return keyset_page(queryset, limit=limit, cursor=cursor)
