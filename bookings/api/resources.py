"""The bookable resources, so a client can find the `resource_id` a hold names."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings.errors import BookingInvalidPayload
from bookings.models import Bundle, Resource
from opsconsole.access.permissions import CanBookOrView
from opsconsole.http import inputs
from opsconsole.http.pagination import InvalidCursor, keyset_page


class ResourceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    active = serializers.BooleanField()
    # The catalog scheduler changes these at their time (docs/runbooks/incident-response.md).
    price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    bookable_until = serializers.DateTimeField(allow_null=True)


class ResourcePageSerializer(serializers.Serializer):
    items = ResourceSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class PageFilterSerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=settings.API_LIST_MAX_LIMIT,
        default=settings.API_LIST_DEFAULT_LIMIT,
    )
    cursor = serializers.CharField(required=False, max_length=200)


class ResourceListApi(APIView):
    """Bookable resources, newest first; `include_inactive=true` adds retired ones."""

    error_prefix = "BKG"
    permission_classes = [CanBookOrView]

    class FilterSerializer(PageFilterSerializer):
        include_inactive = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="bookings_resources_list",
        parameters=[FilterSerializer],
        responses=ResourcePageSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = inputs.validated(
            self.FilterSerializer, request.query_params.dict(), BookingInvalidPayload
        )
        resources = Resource.objects.all()
        if not filters["include_inactive"]:
            resources = resources.filter(active=True)
        try:
            page = keyset_page(resources, limit=filters["limit"], cursor=filters.get("cursor"))
        except InvalidCursor as exc:
            raise BookingInvalidPayload(
                str(exc), details={"fields": {"cursor": [str(exc)]}}
            ) from exc
        return Response(
            {
                "items": [ResourceSerializer(r).data for r in page.items],
                "next_cursor": page.next_cursor,
            }
        )


class BundlePartSerializer(serializers.Serializer):
    resource_id = serializers.IntegerField()
    name = serializers.CharField()


class BundleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    parts = BundlePartSerializer(many=True)


class BundlePageSerializer(serializers.Serializer):
    items = BundleSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class BundleListApi(APIView):
    """The bundles on sale, newest first. A bundle the guardrail stopped (a part closed or
    repriced) is not listed until an operator fixes or overrides it."""

    error_prefix = "BKG"
    permission_classes = [CanBookOrView]

    @extend_schema(
        operation_id="bookings_bundles_list",
        parameters=[PageFilterSerializer],
        responses=BundlePageSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = inputs.validated(
            PageFilterSerializer, request.query_params.dict(), BookingInvalidPayload
        )
        on_sale = Bundle.objects.filter(status=Bundle.Status.SELLING).prefetch_related(
            "parts__resource"
        )
        try:
            page = keyset_page(on_sale, limit=filters["limit"], cursor=filters.get("cursor"))
        except InvalidCursor as exc:
            raise BookingInvalidPayload(
                str(exc), details={"fields": {"cursor": [str(exc)]}}
            ) from exc
        items = [
            {
                "id": bundle.pk,
                "name": bundle.name,
                "price": bundle.price,
                "parts": [
                    {"resource_id": part.resource_id, "name": part.resource.name}
                    for part in bundle.parts.all()
                ],
            }
            for bundle in page.items
        ]
        return Response(
            {"items": BundleSerializer(items, many=True).data, "next_cursor": page.next_cursor}
        )
