from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from waffle.models import Switch

from storefront.models import SURFACES, StorefrontSurface
from storefront.surfaces import ensure_storefront_surfaces


@pytest.fixture
def surfaces(db) -> dict[str, StorefrontSurface]:
    """Every surface's switch, on, as the data migration leaves them (a transactional test
    flushes the migration's rows), by surface name."""
    ensure_storefront_surfaces(Switch)
    return {s.name: StorefrontSurface.objects.get(name=s.switch) for s in SURFACES}


@pytest.fixture
def exported_spans(httpserver) -> Iterator[Callable[[], list]]:
    """Tracing on, to a local OTLP/HTTP collector; yields a function that flushes and returns
    the spans the collector received."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from opsconsole.monitoring.tracing import configure_tracing, shutdown_tracing

    httpserver.expect_request("/v1/traces", method="POST").respond_with_data("", status=200)
    provider = configure_tracing(endpoint=httpserver.url_for("/"), service_name="smplat-api")

    def exported() -> list:
        provider.force_flush()
        return [
            span
            for request, _ in httpserver.log
            if request.path == "/v1/traces"
            for resource_spans in ExportTraceServiceRequest.FromString(
                request.get_data()
            ).resource_spans
            for scope in resource_spans.scope_spans
            for span in scope.spans
        ]

    yield exported
    shutdown_tracing()
