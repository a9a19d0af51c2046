"""FAKE: a small stand-in following the OpenTelemetry collector's OTLP/HTTP receiver, and Logstash's json_lines
tcp input, each handing what it received to a fake backend; not the real services.

Sources: open-telemetry/opentelemetry-collector@v0.155.0:receiver/otlpreceiver/otlphttp.go (POST /v1/traces,
/v1/logs, /v1/metrics; protobuf or JSON; a protobuf success is a 200 with an empty body; 405 for other methods,
415 for other content types), extension/healthcheckextension (GET / -> {"status": "Server available"});
contrib exporter/elasticsearchexporter/internal/encoder/log/otel.go (otel-mode log documents in
logs-generic.otel-default: body.text, trace_id and span_id in hex, severity_text, resource.attributes);
logstash-plugins/logstash-codec-json_lines and stackctl's configs/logstash/pipeline/main.conf.j2 (one event per
newline-terminated JSON line, into the logs-stackctl-default data stream). Notes: /work/scratch/apis/otlp.md.
"""

from __future__ import annotations

import base64
import socketserver
import threading
from datetime import datetime, timezone

from tests.fakes.server import FakeServer, Reply, Request

SIGNALS = ("traces", "logs", "metrics")


def _hex_ids(node):
    """proto3 JSON writes bytes as base64; OTLP/JSON (and Jaeger) write trace and span ids as lowercase hex."""
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else _hex_ids(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _decode(signal: str, body: bytes) -> dict:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    message = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest,
               "metrics": ExportMetricsServiceRequest}[signal]()
    message.ParseFromString(body)
    return _hex_ids(MessageToDict(message))


def _value(any_value: dict):
    return next(iter(any_value.values())) if any_value else None


def otel_log_document(resource: dict, scope: dict, record: dict) -> dict:
    """The elasticsearch exporter's otel-mode document for one log record."""
    nanos = int(record.get("timeUnixNano") or record.get("observedTimeUnixNano") or 0)
    document = {
        "@timestamp": datetime.fromtimestamp(nanos / 1e9, timezone.utc).isoformat(),
        "severity_text": record.get("severityText", ""), "severity_number": record.get("severityNumber", 0),
        "body": {"text": _value(record.get("body") or {})},
        "attributes": {a["key"]: _value(a["value"]) for a in record.get("attributes") or []},
        "resource": {"attributes": {a["key"]: _value(a["value"]) for a in resource.get("attributes") or []}},
        "scope": {"name": scope.get("name", "")},
        "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
    }
    for key, field in (("traceId", "trace_id"), ("spanId", "span_id")):
        if record.get(key):
            document[field] = record[key]
    return document


class FakeCollector(FakeServer):
    """OTLP/HTTP in; traces to `jaeger` (a FakeJaeger), logs to `elasticsearch` (a FakeElasticsearch), metrics kept
    in `received["metrics"]`. `refuse` answers that status (with a google.rpc.Status) instead."""

    def __init__(self, jaeger=None, elasticsearch=None) -> None:
        super().__init__()
        self.jaeger, self.elasticsearch = jaeger, elasticsearch
        self.received: dict[str, list[dict]] = {s: [] for s in SIGNALS}
        self.refuse: int | None = None

    def handle(self, request: Request) -> Reply:
        signal = request.path.removeprefix("/v1/")
        if signal not in SIGNALS:
            return Reply(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        if request.method != "POST":
            return Reply(405, b"405 method not allowed, supported: [POST]", {"Content-Type": "text/plain"})
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-protobuf":
            return Reply(415, b"415 unsupported media type, supported: [application/json, application/x-protobuf]",
                         {"Content-Type": "text/plain"})
        if self.refuse is not None:
            return Reply(self.refuse, {"code": 14, "message": "data refused due to high memory usage"})
        data = _decode(signal, request.body)
        self.received[signal].append(data)
        if signal == "traces" and self.jaeger is not None:
            self.jaeger.store(data.get("resourceSpans") or [])
        if signal == "logs" and self.elasticsearch is not None:
            for resource_logs in data.get("resourceLogs") or []:
                for scope_logs in resource_logs.get("scopeLogs") or []:
                    for record in scope_logs.get("logRecords") or []:
                        self.elasticsearch.documents.append(("logs-generic.otel-default", otel_log_document(
                            resource_logs.get("resource") or {}, scope_logs.get("scope") or {}, record)))
        return Reply(200, b"", {"Content-Type": "application/x-protobuf"})


class FakeHealthCheck(FakeServer):
    """The collector's legacy health_check extension: GET / answers 200 {"status": "Server available"}."""

    def handle(self, request: Request) -> Reply:
        return Reply(200, {"status": "Server available", "upSince": "2026-08-20T10:00:00.1234Z", "uptime": "1m2.5s"})


class FakeLogstashApi(FakeServer):
    """Logstash's monitoring API: GET /_node/pipelines/main (what its healthcheck calls)."""

    def handle(self, request: Request) -> Reply:
        if request.path == "/_node/pipelines/main":
            return Reply(200, {"id": "main", "pipelines": {"main": {"workers": 2, "batch_size": 125}}})
        return Reply(404, {"path": request.path, "status": 404})


class FakeLogstashJsonLines:
    """Logstash's tcp input with codec json_lines: each newline-terminated JSON line becomes a document of the
    logs-stackctl-default data stream in `elasticsearch`; a line that is not JSON becomes a _jsonparsefailure event."""

    def __init__(self, elasticsearch) -> None:
        import json

        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        event = {"message": line.decode(errors="replace").rstrip("\n"), "tags": ["_jsonparsefailure"]}
                    event.setdefault("@timestamp", datetime.now(timezone.utc).isoformat())
                    fake.elasticsearch.documents.append(("logs-stackctl-default", event))

        self.elasticsearch = elasticsearch
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
