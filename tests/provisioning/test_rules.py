"""Prometheus rule packs (configs/prometheus/rules/*.gojinja) and the `rules:` model (stackctl.core.alerting).

The rules are checked as rendered: a bundle is rendered from a stack file in a temporary directory and promtool
(Debian's 2.42, the oldest Prometheus the rules must work on) checks and unit-tests the files Prometheus would load.
The unit tests live in tests/provisioning/rules/*.test.yml and are copied next to the rendered rules. The tests that run promtool
are marked `tools`: they skip when promtool is missing, and fail instead when the CI environment variable is set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.shells.stackfile import load_stack
from stackctl.core.alerting import SLO, number
from stackctl.core.render import render_bundle
from stackctl.shells.fs import write_bundle
from tests.support.models import error_of, load

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS_DIR = ROOT / "tests" / "provisioning" / "rules"
RULE_TEST_FILES = sorted(RULE_TESTS_DIR.glob("*.test.yml"))
RULES_DIR = "configs/prometheus/rules"
RUNBOOK_BASE = "https://runbooks.example.com"
SEVERITIES = {"critical", "warning", "info"}

# The stack the unit tests in tests/provisioning/rules/ are written for: defaults, one SLO, fixed runbook links.
TEST_SLO = {"name": "checkout-availability", "service": "checkout", "objective": 99.9, "window": "30d"}
TEST_STACK: dict[str, Any] = {"rules": {"runbook_base_url": RUNBOOK_BASE, "slos": [TEST_SLO]}}


# --- helpers shared with test_alerting.py ----------------------------------------------------------------------


def find_tool(name: str) -> str:
    """promtool or amtool: Debian's build via tests.support.debian (cached), else PATH.

    Missing: the test fails when CI is set (the tools must run there), and skips otherwise."""
    problem = ""
    try:
        from tests.support.debian import tools_bin_dir

        path = tools_bin_dir() / name
        if path.exists():
            return str(path)
        problem = f"{name} is not in {path.parent}"
    except Exception as error:  # no apt, no network, no dpkg: fall back to PATH
        problem = f"cannot unpack {name} from Debian packages ({str(error).splitlines()[0] if str(error) else error!r})"
    found = shutil.which(name)
    if found:
        return found
    message = f"{problem}, and it is not on PATH"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the tools tests must run")
    pytest.skip(message)


def render_stack(tmp_path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as stack.yaml, render and write the bundle; returns the bundle directory."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    stack = load_stack(stack_file, environ={})
    out = tmp_path / "build"
    write_bundle(render_bundle(stack), out)
    return out


def rule_files(bundle: Path) -> list[Path]:
    return sorted((bundle / RULES_DIR).glob("*.yml"))


def rule_groups(bundle: Path) -> dict[str, list[dict]]:
    """Rendered rule file name -> its groups."""
    return {path.name: (yaml.safe_load(path.read_text()) or {}).get("groups") or [] for path in rule_files(bundle)}


def alert_rules(bundle: Path) -> list[dict]:
    return [rule for groups in rule_groups(bundle).values() for group in groups for rule in group["rules"]
            if "alert" in rule]


def promtool_check(promtool: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "rules", "--lint=duplicate-rules", "--lint-fatal", *map(str, files)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def test_bundle(tmp_path_factory) -> Path:
    """The bundle the unit tests in tests/provisioning/rules/ are written for."""
    return render_stack(tmp_path_factory.mktemp("rules"), TEST_STACK)


# --- the rendered rules: structure (pure) ----------------------------------------------------------------------


def test_every_pack_renders_for_the_test_stack(test_bundle):
    names = {path.name for path in rule_files(test_bundle)}
    assert names == {"recording.rules.yml", "stack.rules.yml", "host.rules.yml", "http.rules.yml", "slo.rules.yml",
                     "verify.rules.yml"}


def test_every_alert_has_severity_service_and_annotations(test_bundle):
    rules = alert_rules(test_bundle)
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), name
        labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
        assert labels.get("severity") in SEVERITIES, name
        assert labels.get("service"), f"{name} has no service label"
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}/{name}.md", name
        # The description tells the value that fired (or looks a better one up).
        assert "$value" in annotations["description"] or "| query" in annotations["description"], name


def test_recording_rules_the_dashboards_use_exist(test_bundle):
    records = {rule["record"]: rule for groups in rule_groups(test_bundle).values() for group in groups
               for rule in group["rules"] if "record" in rule}
    expected = {
        "job:http_requests:rate5m", "job:http_requests_errors:rate5m", "job:http_requests_error_ratio:rate5m",
        "job:http_request_duration_seconds:p50_5m", "job:http_request_duration_seconds:p95_5m",
        "job:http_request_duration_seconds:p99_5m",
        "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30m", "slo:sli_error:ratio_rate1h",
        "slo:sli_error:ratio_rate2h", "slo:sli_error:ratio_rate6h", "slo:sli_error:ratio_rate1d",
        "slo:sli_error:ratio_rate3d", "slo:objective:ratio", "slo:error_budget_remaining:ratio",
        "instance:node_cpu_utilisation:rate5m", "instance:node_memory_utilisation:ratio",
        "instance:node_filesystem_avail:ratio",
    }
    assert expected <= set(records)
    for name, rule in records.items():
        if name.startswith("slo:"):
            assert rule["labels"] == {"slo": TEST_SLO["name"], "service": TEST_SLO["service"]}, name


def _unit_tests() -> dict[str, list[dict]]:
    """alertname -> every alert_rule_test entry for it, over all tests/rules files."""
    found: dict[str, list[dict]] = {}
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for entry in case.get("alert_rule_test") or []:
                found.setdefault(entry["alertname"], []).append(entry)
    return found


ALWAYS_FIRING = {"Heartbeat"}  # the dead man's switch: silent only when the alerting pipeline is broken


def test_every_alert_is_unit_tested_firing_and_silent(test_bundle):
    rendered = {rule["alert"] for rule in alert_rules(test_bundle)}
    tested = _unit_tests()
    assert rendered == set(tested), (
        f"alerts without unit tests: {sorted(rendered - set(tested))}; "
        f"tests for alerts that do not exist: {sorted(set(tested) - rendered)}")
    for name, entries in tested.items():
        firing = [alert for entry in entries for alert in entry.get("exp_alerts") or []]
        assert firing, f"{name}: no test shows it firing"
        if name not in ALWAYS_FIRING:
            assert any(not entry.get("exp_alerts") for entry in entries), f"{name}: no test shows it silent"
        for alert in firing:
            labels, annotations = alert.get("exp_labels") or {}, alert.get("exp_annotations") or {}
            assert labels.get("severity") in SEVERITIES and labels.get("service"), f"{name}: {labels}"
            assert set(annotations) == {"summary", "description", "runbook_url"}, f"{name}: {annotations}"
            assert annotations["runbook_url"] == f"{RUNBOOK_BASE}/{name}.md"


# The input metric names of each HTTP naming convention (README: "What the rules read").
CONVENTIONS = {
    "prometheus_client": ("http_requests_total", "http_request_duration_seconds_"),
    "opentelemetry": ("http_server_request_duration_seconds_", "http_server_duration_milliseconds_"),
}


def _convention(case: dict) -> str | None:
    """The one convention a test case's app series follow (None: none, or a mix)."""
    found = {name for name, prefixes in CONVENTIONS.items() for series in case.get("input_series") or []
             if series["series"].startswith(prefixes)}
    return found.pop() if len(found) == 1 else None


