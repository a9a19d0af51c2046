"""`stackctl verify`'s traces, logs, Grafana and Kibana checks against labelled fakes of their APIs (tests/fakes:
collector, Jaeger, Elasticsearch, Logstash, Grafana, Kibana), on the same code path as against the real services:
the real OpenTelemetry SDK sends real OTLP/HTTP, the real clients read the documented answers. Every check passes
on a healthy fake stack and fails, naming the component, when one piece breaks."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackctl.clients.kibana import Kibana
from stackctl.core.config import Stack
from stackctl.core.render import DATASOURCES_FILE, render_bundle
from stackctl.core.verify import FAILED, PASSED, SKIPPED, VerifyReport
from stackctl.ops.context import Runtime
from stackctl.ops.verify import verify
from stackctl.shells.fs import write_bundle
from stackctl.shells.state import SecretStore
from tests.conftest import stack_from, stored_secrets
from tests.fakes.collector import FakeCollector, FakeHealthCheck, FakeLogstashApi, FakeLogstashJsonLines
from tests.fakes.compose import FakeEngine, container
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.grafana import FakeGrafana
from tests.fakes.jaeger import FakeJaeger
from tests.fakes.kibana import FakeKibana

pytestmark = pytest.mark.contract


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class World:
    stack: Stack
    bundle: Path
    store: SecretStore
    runtime: Runtime
    es: FakeElasticsearch
    jaeger: FakeJaeger
    collector: FakeCollector
    grafana: FakeGrafana
    kibana: FakeKibana

    def verify(self, *only: str, timeout: float = 15) -> VerifyReport:
        return verify(self.stack, self.runtime, self.bundle, only=list(only), timeout=timeout)

    def provision_grafana(self) -> None:
        self.grafana.datasources.clear()
        self.grafana.dashboards.clear()
        self.grafana.provision(self.bundle, environ={}, files={
            "/run/secrets/grafana_reader_password": self.store.read("grafana_reader_password")})


def results(report: VerifyReport) -> dict:
    return {r.name: r for r in report.results}


@pytest.fixture
def world(tmp_path):
    """Logs and traces services as fakes on loopback (Prometheus and Alertmanager are covered for real in
    tests/containers/test_verify.py), with the stack file pointing at their ports."""
    with ExitStack() as running:
        placeholder = FakeElasticsearch("placeholder")  # the real password is generated below
        es = running.enter_context(placeholder)
        jaeger = running.enter_context(FakeJaeger())
        collector = running.enter_context(FakeCollector(jaeger, es))
        health = running.enter_context(FakeHealthCheck())
        logstash_api = running.enter_context(FakeLogstashApi())
        json_lines = running.enter_context(FakeLogstashJsonLines(es))
        grafana = running.enter_context(FakeGrafana("admin", "placeholder"))
        kibana = running.enter_context(FakeKibana("elastic", "placeholder"))
        stack = stack_from(f"""
services:
  prometheus: {{enabled: false}}
  alertmanager: {{enabled: false}}
  node_exporter: {{enabled: false}}
  grafana: {{port: {grafana.port}}}
  elasticsearch: {{port: {es.port}}}
  kibana: {{port: {kibana.port}}}
  jaeger: {{port: {jaeger.port}}}
  collector: {{port: {free_port()}, ports: {{otlp_http: {collector.port}, health: {health.port}}}}}
  logstash: {{port: {logstash_api.port}, ports: {{beats: {free_port()}, json: {json_lines.port}}}}}
