"""Jaeger v2's query API (api_v3 over HTTP): a trace by id.

Shapes follow jaegertracing/jaeger-idl@v0.9.0:swagger/api_v3/query_service.openapi.yaml and the v2.20 HTTP gateway
(jaegertracing/jaeger@v2.20.0:cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go): the
answer is OTLP/JSON wrapped in {"result": ...}, ids in lowercase hex, and an unknown trace is a 404."""

from __future__ import annotations

from stackctl.clients.http import HttpApi


class Jaeger(HttpApi):
    def __init__(self, base_url: str, **kwargs):
        super().__init__(base_url, "Jaeger", **kwargs)

    def trace(self, trace_id: str, timeout: float | None = None) -> list[dict] | None:
        """GET /api/v3/traces/{id}: its spans, each with the service.name of its resource added as `service`;
        None while Jaeger does not have it (404)."""
        path = f"/api/v3/traces/{trace_id}"
        response = self.call("GET", path, f"Jaeger trace {trace_id}", ok=(404,), timeout=timeout)
        if response.status_code == 404:
            return None
        spans = []
        for resource_spans in (response.json().get("result") or {}).get("resourceSpans") or []:
            attributes = (resource_spans.get("resource") or {}).get("attributes") or []
            service = next((a["value"].get("stringValue") for a in attributes if a.get("key") == "service.name"), None)
            for scope in resource_spans.get("scopeSpans") or []:
                spans += [{**span, "service": service} for span in scope.get("spans") or []]
        return spans