def test_http_and_slo_alerts_are_tested_in_both_conventions(test_bundle):
    """Every HTTP and SLO alert fires and stays silent on input in either convention, each case in one only."""
    groups = rule_groups(test_bundle)
    alerts = {rule["alert"] for name in ("http.rules.yml", "slo.rules.yml") for group in groups[name]
              for rule in group["rules"] if "alert" in rule}
    assert {"HTTPErrorRatioHigh", "HTTPLatencyP95High", "HTTPTrafficDrop", "SLOErrorBudgetBurn"} <= alerts
    seen: set[tuple[str, str, bool]] = set()
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            convention = _convention(case)
            for entry in case.get("alert_rule_test") or [] if convention else []:
                seen.add((entry["alertname"], convention, bool(entry.get("exp_alerts"))))
    missing = [(alert, convention, "firing" if firing else "silent") for alert in sorted(alerts)
               for convention in CONVENTIONS for firing in (True, False)
               if (alert, convention, firing) not in seen]
    assert not missing, f"no promtool case for: {missing}"


def test_each_severity_of_each_alert_is_unit_tested(test_bundle):
    rendered = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules(test_bundle)}
    tested = {(name, alert["exp_labels"]["severity"]) for name, entries in _unit_tests().items()
              for entry in entries for alert in entry.get("exp_alerts") or []}
    assert rendered == tested