""", tmp_path)
        store = stored_secrets(stack)
        es.users["elastic"]["password"] = store.read("elastic_password")
        grafana.users["admin"]["password"] = store.read("grafana_admin_password")
        kibana.credentials = ("elastic", store.read("elastic_password"))
        bundle = tmp_path / "build"
        write_bundle(render_bundle(stack), bundle)
        engine = FakeEngine(running={"jaeger": container("jaeger")})
        world = World(stack, bundle, store, Runtime(engine=engine), es, jaeger, collector, grafana, kibana)
        world.provision_grafana()
        Kibana(kibana.url, auth=("elastic", store.read("elastic_password"))).ensure_data_view(
            "stackctl-logs", "logs-*", "stackctl logs")
        yield world


def test_every_check_passes_on_a_healthy_stack(world):
    report = world.verify()
    got = results(report)
    assert {name: r.status for name, r in got.items() if r.status != PASSED} == {}, \
        {name: r.detail for name, r in got.items() if r.status != PASSED}
    assert report.ok
    assert set(got) == {"ready:grafana", "grafana:login", "grafana:datasources", "grafana:dashboards", "grafana:links",
                        "ready:elasticsearch", "logs:otlp", "logs:logstash", "ready:logstash", "ready:kibana",
                        "kibana:status", "kibana:data-views", "ready:jaeger", "traces:path", "ready:otel-collector"}
    assert got["traces:path"].components == ("jaeger", "otel-collector")
    assert "2 spans, child linked to parent" in got["traces:path"].detail
    assert "logs-generic.otel-default" in got["logs:otlp"].detail
    assert "logs-stackctl-default" in got["logs:logstash"].detail
    assert "Jaeger present" not in got["grafana:datasources"].detail  # Jaeger has a health check
    # What the collector received is what an app sends: one trace of two spans with the run id, and one log record
    # carrying its trace id.
    (traces,) = world.collector.received["traces"]
    spans = traces["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert {s["name"] for s in spans} == {"verify-parent", "verify-child"}
    assert all({"key": "stackctl_verify", "value": {"stringValue": report.run_id}} in s["attributes"] for s in spans)
    # The log lines were deleted again: nothing synthetic is left in Elasticsearch.
    assert world.es.documents == []


def test_traces_fail_when_the_parent_link_is_lost(world):
    world.jaeger.drop_parent_links = True
    result = results(world.verify("traces"))["traces:path"]
    assert result.status == FAILED
    assert "parentSpanId" in result.detail
    assert result.look.startswith("http://127.0.0.1:") and "/trace/" in result.look


def test_traces_fail_naming_the_collector_when_it_refuses(world):
    world.collector.refuse = 400
    result = results(world.verify("traces:path"))["traces:path"]
    assert result.status == FAILED
    assert "OTLP trace export to http://127.0.0.1:" in result.detail and "/v1/traces failed" in result.detail
    assert result.look == "stackctl logs otel-collector"


def test_trace_that_never_arrives_fails_at_the_deadline(world):
    world.collector.jaeger = None
    result = results(world.verify("traces:path", timeout=2))["traces:path"]
    assert result.status == FAILED
    assert "Jaeger has no such trace" in result.detail


def test_trace_found_after_a_few_404s_passes(world):
    world.jaeger.delay = 3  # "No traces found" (404, text/plain) until then
    assert results(world.verify("traces:path"))["traces:path"].status == PASSED


def test_logs_fail_when_the_collector_does_not_reach_elasticsearch(world):
    world.collector.elasticsearch = None
    got = results(world.verify("logs", timeout=2))
    assert got["logs:otlp"].status == FAILED
    assert "Elasticsearch finds nothing in logs-*" in got["logs:otlp"].detail
    assert got["logs:otlp"].look == "stackctl logs otel-collector"
    assert got["logs:logstash"].status == PASSED


def test_logstash_path_fails_when_nothing_listens(world, tmp_path):
    world.stack.services["logstash"].host_ports["json"] = free_port()
    result = results(world.verify("logs:logstash", timeout=2))["logs:logstash"]
    assert result.status == FAILED
    assert "JSON lines to Logstash" in result.detail and result.look == "stackctl logs logstash"


def test_grafana_links_fail_when_provisioning_ate_the_variables(world):
    """The template as it was before the $$ escape: Grafana expands ${__span.traceId} to nothing."""
    path = world.bundle / DATASOURCES_FILE
    path.write_text(path.read_text().replace("$${__", "${__"))
    world.provision_grafana()
    result = results(world.verify("grafana:links"))["grafana:links"]
    assert result.status == FAILED
    assert "Jaeger jsonData.tracesToLogsV2.query is 'trace_id:\"\"' in Grafana" in result.detail
    assert "Elasticsearch logs jsonData.dataLinks.0.url is '' in Grafana" in result.detail
    assert "$${__...}" in result.detail


def test_grafana_datasource_health_failure_names_the_service_behind_it(world):
    world.grafana.unhealthy["elasticsearch-logs"] = "Elasticsearch data source is not healthy"
    result = results(world.verify("grafana:datasources"))["grafana:datasources"]
    assert result.status == FAILED
    assert "Elasticsearch logs: Elasticsearch data source is not healthy" in result.detail
    assert result.look == "stackctl logs elasticsearch"


def test_grafana_datasource_that_was_not_provisioned_fails(world):
    del world.grafana.datasources["jaeger"]
    result = results(world.verify("grafana:datasources"))["grafana:datasources"]
    assert result.status == FAILED and "Jaeger is not provisioned" in result.detail


def test_grafana_login_fails_when_the_password_was_changed_in_grafana(world):
    world.grafana.users["admin"]["password"] = "changed-in-the-ui"
    result = results(world.verify("grafana:login"))["grafana:login"]
    assert result.status == FAILED
    assert "refuses admin with the generated password" in result.detail
    assert world.store.read("grafana_admin_password") not in result.detail


def test_missing_dashboard_fails(world):
    del world.grafana.dashboards["stackctl-logs"]
    result = results(world.verify("grafana:dashboards"))["grafana:dashboards"]
    assert result.status == FAILED and "stackctl-logs" in result.detail


def test_kibana_degraded_fails_and_missing_data_view_fails(world):
    world.kibana.overall_level = "degraded"
    world.kibana.data_views.clear()
    got = results(world.verify("kibana"))
    assert got["kibana:status"].status == FAILED and "overall degraded" in got["kibana:status"].detail
    assert got["kibana:data-views"].status == FAILED and "stackctl-logs" in got["kibana:data-views"].detail


def test_kibana_core_unavailable_fails_readiness_with_503(world):
    world.kibana.core_level = "unavailable"
    got = results(world.verify("ready:kibana", "kibana:status"))
    assert got["ready:kibana"].status == FAILED and "answered 503" in got["ready:kibana"].detail
    assert got["kibana:status"].status == FAILED and "Elasticsearch is unavailable" in got["kibana:status"].detail


def test_elasticsearch_red_fails_readiness(world):
    world.es.health = "red"
    result = results(world.verify("ready:elasticsearch"))["ready:elasticsearch"]
    assert result.status == FAILED and "answered 408" in result.detail
    assert world.store.read("elastic_password") not in result.detail


def test_container_readiness_comes_from_the_engine(world):
    world.runtime.engine.running["jaeger"] = container("jaeger", state="running", health="unhealthy")
    result = results(world.verify("ready:jaeger"))["ready:jaeger"]
    assert result.status == FAILED and "unhealthy" in result.detail


def test_links_check_is_skipped_without_jaeger(tmp_path):
    stack = stack_from("preset: metrics\n", tmp_path)
    report = verify(stack, Runtime(engine=FakeEngine()), tmp_path / "build", only=["grafana:links"], timeout=1)
    (result,) = report.results
    assert result.status == SKIPPED and "Jaeger, Elasticsearch are not enabled" in result.detail
    assert not report.ok  # named with --only, and it could not run


# --- the fakes keep to the documented behaviour -----------------------------------------------------------------


def test_fake_kibana_finds_duplicates_by_name_and_never_answers_409():
    with FakeKibana("elastic", "pw-123456") as kibana:
        client = Kibana(kibana.url, auth=("elastic", "pw-123456"), retries=0)
        client.json("POST", "/api/data_views/data_view", "create", json={"data_view": {"title": "logs-*", "id": "a"}})
        # Same title, another name: allowed (duplicates are by name since 8.4).
        client.json("POST", "/api/data_views/data_view", "create",
                    json={"data_view": {"title": "logs-*", "name": "other", "id": "b"}})
        with pytest.raises(Exception) as caught:  # same name (the title) again, no override
            client.json("POST", "/api/data_views/data_view", "create", json={"data_view": {"title": "logs-*"}})
        assert caught.value.status == 400 and "Duplicate data view: logs-*" in caught.value.message
        with pytest.raises(Exception) as caught:  # an id taken by another name: a conflict, reported as 400
            client.json("POST", "/api/data_views/data_view", "create",
                        json={"data_view": {"title": "x-*", "name": "x", "id": "b"}})
        assert caught.value.status == 400
        # override: always 200, even for a taken id.
        client.json("POST", "/api/data_views/data_view", "create",
                    json={"data_view": {"title": "x-*", "name": "x", "id": "b"}, "override": True})
        assert kibana.data_views["b"]["title"] == "x-*"


def test_metrics_reach_the_collector_as_an_otlp_gauge_with_the_run_label():
    """metrics:path's first entry when the collector runs (Prometheus' side of that path is covered for real by the
    container tier, over remote write): what the collector receives is an OTLP gauge carrying the run id."""
    from stackctl.clients.otlp import send_gauge

    with FakeCollector() as collector:
        send_gauge(f"{collector.url}/v1/metrics", "otlp", {"service.name": "stackctl-verify"},
                   "stackctl_verify_probe", 1.0, {"stackctl_verify": "run42"}, timeout=5)
    (request,) = collector.received["metrics"]
    (metric,) = request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    (point,) = metric["gauge"]["dataPoints"]
    assert metric["name"] == "stackctl_verify_probe" and point["asDouble"] == 1.0
    assert point["attributes"] == [{"key": "stackctl_verify", "value": {"stringValue": "run42"}}]
