"""OpenTelemetry spans, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Without an endpoint nothing is imported or exported: the request middleware still continues
the caller's W3C trace by itself (context.clean_traceparent). With one, the maintained
instrumentations make the spans: Django's a server span per request named by its route
template (`GET api/v1/cases/<str:ref>`), psycopg's one per query, httpx's and aiohttp's one
per outbound call. The server span's ids are the ones echoed in `traceparent` and written to
logs and audit rows, and each worker run is a span, so a log line, an audit row and a trace
meet on one trace id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opsconsole.http.context import clean_traceparent

_provider: Any = None
_tracer: Any = None


def configure_tracing(*, endpoint: str, service_name: str) -> Any:
    """Start exporting spans to `endpoint` (the collector's base URL). Returns the provider."""
    global _provider, _tracer
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("opsconsole")
    _instrument(provider)
    return provider


def _instrumentors() -> list[Any]:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    return [
        DjangoInstrumentor(),
        PsycopgInstrumentor(),
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
    ]


def _instrument(provider: Any) -> None:
    for instrumentor in _instrumentors():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)


def shutdown_tracing() -> None:
    global _provider, _tracer
    if _provider is not None:
        for instrumentor in _instrumentors():
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        _provider.shutdown()
    _provider = _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


@dataclass
class ServerSpan:
    traceparent: str
    span: Any = None

    def finish(self, status_code: int) -> None:
        if self.span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("http.response.status_code", status_code)
        if status_code >= 500:
            self.span.set_status(Status(StatusCode.ERROR))


def span_traceparent(span: Any) -> str:
    """The W3C traceparent naming `span` (for log lines that must join its trace)."""
    return _traceparent_of(span)


def _traceparent_of(span: Any) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextmanager
def server_span(method: str, path: str, incoming_traceparent: str | None) -> Iterator[ServerSpan]:
    if _tracer is None:
        yield ServerSpan(traceparent=clean_traceparent(incoming_traceparent))
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    current = trace.get_current_span()
    if current.is_recording() and getattr(current, "kind", None) == SpanKind.SERVER:
        # Django's instrumentation opened the request's span (named by its route): use it.
        yield ServerSpan(traceparent=_traceparent_of(current), span=current)
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": incoming_traceparent} if incoming_traceparent else {}
    )
    with _tracer.start_as_current_span(
        f"{method} {path}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    ) as span:
        yield ServerSpan(traceparent=_traceparent_of(span), span=span)


def mark_span_failed(span: Any, error: BaseException) -> None:
    """`otel.status_code=ERROR` on the span, with the exception recorded (alerts read such
    spans: docs/runbooks/incident-response.md)."""
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))


@contextmanager
def internal_span(name: str, **attributes: Any) -> Iterator[Any]:
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, attributes=attributes) as span:
        yield span