# --- promtool --------------------------------------------------------------------------------------------------


@pytest.mark.tools
@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_bundle, test_file, tmp_path):
    promtool = find_tool("promtool")
    # Run on a copy of the rendered rules so the test files sit next to them (rule_files are relative).
    work = tmp_path / "rules"
    shutil.copytree(test_bundle / RULES_DIR, work)
    shutil.copy(test_file, work / test_file.name)
    result = subprocess.run([promtool, "test", "rules", test_file.name], cwd=work, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _custom_thresholds() -> dict[str, Any]:
    return {"rules": {
        "stack": {"target_down_for": "7m"},
        "host": {"cpu_warning": 65, "cpu_critical": 92.5, "memory_warning": 81, "memory_critical": 96,
                 "disk_free_critical": 7, "disk_fill_hours": 48, "load_per_core_warning": 3.5,
                 "major_page_faults_warning": 250, "disk_io_queue_warning": 4.5},
        "http": {"error_ratio_warning": 2.5, "error_ratio_critical": 12, "latency_p95_warning": "300ms",
                 "latency_p95_critical": "1500ms", "traffic_drop_percent": 30, "min_request_rate": 2},
        "slos": [{"name": "api", "service": "api", "objective": 0.995, "window": "28d"}],
    }}


CONFIGURATIONS: dict[str, tuple[dict[str, Any], set[str]]] = {
    # name: (stack.yaml, rule files expected)
    "defaults": ({}, {"recording", "stack", "host", "http"}),
    "defaults+slo": (TEST_STACK, {"recording", "stack", "host", "http", "slo"}),
    "stack-off": ({"rules": {"stack": {"enabled": False}}}, {"recording", "host", "http"}),
    "host-off": ({"rules": {"host": {"enabled": False}}}, {"recording", "stack", "http"}),
    "http-off": ({"rules": {"http": {"enabled": False}}}, {"recording", "stack", "host"}),
    "all-off": ({"rules": {"stack": {"enabled": False}, "host": {"enabled": False}, "http": {"enabled": False}}},
                {"recording"}),
    "metrics-preset": ({"preset": "metrics", "rules": {"slos": [TEST_SLO]}},
                       {"recording", "stack", "host", "http", "slo"}),
    "no-node-exporter": ({"services": {"node_exporter": {"enabled": False}}}, {"recording", "stack", "http"}),
    "custom-thresholds": (_custom_thresholds(), {"recording", "stack", "host", "http", "slo"}),
    "two-slos-one-service": ({"rules": {"slos": [TEST_SLO, {**TEST_SLO, "name": "checkout-strict",
                                                            "objective": 99.99}]}},
                             {"recording", "stack", "host", "http", "slo"}),
}


@pytest.mark.tools
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_promtool_check_rules(name, tmp_path):
    promtool = find_tool("promtool")
    data, expected = CONFIGURATIONS[name]
    bundle = render_stack(tmp_path, data)
    files = rule_files(bundle)
    # The verify pack (stackctl verify --deep's rule path) is there whatever the settings.
    assert {path.name.removesuffix(".rules.yml") for path in files} == expected | {"verify"}
    result = promtool_check(promtool, files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packs_follow_enabled_services(tmp_path):
    metrics = {rule["alert"] for rule in alert_rules(render_stack(tmp_path / "m", {"preset": "metrics"}))}
    full = {rule["alert"] for rule in alert_rules(render_stack(tmp_path / "f", {}))}
    collector_or_es = {"OtelCollectorRefusingTelemetry", "OtelCollectorExportFailing", "ElasticsearchClusterRed",
                       "ElasticsearchClusterYellow", "ElasticsearchUnreachable"}
    assert collector_or_es <= full
    assert not collector_or_es & metrics
    assert {"TargetDown", "GrafanaDown", "AlertmanagerNotificationsFailing", "HostCpuUsageHigh"} <= metrics
    no_am = {rule["alert"] for rule in alert_rules(render_stack(tmp_path / "n", {
        "services": {"alertmanager": {"enabled": False}, "grafana": {"enabled": False}}}))}
    assert not {"AlertmanagerNotificationsFailing", "PrometheusAlertmanagerUnreachable",
                "PrometheusNotificationsDropped", "GrafanaDown"} & no_am
    assert "TargetDown" in no_am


def test_no_prometheus_no_rules(tmp_path):
    bundle = render_stack(tmp_path, {"preset": "logs"})
    assert not (bundle / RULES_DIR).exists()


def _exprs(bundle: Path, alert: str) -> dict[str, str]:
    """severity -> expression of an alert (one rule per severity)."""
    return {rule["labels"]["severity"]: rule["expr"] for rule in alert_rules(bundle) if rule["alert"] == alert}


def test_custom_thresholds_appear_in_expressions(tmp_path):
    bundle = render_stack(tmp_path, _custom_thresholds())
    cpu, memory = _exprs(bundle, "HostCpuUsageHigh"), _exprs(bundle, "HostMemoryUsageHigh")
    assert "> 0.65" in cpu["warning"] and "> 0.925" in cpu["critical"]
    assert "> 0.81" in memory["warning"] and "> 0.96" in memory["critical"]
    assert "< 0.07" in _exprs(bundle, "HostDiskSpaceLow")["critical"]
    assert "172800" in _exprs(bundle, "HostDiskFillingUp")["warning"]
    assert "> 3.5" in _exprs(bundle, "HostLoadHigh")["warning"]
    assert "> 250" in _exprs(bundle, "HostMajorPageFaultsHigh")["warning"]
    assert "> 4.5" in _exprs(bundle, "HostDiskIOSaturation")["warning"]
    errors, latency = _exprs(bundle, "HTTPErrorRatioHigh"), _exprs(bundle, "HTTPLatencyP95High")
    assert "> 0.025" in errors["warning"] and "> 0.12" in errors["critical"]
    assert ">= 2" in errors["warning"]
    assert "> 0.3" in latency["warning"] and "> 1.5" in latency["critical"]
    assert "< 0.3 *" in _exprs(bundle, "HTTPTrafficDrop")["warning"]
    target_down = next(rule for rule in alert_rules(bundle) if rule["alert"] == "TargetDown")
    assert target_down["for"] == "7m"
    # SLO: 99.5% over 28d -> budget 0.005; burn rates 13.44, 5.6, 2.8, 0.9333.
    burn = _exprs(bundle, "SLOErrorBudgetBurn")
    assert "> 0.0672" in burn["critical"] and "> 0.028" in burn["critical"]
    assert "> 0.014" in burn["warning"] and "> 0.004666666667" in burn["warning"]
    slo_rules = {rule.get("record"): rule for group in rule_groups(bundle)["slo.rules.yml"] for rule in group["rules"]}
    assert slo_rules["slo:objective:ratio"]["expr"] == "vector(0.995)"
    assert "[28d]" in slo_rules["slo:error_budget_remaining:ratio"]["expr"]
    assert 'job=~"(.+/)?api"' in slo_rules["slo_code:http_requests:rate3d"]["expr"]


def test_rendering_is_deterministic(tmp_path):
    first = render_stack(tmp_path / "a", TEST_STACK)
    second = render_stack(tmp_path / "b", TEST_STACK)
    assert [p.read_bytes() for p in rule_files(first)] == [p.read_bytes() for p in rule_files(second)]


# --- the rules: model ------------------------------------------------------------------------------------------




def test_defaults():
    rules = load({}).rules
    assert (rules.stack.enabled, rules.host.enabled, rules.http.enabled, rules.slos) == (True, True, True, [])
    assert (rules.host.cpu_warning, rules.host.cpu_critical) == (70, 85)
    assert (rules.host.memory_warning, rules.host.memory_critical) == (75, 90)
    assert rules.host.disk_free_critical == 10
    assert (rules.host.major_page_faults_warning, rules.host.disk_io_queue_warning) == (500, 10)
    assert (rules.http.error_ratio_warning, rules.http.error_ratio_critical) == (1, 5)
    assert (rules.http.latency_p95_warning, rules.http.latency_p95_critical) == ("200ms", "500ms")
    assert rules.runbook_base_url == ""


@pytest.mark.parametrize("service, matcher", [
    ("checkout", 'job=~"(.+/)?checkout"'),  # service.name: the job of that name, or namespace/name
    ("shop/checkout", 'job=~"shop/checkout"'),  # with a namespace: that job only
    ("api.v2", 'job=~"(.+/)?api\\\\.v2"'),  # a dot is a dot
])
def test_slo_service_matches_jobs_of_either_convention(service, matcher):
    slo = load({"rules": {"slos": [{**TEST_SLO, "service": service}]}}).rules.slos[0]
    assert slo.job_matcher == matcher


@pytest.mark.parametrize("objective", [99.9, 0.999])
def test_slo_objective_as_percent_or_ratio(objective):
    slo = load({"rules": {"slos": [{**TEST_SLO, "objective": objective}]}}).rules.slos[0]
    assert slo.objective_literal == "0.999"
    assert slo.error_budget == "0.001"
    assert [(a.severity, a.long_window, a.short_window, a.factor, a.threshold) for a in slo.burn_alerts] == [
        ("critical", "1h", "5m", 14.4, "0.0144"), ("critical", "6h", "30m", 6.0, "0.006"),
        ("warning", "1d", "2h", 3.0, "0.003"), ("warning", "3d", "6h", 1.0, "0.001")]


def test_burn_rates_scale_with_the_window():
    slo = SLO(name="x", service="x", objective=99.0, window="28d")
    assert [a.factor for a in slo.burn_alerts] == [13.44, 5.6, 2.8, 0.933333]


@pytest.mark.parametrize("data, path, words", [
    ({"rules": {"slos": [{**TEST_SLO, "objective": 40}]}}, "rules.slos[0].objective", "between 50 and 99.999"),
    ({"rules": {"slos": [{**TEST_SLO, "objective": 99.9999}]}}, "rules.slos[0].objective", "between 50 and 99.999"),
    ({"rules": {"slos": [{**TEST_SLO, "objective": 1}]}}, "rules.slos[0].objective", "or a ratio"),
    ({"rules": {"slos": [{**TEST_SLO, "window": "month"}]}}, "rules.slos[0].window", "duration"),
    ({"rules": {"slos": [{**TEST_SLO, "window": "1d"}]}}, "rules.slos[0].window", "at least 3d"),
    ({"rules": {"slos": [{**TEST_SLO, "name": "has space"}]}}, "rules.slos[0].name", "letters, digits"),
    ({"rules": {"slos": [{**TEST_SLO, "service": 'a"b'}]}}, "rules.slos[0].service", "service name"),
    ({"rules": {"slos": [{**TEST_SLO, "service": "a/b/c"}]}}, "rules.slos[0].service", "namespace/name"),
    ({"rules": {"slos": [TEST_SLO, TEST_SLO]}}, "rules.slos[1].name", "used twice"),
    ({"rules": {"slos": [{"name": "x", "objective": 99}]}}, "rules.slos[0].service", "required"),
    ({"rules": {"slos": [{**TEST_SLO, "target": 99}]}}, "rules.slos[0].target", "unknown key"),
    ({"rules": {"host": {"cpu_warning": 90}}}, "rules.host.cpu_warning", "below cpu_critical"),
    ({"rules": {"host": {"memory_critical": 120}}}, "rules.host.memory_critical", "percentage"),
    ({"rules": {"host": {"disk_free_critical": 0}}}, "rules.host.disk_free_critical", "percentage"),
    ({"rules": {"host": {"cpu_warning": "high"}}}, "rules.host.cpu_warning", "must be a number"),
    ({"rules": {"host": {"major_page_faults_warning": -1}}}, "rules.host.major_page_faults_warning", "above 0"),
    ({"rules": {"host": {"disk_io_queue_warning": 0}}}, "rules.host.disk_io_queue_warning", "above 0"),
    ({"rules": {"http": {"error_ratio_critical": 0.5}}}, "rules.http.error_ratio_warning", "below error_ratio_critical"),
    ({"rules": {"http": {"latency_p95_warning": "fast"}}}, "rules.http.latency_p95_warning", "duration"),
    ({"rules": {"http": {"latency_p95_critical": "100ms"}}}, "rules.http.latency_p95_warning", "below"),
    ({"rules": {"http": {"traffic_drop_percent": 100}}}, "rules.http.traffic_drop_percent", "between 0 and 100"),
    ({"rules": {"stack": {"target_down_for": "soon"}}}, "rules.stack.target_down_for", "duration"),
    ({"rules": {"stack": {"enabled": "yes"}}}, "rules.stack.enabled", "true or false"),
    ({"rules": {"runbook_base_url": "wiki/runbooks"}}, "rules.runbook_base_url", "URL"),
    ({"rules": {"hosts": {}}}, "rules.hosts", "unknown key"),
])
def test_invalid_rules_settings_name_the_key(data, path, words):
    error = error_of(data)
    assert error.path == path, str(error)
    assert words in str(error)


def test_number_formatting():
    assert number(70 / 100) == "0.7"
    assert number(14.4 * (1 - 0.999)) == "0.0144"
    assert number(0.1 + 0.2) == "0.3"
