"""Where the services answer: URLs of published ports."""

from __future__ import annotations

from stackctl.core.endpoints import urls
from tests.support.stacks import make_stack


def test_urls_list_published_ports_with_overrides():
    stack = make_stack({"services": {"grafana": {"port": 3001}}})
    rows = {(r["service"], r["port"]): r["url"] for r in urls(stack)}
    assert rows[("grafana", "web")] == "http://localhost:3001"
    assert rows[("otel-collector", "otlp_grpc")] == "localhost:4317"
    assert rows[("otel-collector", "otlp_http")] == "http://localhost:4318"
    assert not any(service == "node-exporter" for service, _ in rows)  # not published
