"""The pure part of `stackctl verify`: which checks a stack has (declared per service in the catalog), which run,
--only, the expectations (receivers per severity, scrape jobs, Grafana link variables) and the verdict."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stackctl.core import catalog
from stackctl.core.errors import StackError
from stackctl.core.verify import (FAILED, PASSED, SKIPPED, VerifyReport, VerifyResult, at_path, expected_receivers,
                                  expected_scrape_jobs, link_variables, parse_time, plan, select)
from tests.support.stacks import make_stack


def by_name(stack_data: dict, deep: bool = False) -> dict:
    return {p.name: p for p in plan(make_stack(stack_data), deep)}


def test_every_enabled_service_brings_its_own_checks():
    full = by_name({})
    for spec in catalog.CATALOG:
        for decl in spec.verify:
            assert full[decl.name].service == spec.key
    # Every long-running service is at least checked for readiness; every declaration has an implementation.
    assert {f"ready:{s.name}" for s in catalog.CATALOG if not s.oneshot} <= set(full)
    from stackctl.ops.verify import IMPLEMENTATIONS

    assert {type(d) for s in catalog.CATALOG for d in s.verify} <= set(IMPLEMENTATIONS)


def test_check_names_are_unique_and_grouped():
    names = [d.name for s in catalog.CATALOG for d in s.verify]
    assert len(names) == len(set(names))
    assert all(len(name.split(":")) == 2 and all(name.split(":")) for name in names)


def test_disabled_services_bring_no_checks_and_needs_skip_with_the_reason():
    metrics = by_name({"preset": "metrics"})
    assert not any(name.startswith(("traces", "logs", "kibana")) for name in metrics)
    assert metrics["grafana:links"].skip == "Jaeger, Elasticsearch are not enabled"
    no_am = by_name({"preset": "metrics", "services": {"alertmanager": {"enabled": False}}}, deep=True)
    assert no_am["scrape:alertmanager"].skip == "Alertmanager is not enabled"
    assert "alerts:routing" not in no_am


def test_deep_checks_are_skipped_without_deep():
    assert by_name({})["alerts:delivery"].skip == "runs with --deep"
    assert by_name({}, deep=True)["alerts:delivery"].skip == ""


def test_path_checks_send_the_way_an_app_does():
    """OTLP to the collector when it runs; else Prometheus' own OTLP receiver (3.x) or remote write (2.x)."""
    assert by_name({})["metrics:path"].entry.service == "collector"
    assert by_name({})["metrics:path"].components == ("prometheus", "otel-collector")
    direct = by_name({"preset": "metrics"})["metrics:path"]
    assert (direct.entry.path, direct.entry.protocol) == ("/api/v1/otlp/v1/metrics", "otlp")
    old = by_name({"preset": "metrics", "services": {"prometheus": {"image": "prom/prometheus:v2.42.0"}}})
    assert (old["metrics:path"].entry.path, old["metrics:path"].entry.protocol) == ("/api/v1/write", "remote-write")
    no_collector = by_name({"services": {"collector": {"enabled": False}}})
    assert no_collector["traces:path"].skip == "nowhere to send: OpenTelemetry collector is not enabled"
    assert no_collector["logs:logstash"].skip == "" and no_collector["logs:otlp"].skip


def test_only_selects_names_and_groups_and_refuses_unknown_ones():
    planned = list(by_name({}).values())
    chosen, explicit = select(planned, ["scrape", "traces:path"])
    assert [p.name for p in chosen] == ["scrape:targets", "scrape:rules", "scrape:alertmanager", "traces:path"]
    assert explicit == {"traces:path"}
    with pytest.raises(StackError) as caught:
        select(planned, ["scrap:targets"])
    assert "no check named 'scrap:targets'" in caught.value.message and "scrape:targets" in caught.value.message


@pytest.mark.parametrize("receivers, expected", [
    ([], {"critical": ("default",), "warning": ("default",), "info": ("null",)}),
    ([{"name": "pager", "type": "pagerduty", "routing_key": {"from_env": "PD"}},
      {"name": "chat", "type": "webhook", "url": "http://x", "severities": ["warning", "info"]}],
     {"critical": ("pager",), "warning": ("chat",), "info": ("chat",)}),
])
def test_expected_receivers_follow_the_routing_stack_yaml_asks_for(receivers, expected):
    alerting = make_stack({"alerting": {"receivers": receivers}}).config.alerting
    assert {s: expected_receivers(alerting, s) for s in expected} == expected


def test_expected_scrape_jobs_are_the_services_with_metrics_and_the_users_apps():
    stack = make_stack({"preset": "metrics", "scrape_targets": [{"job": "shop", "targets": ["shop:8080"]}]})
    assert expected_scrape_jobs(stack) == {"prometheus": "prometheus", "alertmanager": "alertmanager",
                                           "grafana": "grafana", "node-exporter": "node-exporter", "shop": ""}


def test_link_variables_read_the_escape_as_grafana_does():
    json_data = {"tracesToLogsV2": {"query": 'trace_id:"$${__span.traceId}"', "spanStartTimeShift": "-1h"},
                 "dataLinks": [{"field": "trace_id", "url": "${__value.raw}"}], "index": "logs-*"}
    assert link_variables(json_data) == [
        (("tracesToLogsV2", "query"), 'trace_id:"${__span.traceId}"'),
        (("dataLinks", 0, "url"), "${__value.raw}")]
    assert at_path(json_data, ("dataLinks", 0, "url")) == "${__value.raw}"
    assert at_path(json_data, ("dataLinks", 3, "url")) is None and at_path({}, ("a",)) is None


def test_prometheus_times_parse_with_nanoseconds():
    assert parse_time("2026-08-20T10:00:01.123456789Z") == datetime(2026, 8, 20, 10, 0, 1, 123456, timezone.utc)
    assert parse_time("2026-08-20T10:00:01+02:00").utcoffset().total_seconds() == 7200
    assert parse_time("") is None and parse_time("yesterday") is None


def result(name: str, status: str) -> VerifyResult:
    return VerifyResult(name, "Ready", ("prometheus",), status, "seen")


def test_a_report_passes_only_when_every_check_that_ran_passed():
    assert VerifyReport("r", False, (result("a", PASSED), result("b", SKIPPED)), 1.0).ok
    assert not VerifyReport("r", False, (result("a", PASSED), result("b", FAILED)), 1.0).ok
    # A check named with --only must run.
    assert not VerifyReport("r", False, (result("b", SKIPPED),), 1.0, frozenset({"b"})).ok
    data = VerifyReport("r1", True, (result("a", FAILED),), 1.23456).to_json()
    assert data == {"ok": False, "run_id": "r1", "deep": True, "duration": 1.235, "checks": [
        {"name": "a", "kind": "Ready", "components": ["prometheus"], "status": "failed", "detail": "seen",
         "duration": 0.0, "look": ""}]}


def test_verify_section_is_typed(tmp_path):
    from tests.support.models import error_of

    assert make_stack({}).config.verify.webhook_port == 19093
    assert error_of({"verify": {"webhook_port": 70000}}).path == "verify.webhook_port"
    assert error_of({"verify": {"timeout": "soon"}}).path == "verify.timeout"
    assert error_of({"verify": {"webhook_adress": "x"}}).path == "verify.webhook_adress"
