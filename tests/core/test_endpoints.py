"""Where the services answer: URLs of published ports."""

from __future__ import annotations

import pytest

from stackctl.core.endpoints import urls
from tests.support.stacks import make_stack


def test_urls_list_published_ports_with_overrides():
    stack = make_stack({"services": {"grafana": {"port": 3001}}})
    rows = {(r["service"], r["port"]): r["url"] for r in urls(stack)}
    assert rows[("grafana", "web")] == "http://localhost:3001"
    assert rows[("otel-collector", "otlp_grpc")] == "localhost:4317"
    assert rows[("otel-collector", "otlp_http")] == "http://localhost:4318"
    assert not any(service == "node-exporter" for service, _ in rows)  # not published


def test_the_whole_url_list_of_the_default_stack():
    rows = [(r["service"], r["port"], r["description"], r["url"]) for r in urls(make_stack())]
    assert rows == [
        ("prometheus", "web", "UI and API", "http://localhost:9090"),
        ("alertmanager", "web", "UI and API", "http://localhost:9093"),
        ("grafana", "web", "UI", "http://localhost:3000"),
        ("elasticsearch", "http", "REST API", "http://localhost:9200"),
        ("logstash", "api", "monitoring API", "http://localhost:9600"),
        ("logstash", "beats", "Beats input", "localhost:5044"),
        ("logstash", "json", "JSON lines over TCP (trace_id/span_id aware)", "localhost:5000"),
        ("kibana", "web", "UI", "http://localhost:5601"),
        ("jaeger", "ui", "UI and query API", "http://localhost:16686"),
        ("otel-collector", "otlp_grpc", "OTLP gRPC: point apps here", "localhost:4317"),
        ("otel-collector", "otlp_http", "OTLP HTTP: point apps here", "http://localhost:4318"),
        ("otel-collector", "health", "health_check extension", "http://localhost:13133"),
    ]


@pytest.mark.parametrize("bind, host", [("0.0.0.0", "localhost"), ("::", "localhost"), ("10.1.2.3", "10.1.2.3"),
                                        ("::1", "[::1]")])
def test_urls_follow_the_bind_address(bind, host):
    (grafana,) = [r for r in urls(make_stack({"preset": "metrics", "bind_address": bind})) if r["service"] == "grafana"]
    assert grafana["url"] == f"http://{host}:3000"
