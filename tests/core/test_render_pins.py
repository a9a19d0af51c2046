"""Behaviours of the rendered bundle that a small change would break silently: who owns which compose keys,
Alertmanager's inhibition, Elasticsearch security, the collector's processor order, odd metrics paths, and the
time the slow services get to become healthy."""

from __future__ import annotations

import re

import pytest

from stackctl.core import catalog, yamltext
from stackctl.core.errors import StackError
from stackctl.core.render import compose_service
from stackctl.core.units import duration_seconds
from tests.conftest import stack_from


def plan_of(text: str, tmp_path) -> dict:
    from stackctl.core.render import render_bundle

    return render_bundle(stack_from(text, tmp_path))


@pytest.mark.parametrize("key", ["image", "mem_limit", "restart", "healthcheck", "ports", "depends_on", "secrets",
                                 "user", "logging"])
def test_a_compose_template_may_not_set_what_the_catalog_owns(tmp_path, key):
    stack = stack_from("", tmp_path)
    with pytest.raises(StackError, match=f"sets '{key}', which the catalog owns"):
        compose_service(stack, stack.get("prometheus"), {key: "x"}, "hash")
    merged = compose_service(stack, stack.get("prometheus"), {"labels": {"extra": "1"}}, "hash")
    assert merged["labels"] == {"org.stackctl.service": "prometheus", "org.stackctl.config-hash": "hash", "extra": "1"}


def test_alertmanager_inhibition_rules(tmp_path):
    config = yamltext.load(plan_of("", tmp_path)["configs/alertmanager/alertmanager.yml"])
    assert config["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
         "equal": ["alertname", "service", "instance", "slo"]},
        {"source_matchers": ['alertname="HostDiskSpaceLow"'], "target_matchers": ['alertname="HostDiskFillingUp"'],
         "equal": ["instance", "mountpoint"]},
        {"source_matchers": ['alertname="TargetDown"'], "target_matchers": ['alertname!="TargetDown"'],
         "equal": ["service", "instance"]},
        {"source_matchers": ['alertname="TargetDown"'], "target_matchers": ['alertname!="TargetDown"', 'instance=""'],
         "equal": ["service"]},
    ]


def test_elasticsearch_runs_with_security_on_and_plain_http(tmp_path):
    compose = yamltext.load(plan_of("", tmp_path)["compose.yaml"])
    environment = compose["services"]["elasticsearch"]["environment"]
    assert environment["xpack.security.enabled"] == "true"
    assert environment["xpack.security.http.ssl.enabled"] == "false"
    assert environment["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"


def test_the_collector_limits_memory_before_anything_else(tmp_path):
    config = yamltext.load(plan_of("services:\n  collector: {memory_limit_percent: 70}\n", tmp_path)[
        "configs/collector/config.yaml"])
    for name, pipeline in config["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
    assert config["processors"]["memory_limiter"]["limit_percentage"] == 70


@pytest.mark.parametrize("path", ["/metrics: x", "/a#b", "/'q'", '/"q"', "/{a}", "/x&y=%20", "/- x"])
def test_a_metrics_path_with_yaml_special_characters_arrives_as_written(tmp_path, path):
    text = yamltext.dump({"scrape_targets": [{"job": "app", "targets": ["app:1"], "metrics_path": path}]})
    config = yamltext.load(plan_of(text, tmp_path)["configs/prometheus/prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "app"]
    assert job["metrics_path"] == path


@pytest.mark.parametrize("key, minimum_seconds", [("elasticsearch", 300), ("kibana", 300), ("logstash", 120)])
def test_slow_services_get_minutes_to_become_healthy(key, minimum_seconds):
    check = catalog.SERVICES[key].healthcheck
    budget = duration_seconds(check.start_period) + check.retries * duration_seconds(check.interval)
    assert budget >= minimum_seconds, f"{key} is declared unhealthy after {budget:.0f}s"


def test_every_dollar_reaches_compose_doubled(tmp_path):
    compose = plan_of("", tmp_path)["compose.yaml"].decode()
    assert re.findall(r"\$+\(cat /run/secrets/elastic_password\)", compose) == ["$$(cat /run/secrets/elastic_password)"]
    body = "\n".join(line for line in compose.splitlines() if not line.startswith("#"))
    assert "$" not in body.replace("$$", ""), "a single $ reaches Compose"
    loaded = yamltext.load(compose)
    healthcheck = " ".join(loaded["services"]["elasticsearch"]["healthcheck"]["test"])
    assert "$$(cat" in healthcheck  # compose turns $$ back into $ for the container
