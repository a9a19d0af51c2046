"""Hostile and broken stack files, refused by the model with one message naming the key (and the line), exit code
2, the value not repeated where it may be a secret. Each case here was once accepted and broke something later:
the compose file, a validator, Alertmanager at notification time, or a rule that could never fire."""

from __future__ import annotations

import time

import pytest
import yaml

from stackctl.core.config import parse_yaml
from stackctl.core.errors import ConfigError, StackError
from tests.conftest import stack_from


def refusal(text: str, tmp_path, env: dict | None = None, sets: list | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        stack_from(text, tmp_path, env=env, sets=sets)
    error = info.value
    assert error.exit_code == 2 and "\n" not in error.message and not error.details
    return error


def doc(data: dict) -> str:
    return yaml.safe_dump(data)


# --- values a later tool reads as something else ----------------------------------------------------------------


@pytest.mark.parametrize("key, value", [
    (("services", "elasticsearch", "cluster_name"), "x\ny"),
    (("services", "grafana", "admin_user"), "admin\n"),
    (("project",), "stack\x00"),
    (("scrape_targets",), [{"job": "app\n", "targets": ["a:1"]}]),
    (("scrape_targets",), [{"job": "app", "targets": ["evil:9090\n"]}]),
    (("services", "elasticsearch", "log_retention"), "7d\n"),
    (("alerting", "receivers"), [{"name": "s", "type": "slack", "api_url": {"from_env": "U"}, "channel": "#a\tb"}]),
])
def test_control_characters_are_refused_everywhere(tmp_path, key, value):
    data: dict = {}
    node = data
    for part in key[:-1]:
        node = node.setdefault(part, {})
    node[key[-1]] = value
    error = refusal(doc(data), tmp_path)
    assert error.path.startswith(".".join(str(k) for k in key[:2]))


@pytest.mark.parametrize("threshold", [".nan", ".inf", "-.inf"])
def test_non_finite_thresholds_are_refused(tmp_path, threshold):
    error = refusal(f"rules:\n  host:\n    cpu_warning: {threshold}\n", tmp_path)
    assert error.path == "rules.host.cpu_warning" and "finite" in error.problem and error.line == 3


@pytest.mark.parametrize("channel", ["#ops-{{ .CommonLabels.team }}", "{{", "x}}"])
def test_go_template_braces_in_templated_receiver_fields_are_refused(tmp_path, channel):
    text = doc({"alerting": {"receivers": [{"name": "s", "type": "slack", "channel": channel,
                                            "api_url": {"from_env": "SLACK"}}]}})
    assert "Go template" in refusal(text, tmp_path).problem
    mail = doc({"alerting": {"receivers": [{"name": "m", "type": "email", "to": "{{x}}@example.com",
                                            "from": "a@example.com", "smarthost": "smtp:25"}]}})
    assert refusal(mail, tmp_path).path == "alerting.receivers[0].to"


@pytest.mark.parametrize("url", ["https://wiki.example.com/it's", "https://w/{{ .X }}", "https://w/$HOME",
                                 "https://w/a b", 'https://w/"x"'])
def test_runbook_urls_that_break_rules_are_refused(tmp_path, url):
    assert refusal(doc({"rules": {"runbook_base_url": url}}), tmp_path).path == "rules.runbook_base_url"


@pytest.mark.parametrize("path, value, words", [
    (("services", "prometheus", "image"), "PROM/Prometheus:v3.14.0", "not a valid image reference"),
    (("services", "prometheus", "image"), "prom/prometheus:v3 .14", "not a valid image reference"),
    (("services", "prometheus", "image"), "prom/prometheus:${STACK_SECRET_ELASTIC_PASSWORD}",
     "not a valid image reference"),
    (("registry_mirror",), "https://mirror.example.com", "registry host"),
    (("registry_mirror",), "mirror.example.com/${X}", "registry host"),
    (("services", "grafana", "memory"), "0", "at least 6m"),
    (("services", "grafana", "memory"), "1b", "at least 6m"),
    (("services", "logstash", "heap"), "0m", "at least 64m"),
    (("services", "elasticsearch", "heap"), "2g", "does not fit in the memory limit 1536m"),
    (("services", "grafana", "plugins"), ["a plugin"], "plugin id"),
    (("services", "grafana", "plugins"), ["a,b"], "plugin id"),
    (("services", "grafana", "admin_user"), "admin${STACK_SECRET_X}", "login name"),
    (("services", "elasticsearch", "cluster_name"), "x-${STACK_SECRET_GRAFANA_ADMIN_PASSWORD}", "letters, digits"),
    (("services", "elasticsearch", "cluster_name"), "stack😀", "letters, digits"),
    (("services", "jaeger", "max_traces"), 2**64, "between 1 and"),
    (("bind_address",), "abc", "IP address"),
    (("bind_address",), "999.1.1.1", "IP address"),
    (("state_dir",), "", "must name a directory"),
    (("services", "collector", "memory_limit_percent"), 96, "between 10 and 95"),
    (("services", "prometheus", "scrape_interval"), "30m1h", "units largest first"),
    (("alerting", "group_wait"), "30m1h", "units largest first"),
    (("services", "prometheus", "retention_size"), "0GB", "above 0"),
])
def test_invalid_values_are_refused_at_their_key(tmp_path, path, value, words):
    data: dict = {}
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    error = refusal(doc(data), tmp_path)
    assert error.path == ".".join(path) or error.path.startswith(".".join(path) + "["), error
    assert words in str(error), error


@pytest.mark.parametrize("target, words", [
    ({"job": "app", "targets": ["app:70000"]}, "between 1 and 65535"),
    ({"job": "app", "targets": ["app:0"]}, "between 1 and 65535"),
    ({"job": "app", "targets": ["app"]}, "host:port"),
    ({"job": "app", "targets": ["a:1"], "labels": {"__address__": "x"}}, "reserved"),
    ({"job": "app", "targets": ["a:1"], "labels": {"job": "x"}}, "reserved"),
])
def test_scrape_targets_prometheus_would_misread_are_refused(tmp_path, target, words):
    assert words in str(refusal(doc({"scrape_targets": [target]}), tmp_path))


def test_a_main_port_clashing_with_another_services_extra_port_is_refused(tmp_path):
    error = refusal("services:\n  kibana:\n    port: 5044\n", tmp_path)
    assert error.path == "services.kibana.port" and "logstash (beats)" in error.problem and error.line == 3


def test_warning_equal_to_critical_is_refused(tmp_path):
    error = refusal("rules:\n  host:\n    cpu_warning: 80\n    cpu_critical: 80\n", tmp_path)
    assert error.path == "rules.host.cpu_warning" and "below cpu_critical" in error.problem


# --- overrides from the environment and the command line ----------------------------------------------------------


def test_environment_override_values_are_not_repeated(tmp_path):
    secret = "s3cret-value-from-a-paste"
    error = refusal("", tmp_path, env={"STACKCTL_ALERTING__RECEIVERS": secret})
    assert secret not in str(error) and "STACKCTL_ALERTING__RECEIVERS" in str(error)


def test_a_malformed_from_env_is_not_repeated(tmp_path):
    secret = "xoxb-123-this-is-the-token"
    error = refusal(doc({"alerting": {"receivers": [{"name": "s", "type": "slack",
                                                     "api_url": {"from_env": secret}}]}}), tmp_path)
    assert secret not in str(error) and error.path == "alerting.receivers[0].api_url.from_env"


# --- denial of service -----------------------------------------------------------------------------------------------


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_a_yaml_alias_bomb_is_refused_quickly_and_small(tmp_path, levels):
    text = alias_bomb(levels)
    assert len(text) < 700
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_yaml(text, "stack.yaml")
    assert time.perf_counter() - start < 1.0


def test_modest_anchors_still_work(tmp_path):
    stack = stack_from("scrape_targets:\n  - {job: a, targets: ['a:1'], labels: &l {team: web}}\n"
                       "  - {job: b, targets: ['b:1'], labels: *l}\n", tmp_path)
    assert stack.config.scrape_targets[1].labels == {"team": "web"}
    data, _ = parse_yaml("base: &b {port: 3001}\nother: *b\n", "stack.yaml")
    assert data["other"] == {"port": 3001}


def test_an_override_value_that_is_an_alias_bomb_stays_text(tmp_path):
    bomb = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x]"] + ["*a"] * 9) + "]"
    with pytest.raises(StackError):
        stack_from("", tmp_path, env={"STACKCTL_PROJECT": bomb})
