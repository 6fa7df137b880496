"""OpenTelemetry tracing of a service.

Traces follow a slide across Kafka hops: FastStream's telemetry middleware injects W3C
``traceparent`` into every published record and continues the trace from it on consume, so the
upload, de-identification and conversion spans of one slide share a trace id.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def make_tracer_provider(
    service: str,
    *,
    otlp_endpoint: str | None,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """A tracer provider for ``service``; exports over OTLP/HTTP when an endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"slidestream-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    return provider
