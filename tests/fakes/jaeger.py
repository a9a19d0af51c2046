"""FAKE: a small stand-in following Jaeger v2's query API (api_v3 over HTTP), not the real service.

Source: jaegertracing/jaeger-idl@v0.9.0:swagger/api_v3/query_service.openapi.yaml and the v2.20 gateway that serves
it, jaegertracing/jaeger@v2.20.0:cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go (with its
golden snapshots); notes in /work/scratch/apis/jaeger.md.

Only `GET /api/v3/traces/{trace_id}`: 200 with OTLP/JSON wrapped in `{"result": {"resourceSpans": [...]}}` (ids in
lowercase hex, `parentSpanId` absent on a root span, times as strings, `status` always present), and for an unknown
trace a 404 `{"error":{"httpCode":404,"message":"No traces found"}}` sent as text/plain with a trailing newline.
Spans arrive through `store()` (what the collector's OTLP exporter would hand to Jaeger); `delay` holds them back
for that many requests, as a trace takes a moment to become searchable.
"""

from __future__ import annotations

import json

from tests.fakes.server import FakeServer, Reply, Request


class FakeJaeger(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.resource_spans: list[dict] = []  # OTLP/JSON ResourceSpans as received
        self.delay = 0  # requests that still find nothing
        self.drop_parent_links = False  # lose parentSpanId (a broken pipeline)

    def store(self, resource_spans: list[dict]) -> None:
        with self.lock:
            self.resource_spans.extend(resource_spans)

    def handle(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if request.method != "GET":
            return Reply(405, b"Method Not Allowed\n", {"Content-Type": "text/plain; charset=utf-8"})
        if parts[:3] != ["api", "v3", "traces"] or len(parts) != 4:
            return Reply(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        trace_id = parts[3].lower().rjust(32, "0")
        found = []
        for resource_spans in self.resource_spans:
            for scope in resource_spans.get("scopeSpans") or []:
                spans = [dict(s) for s in scope.get("spans") or [] if s.get("traceId") == trace_id]
                if self.drop_parent_links:
                    for span in spans:
                        span.pop("parentSpanId", None)
                if spans:
                    found.append({"resource": resource_spans.get("resource") or {},
                                  "scopeSpans": [{"scope": scope.get("scope") or {}, "spans": spans}]})
        if self.delay > 0:
            self.delay -= 1
            found = []
        if not found:
            body = json.dumps({"error": {"httpCode": 404, "message": "No traces found"}}).encode() + b"\n"
            return Reply(404, body, {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"})
        return Reply(200, {"result": {"resourceSpans": found}})
