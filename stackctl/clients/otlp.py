"""Synthetic telemetry sent the way an app sends it: the OpenTelemetry Python SDK with its OTLP/HTTP exporters
(and, for a Prometheus without an OTLP receiver, the SDK's Prometheus remote-write exporter).

The SDK never raises on a failed export (opentelemetry-python: exporters return FAILURE and log a warning), so
every function here calls the exporter itself, checks its result and raises ApiError with what it logged; the
exporters' log lines are kept off the terminal. Endpoints are full URLs (`http://host:4318/v1/traces`)."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from stackctl.clients.http import ApiError

SCOPE = "stackctl.verify"


class _PerThread(logging.Handler):
    """Collects the SDK's log records per thread, so concurrent checks each see their own exporter's complaint."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.setdefault(record.thread or 0, []).append(record.getMessage())


_HANDLER = _PerThread()
_SETUP = threading.Lock()


@contextmanager
def _exporter_log() -> Iterator[list[str]]:
    """The SDK's log messages of this thread while the block runs (and none on the terminal)."""
    with _SETUP:
        sdk_logger = logging.getLogger("opentelemetry")
        if _HANDLER not in sdk_logger.handlers:
            sdk_logger.addHandler(_HANDLER)
            sdk_logger.propagate = False
    me = threading.get_ident()
    _HANDLER.records[me] = []
    messages: list[str] = []
    try:
        yield messages
    finally:
        messages.extend(_HANDLER.records.pop(me, []))


def _resource(attributes: dict[str, str]):
    from opentelemetry.sdk.resources import Resource

    return Resource.create(attributes)


def _export(exporter, batch, success, what: str, endpoint: str) -> None:
    """Hand the batch to the exporter; anything but `success` raises ApiError with what the exporter logged."""
    with _exporter_log() as messages:
        result = exporter.export(batch)
    exporter.shutdown()
    if result != success:
        said = f": {messages[-1]}" if messages else ""
        raise ApiError(f"{what} to {endpoint} failed{said}")


@dataclass(frozen=True)
class SentTrace:
    trace_id: str  # 32 lowercase hex digits
    parent_span_id: str  # 16 lowercase hex digits
    child_span_id: str


def send_trace(endpoint: str, resource: dict[str, str], attributes: dict[str, str], timeout: float) -> SentTrace:
    """A parent span and a child span of one trace, exported over OTLP/HTTP in one request."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=_resource(resource))  # never the global provider: no side effects
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer(SCOPE)
    with tracer.start_as_current_span("verify-parent", attributes=attributes) as parent:
        with tracer.start_as_current_span("verify-child", attributes=attributes) as child:
            pass
    spans = finished.get_finished_spans()
    provider.shutdown()
    _export(OTLPSpanExporter(endpoint=endpoint, timeout=timeout), spans, SpanExportResult.SUCCESS,
            "OTLP trace export", endpoint)
    return SentTrace(format(parent.get_span_context().trace_id, "032x"),
                     format(parent.get_span_context().span_id, "016x"), format(child.get_span_context().span_id, "016x"))


def send_log(endpoint: str, resource: dict[str, str], body: str, trace_id: str, span_id: str,
             attributes: dict[str, str], timeout: float) -> None:
    """One INFO log record inside the given span's context, exported over OTLP/HTTP."""
    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    finished = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=_resource(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(finished))
    context = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))))
    provider.get_logger(SCOPE).emit(body=body, severity_text="INFO", severity_number=SeverityNumber.INFO,
                                    attributes=attributes, context=context)
    records = finished.get_finished_logs()
    provider.shutdown()
    _export(OTLPLogExporter(endpoint=endpoint, timeout=timeout), records, LogRecordExportResult.SUCCESS,
            "OTLP log export", endpoint)


def send_gauge(endpoint: str, protocol: str, resource: dict[str, str], name: str, value: float,
               attributes: dict[str, str], timeout: float) -> None:
    """One gauge sample through the SDK, exported over OTLP/HTTP ("otlp") or Prometheus remote write
    ("remote-write", resource attributes left out: Prometheus 2.x has no use for them)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=_resource(resource), metric_readers=[reader])
    provider.get_meter(SCOPE).create_gauge(name).set(value, attributes)
    data = reader.get_metrics_data()
    provider.shutdown()
    if protocol == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=endpoint, timeout=timeout)
    elif protocol == "remote-write":
        from opentelemetry.exporter.prometheus_remote_write import PrometheusRemoteWriteMetricsExporter

        exporter = PrometheusRemoteWriteMetricsExporter(endpoint=endpoint, timeout=max(1, int(timeout)),
                                                        resources_as_labels=False)
    else:
        raise ValueError(f"no metrics exporter for protocol {protocol!r}")
    _export(exporter, data, MetricExportResult.SUCCESS, f"metric export ({protocol})", endpoint)
