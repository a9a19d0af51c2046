"""Alert routing: the `alerting:` model (stackctl.core.alerting) and the rendered Alertmanager config and templates.

amtool (Debian's 0.25, the oldest Alertmanager the config must work on) checks rendered configs, proves where each
severity is routed, and renders the message templates. One test runs the real Alertmanager 0.25 on loopback to
prove the inhibition rules. Tools tests skip when the tool is missing and fail instead when CI is set.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from stackctl.core.user_secrets import user_secrets
from tests.provisioning.test_rules import find_tool, render_stack
from tests.support.models import error_of, load

AM_DIR = "configs/alertmanager"
AM_CONFIG = f"{AM_DIR}/alertmanager.yml"
TEMPLATE_GLOB = "templates/*.tmpl"  # relative to alertmanager.yml: the container's mount and the bundle alike

SLACK_SECRET = "https://hooks.slack.com/services/T0000/B0000/s3cr3tSLACKvalue"
PAGERDUTY_SECRET = "pd-routing-key-0123456789abcdef"
SMTP_SECRET = "smtp-password-Zq8Yx7"

ALL_RECEIVERS: list[dict[str, Any]] = [
    {"name": "pagerduty", "type": "pagerduty", "routing_key": {"from_env": "TEST_PD_ROUTING_KEY"}},
    {"name": "slack-critical", "type": "slack", "severities": ["critical"], "channel": "#ops-critical",
     "api_url": {"from_file": "secrets/slack-critical"}},
    {"name": "slack-warnings", "type": "slack", "severities": ["warning"], "channel": "#ops-warnings",
     "api_url": {"from_env": "TEST_SLACK_WARNINGS"}},
    {"name": "team-mail", "type": "email", "severities": ["warning"], "to": "oncall@example.com",
     "from": "alerts@example.com", "smarthost": "smtp.example.com:587", "username": "alerts@example.com",
     "password": {"from_env": "TEST_SMTP_PASSWORD"}, "require_tls": True},
    {"name": "audit", "type": "webhook", "severities": ["critical", "warning", "info"],
     "url": "https://hooks.example.com/alertmanager"},
]
ALL_STACK = {"preset": "metrics", "alerting": {"receivers": ALL_RECEIVERS}}




def receivers(*items: dict[str, Any]) -> dict[str, Any]:
    return {"alerting": {"receivers": list(items)}}


def am_config(bundle: Path) -> dict[str, Any]:
    return yaml.safe_load((bundle / AM_CONFIG).read_text())


def checkable_copy(bundle: Path, tmp_path: Path) -> Path:
    """The rendered config as amtool should check it: in place, so its relative template glob finds the bundle's
    templates and amtool parses them too."""
    config = bundle / AM_CONFIG
    assert TEMPLATE_GLOB in config.read_text()
    return config


# --- the model (pure) ------------------------------------------------------------------------------------------


def test_defaults_have_no_receivers():
    alerting = load({}).alerting
    assert alerting.receivers == []
    assert (alerting.group_wait, alerting.group_interval) == ("30s", "5m")
    assert (alerting.critical_repeat_interval, alerting.warning_repeat_interval) == ("1h", "12h")
    assert user_secrets(load({})) == {}


def test_all_receiver_types_load_with_default_severities():
    alerting = load(ALL_STACK).alerting
    by_name = {r.name: r for r in alerting.receivers}
    assert by_name["pagerduty"].severities == ["critical"]
    assert load(receivers({"name": "s", "type": "slack", "api_url": {"from_env": "X"}})).alerting.receivers[0] \
        .severities == ["critical", "warning"]
    assert [r.name for r in alerting.receivers_for("critical")] == ["pagerduty", "slack-critical", "audit"]
    assert [r.name for r in alerting.receivers_for("warning")] == ["slack-warnings", "team-mail", "audit"]
    assert [r.name for r in alerting.receivers_for("info")] == ["audit"]


def test_user_secrets_name_where_each_value_comes_from(tmp_path):
    secrets = user_secrets(load(ALL_STACK))
    assert list(secrets) == ["alertmanager_pagerduty_routing_key", "alertmanager_slack_critical_api_url",
                             "alertmanager_slack_warnings_api_url", "alertmanager_team_mail_password"]
    pd = secrets["alertmanager_pagerduty_routing_key"]
    assert (pd.from_env, pd.from_file, pd.setting) == ("TEST_PD_ROUTING_KEY", None, "alerting.receivers[0].routing_key")
    slack = secrets["alertmanager_slack_critical_api_url"]
    assert (slack.from_env, slack.from_file) == (None, "secrets/slack-critical")
    assert slack.path(tmp_path) == tmp_path / "secrets/slack-critical"
    assert pd.path(tmp_path) is None
    assert {secret.service for secret in secrets.values()} == {"alertmanager"}
    # Every name works as a file name and, upper-cased, as an environment variable name.
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in secrets)


@pytest.mark.parametrize("key, receiver", [
    ("api_url", {"name": "s", "type": "slack", "api_url": SLACK_SECRET}),
    ("routing_key", {"name": "p", "type": "pagerduty", "routing_key": PAGERDUTY_SECRET}),
    ("password", {"name": "m", "type": "email", "to": "a@example.com", "from": "b@example.com",
                  "smarthost": "smtp.example.com:25", "username": "u", "password": SMTP_SECRET}),
    ("routing_key", {"name": "p", "type": "pagerduty", "routing_key": 12345678}),
])
def test_a_literal_secret_is_refused_without_echoing_it(key, receiver):
    error = error_of(receivers(receiver))
    assert error.path == f"alerting.receivers[0].{key}"
    assert "{from_file: PATH} or {from_env: VARIABLE}" in str(error)
    for value in (SLACK_SECRET, PAGERDUTY_SECRET, SMTP_SECRET, "12345678"):
        assert value not in str(error)


@pytest.mark.parametrize("receiver, path, words", [
    ({"name": "s", "type": "slak", "api_url": {"from_env": "X"}}, "alerting.receivers[0].type",
     "must be one of slack, pagerduty, email, webhook"),
    ({"name": "s", "type": "slack", "api_url": {"from_env": "X", "from_file": "f"}}, "alerting.receivers[0].api_url",
     "exactly one of"),
    ({"name": "s", "type": "slack", "api_url": {}}, "alerting.receivers[0].api_url", "exactly one of"),
    ({"name": "s", "type": "slack", "api_url": {"value": "x"}}, "alerting.receivers[0].api_url.value", "unknown key"),
    ({"name": "s", "type": "slack", "api_url": {"from_env": "NOT-A-VAR"}}, "alerting.receivers[0].api_url.from_env",
     "NAME of an environment variable"),
    ({"name": "s", "type": "slack"}, "alerting.receivers[0].api_url", "required for a slack receiver"),
    ({"name": "p", "type": "pagerduty", "routing_key": {"from_env": "X"}, "channel": "#a"},
     "alerting.receivers[0].channel", "not a setting of a pagerduty receiver"),
    ({"name": "w", "type": "webhook", "url": {"from_env": "X"}}, "alerting.receivers[0].url", "url_file needs 0.26"),
    ({"name": "w", "type": "webhook", "url": "https://user:pw@hooks.example.com/x"}, "alerting.receivers[0].url",
     "must not contain a user name or password"),
    ({"name": "w", "type": "webhook", "url": "hooks.example.com"}, "alerting.receivers[0].url", "http:// or https://"),
    ({"name": "m", "type": "email", "to": "nobody", "from": "a@example.com", "smarthost": "smtp:25"},
     "alerting.receivers[0].to", "e-mail address"),
    ({"name": "m", "type": "email", "to": "a@example.com", "from": "a@example.com", "smarthost": "smtp"},
     "alerting.receivers[0].smarthost", "host:port"),
    ({"name": "m", "type": "email", "to": "a@example.com", "from": "a@example.com", "smarthost": "smtp:25",
      "password": {"from_env": "P"}}, "alerting.receivers[0].username", "required when a password is given"),
    ({"name": "default", "type": "webhook", "url": "http://x"}, "alerting.receivers[0].name", "reserved"),
    ({"name": "heartbeat", "type": "webhook", "url": "http://x"}, "alerting.receivers[0].name", "reserved"),
    ({"name": "Pager Duty", "type": "webhook", "url": "http://x"}, "alerting.receivers[0].name", "lowercase"),
    ({"name": "w", "type": "webhook", "url": "http://x", "severities": ["page"]},
     "alerting.receivers[0].severities[0]", "critical, warning, info"),
    ({"name": "w", "type": "webhook", "url": "http://x", "severities": []}, "alerting.receivers[0].severities",
     "at least one"),
    ({"name": "w", "type": "webhook", "url": "http://x", "token": "x"}, "alerting.receivers[0].token", "unknown key"),
])
def test_invalid_receivers_name_the_key(receiver, path, words):
    error = error_of(receivers(receiver))
    assert error.path == path, str(error)
    assert words in str(error)


def test_receiver_names_must_stay_distinct_as_secret_names():
    error = error_of(receivers({"name": "a-b", "type": "webhook", "url": "http://x"},
                               {"name": "a_b", "type": "webhook", "url": "http://y"}))
    assert error.path == "alerting.receivers[1].name"
    assert "already used" in str(error)


@pytest.mark.parametrize("heartbeat, path, words", [
    ({"url": "hc-ping.com/x"}, "alerting.heartbeat.url", "http:// or https://"),
    ({"url": "https://user:pw@hc-ping.com/x"}, "alerting.heartbeat.url", "must not contain a user name or password"),
    ({"interval": "30s"}, "alerting.heartbeat.interval", "at least 1m"),
    ({"interval": "often"}, "alerting.heartbeat.interval", "duration"),
    ({"period": "5m"}, "alerting.heartbeat.period", "unknown key"),
])
def test_invalid_heartbeat_names_the_key(heartbeat, path, words):
    error = error_of({"alerting": {"heartbeat": heartbeat}})
    assert error.path == path, str(error)
    assert words in str(error)


@pytest.mark.parametrize("key", ["group_wait", "group_interval", "critical_repeat_interval", "warning_repeat_interval"])
def test_intervals_are_durations(key):
    error = error_of({"alerting": {key: "often"}})
    assert error.path == f"alerting.{key}"


def test_unknown_alerting_key():
    error = error_of({"alerting": {"recievers": []}})
    assert error.path == "alerting.recievers"
    assert "receivers" in str(error)  # the hint


# --- the rendered config (pure) --------------------------------------------------------------------------------


def test_the_heartbeat_is_pinged_every_interval_at_its_url_only(tmp_path):
    config = am_config(render_stack(tmp_path, HEARTBEAT_STACK))
    route = config["route"]["routes"][0]  # first: nothing else sees the Heartbeat
    assert route["matchers"] == ['alertname="Heartbeat"'] and not route.get("continue")
    assert (route["receiver"], route["repeat_interval"]) == ("heartbeat", "2m")
    receiver = next(r for r in config["receivers"] if r["name"] == "heartbeat")
    assert receiver["webhook_configs"] == [{"url": HEARTBEAT_URL, "send_resolved": False}]
    without = am_config(render_stack(tmp_path / "without", {"preset": "metrics"}))
    assert without["route"]["routes"][0]["receiver"] == "null"
    assert "heartbeat" not in {r["name"] for r in without["receivers"]}


def test_no_receivers_render_a_working_default(tmp_path):
    config = am_config(render_stack(tmp_path, {"preset": "metrics"}))
    assert [r["name"] for r in config["receivers"]] == ["default", "null", "stackctl-verify"]
    assert all(set(r) == {"name"} for r in config["receivers"][:2])  # no integrations
    # verify --deep's webhook, on the port stack.yaml's verify section names, never sending resolved alerts.
    assert config["receivers"][2]["webhook_configs"] == [
        {"url": "http://host.docker.internal:19093/stackctl-verify", "send_resolved": False}]
    assert config["route"]["receiver"] == "default"
    assert config["route"]["group_by"] == ["alertname", "service", "cluster"]
    assert config["templates"] == [TEMPLATE_GLOB]


def test_secrets_are_file_references_and_values_never_rendered(tmp_path, monkeypatch):
    (tmp_path / "secrets").mkdir(parents=True)
    (tmp_path / "secrets" / "slack-critical").write_text(SLACK_SECRET)
    monkeypatch.setenv("TEST_PD_ROUTING_KEY", PAGERDUTY_SECRET)
    monkeypatch.setenv("TEST_SLACK_WARNINGS", SLACK_SECRET + "2")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_SECRET)
    bundle = render_stack(tmp_path, ALL_STACK)
    for path in bundle.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in (SLACK_SECRET, PAGERDUTY_SECRET, SMTP_SECRET):
                assert value.encode() not in data, f"{path} contains a secret value"
    receivers_ = {r["name"]: r for r in am_config(bundle)["receivers"]}
    assert receivers_["pagerduty"]["pagerduty_configs"][0]["routing_key_file"] == \
        "/run/secrets/alertmanager_pagerduty_routing_key"
    assert receivers_["slack-critical"]["slack_configs"][0]["api_url_file"] == \
        "/run/secrets/alertmanager_slack_critical_api_url"
    assert receivers_["slack-warnings"]["slack_configs"][0]["api_url_file"] == \
        "/run/secrets/alertmanager_slack_warnings_api_url"
    assert receivers_["team-mail"]["email_configs"][0]["auth_password_file"] == \
        "/run/secrets/alertmanager_team_mail_password"
    # Every secret file the config names is one user_secrets() declares, and the other way round.
    text = (bundle / AM_CONFIG).read_text()
    named = set(re.findall(r"/run/secrets/([a-z0-9_]+)", text))
    assert named == set(user_secrets(load(ALL_STACK)))
    # Inline secrets of any kind do not exist in the output.
    for key in ("api_url:", "routing_key:", "service_key:", "auth_password:", "url_file:"):
        assert not re.search(rf"^\s+{key}", text, re.M), key


def test_every_message_names_summary_description_service_and_runbook(tmp_path):
    template = (render_stack(tmp_path, ALL_STACK) / AM_DIR / "templates" / "stackctl.tmpl").read_text()
    for field in (".Annotations.summary", ".Annotations.description", ".Labels.service", ".Annotations.runbook_url"):
        assert field in template


# --- amtool ----------------------------------------------------------------------------------------------------


def amtool_check(amtool: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60)


CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "no-receivers": {"preset": "metrics"},
    "all-receivers": ALL_STACK,
    "slack-only": receivers(ALL_RECEIVERS[1]),
    "pagerduty-only": receivers(ALL_RECEIVERS[0]),
    "email-without-auth": receivers({"name": "mail", "type": "email", "to": "a@example.com, b@example.com",
                                     "from": "am@example.com", "smarthost": "mail.internal:25",
                                     "send_resolved": False}),
    "webhook-only": receivers(ALL_RECEIVERS[4]),
    "custom-intervals": {"alerting": {"group_wait": "10s", "group_interval": "2m",
                                      "critical_repeat_interval": "30m", "warning_repeat_interval": "1d",
                                      "receivers": ALL_RECEIVERS[:2]}},
}


@pytest.mark.tools
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_amtool_check_config(name, tmp_path):
    amtool = find_tool("amtool")
    bundle = render_stack(tmp_path / "stack", CONFIGURATIONS[name])
    # As rendered (what `stackctl validate` checks)...
    result = amtool_check(amtool, bundle / AM_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    # ...and with the templates found, so they are parsed too.
    result = amtool_check(amtool, checkable_copy(bundle, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.tools
def test_amtool_rejects_a_broken_template(tmp_path):
    """The check above really parses the templates."""
    amtool = find_tool("amtool")
    bundle = render_stack(tmp_path / "stack", {"preset": "metrics"})
    (bundle / AM_DIR / "templates" / "broken.tmpl").write_text('{{ define "x" }}{{ .Status ')
    result = amtool_check(amtool, checkable_copy(bundle, tmp_path))
    assert result.returncode != 0


def routes_test(amtool: str, config: Path, expected: list[str], labels: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", f"--verify.receivers={','.join(expected)}",
         *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=60)


# (labels, receivers expected) with every receiver configured.
ROUTES_ALL = [
    # verify --deep's synthetic alerts reach its webhook only, whatever their severity.
    ({"severity": "critical", "alertname": "StackctlVerify", "stackctl_verify_probe": "delivery"}, ["stackctl-verify"]),
    ({"severity": "info", "alertname": "StackctlVerifyRule", "stackctl_verify_probe": "delivery"}, ["stackctl-verify"]),
    ({"severity": "critical", "alertname": "TargetDown", "service": "checkout"}, ["pagerduty", "slack-critical", "audit"]),
    ({"severity": "critical", "alertname": "HostDiskSpaceLow", "service": "node-exporter"},
     ["pagerduty", "slack-critical", "audit"]),
    ({"severity": "warning", "alertname": "HTTPLatencyP95High", "service": "checkout"},
     ["slack-warnings", "team-mail", "audit"]),
    ({"severity": "info", "alertname": "SLOErrorBudgetExhausted", "service": "checkout"}, ["audit"]),
    ({"severity": "info", "alertname": "Heartbeat", "service": "heartbeat"}, ["null"]),  # no heartbeat URL
    # Unknown or missing severity: treated as a warning rather than lost.
    ({"severity": "page", "alertname": "Custom", "service": "x"}, ["slack-warnings", "team-mail", "audit"]),
    ({"alertname": "Custom", "service": "x"}, ["slack-warnings", "team-mail", "audit"]),
]
# Without the webhook that takes info, info goes to the null receiver; with no receivers, everything is visible only.
ROUTES_NO_INFO = [
    ({"severity": "critical", "alertname": "HTTPErrorRatioHigh", "service": "checkout"}, ["pagerduty", "slack-critical"]),
    ({"severity": "warning", "alertname": "HTTPErrorRatioHigh", "service": "checkout"}, ["slack-warnings", "team-mail"]),
    ({"severity": "info", "alertname": "SLOErrorBudgetExhausted", "service": "checkout"}, ["null"]),
]
# The always-firing Heartbeat reaches the heartbeat URL and nobody else: not even a receiver taking info.
HEARTBEAT_URL = "https://hc-ping.example.com/0f1e2d"
HEARTBEAT_STACK = {"preset": "metrics", "alerting": {"receivers": ALL_RECEIVERS,
                                                     "heartbeat": {"url": HEARTBEAT_URL, "interval": "2m"}}}
ROUTES_HEARTBEAT = [
    ({"severity": "info", "alertname": "Heartbeat", "service": "heartbeat"}, ["heartbeat"]),
    ({"severity": "info", "alertname": "SLOErrorBudgetExhausted", "service": "checkout"}, ["audit"]),
]
ROUTES_NONE = [
    ({"severity": "critical", "alertname": "TargetDown", "service": "checkout"}, ["default"]),
    ({"severity": "warning", "alertname": "HostLoadHigh", "service": "node-exporter"}, ["default"]),
    ({"severity": "info", "alertname": "SLOErrorBudgetExhausted", "service": "checkout"}, ["null"]),
]
ROUTES_CRITICAL_ONLY = [  # PagerDuty only: warnings are visible but notify nobody
    ({"severity": "critical", "alertname": "TargetDown", "service": "checkout"}, ["pagerduty"]),
    ({"severity": "warning", "alertname": "HostLoadHigh", "service": "node-exporter"}, ["default"]),
]


@pytest.mark.tools
@pytest.mark.parametrize("stack, cases", [
    (ALL_STACK, ROUTES_ALL),
    (receivers(*ALL_RECEIVERS[:4]), ROUTES_NO_INFO),
    ({"preset": "metrics"}, ROUTES_NONE),
    (receivers(ALL_RECEIVERS[0]), ROUTES_CRITICAL_ONLY),
    (HEARTBEAT_STACK, ROUTES_HEARTBEAT),
], ids=["all-receivers", "no-info-receiver", "no-receivers", "pagerduty-only", "heartbeat"])
def test_amtool_routes_each_severity(stack, cases, tmp_path):
    amtool = find_tool("amtool")
    config = render_stack(tmp_path, stack) / AM_CONFIG
    for labels, expected in cases:
        result = routes_test(amtool, config, expected, labels)
        assert result.returncode == 0, f"{labels}: expected {expected}, got {result.stdout.strip()}"
    # A wrong expectation fails, so the checks above mean something.
    labels, expected = cases[0]
    assert routes_test(amtool, config, expected + ["nobody"], labels).returncode != 0


@pytest.mark.tools
def test_repeat_intervals_by_severity(tmp_path):
    routes = am_config(render_stack(tmp_path, ALL_STACK))["route"]["routes"]
    by_matcher = {tuple(route["matchers"]): route for route in routes}
    assert by_matcher[('severity="critical"',)]["repeat_interval"] == "1h"
    assert by_matcher[('severity!~"critical|info"',)]["repeat_interval"] == "12h"
    assert by_matcher[('severity="info"',)]["receiver"] == "null"
    # Fan-out: every child but the last continues.
    critical = by_matcher[('severity="critical"',)]["routes"]
    assert [c.get("continue", False) for c in critical] == [True, True, False]


TEMPLATE_DATA = {
    "receiver": "slack-critical", "status": "firing", "externalURL": "http://127.0.0.1:9093",
    "groupLabels": {"alertname": "HTTPErrorRatioHigh", "service": "checkout"},
    "commonLabels": {"alertname": "HTTPErrorRatioHigh", "service": "checkout", "severity": "critical"},
    "commonAnnotations": {"runbook_url": "https://runbooks.example.com/HTTPErrorRatioHigh.md"},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HTTPErrorRatioHigh", "service": "checkout",
                                        "severity": "critical", "job": "checkout"},
         "annotations": {"summary": "checkout answers 7.5% of requests with 5xx",
                         "description": "7.5% of the HTTP requests to checkout fail with a 5xx status.",
                         "runbook_url": "https://runbooks.example.com/HTTPErrorRatioHigh.md"},
         "startsAt": "2024-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "1"},
        {"status": "resolved", "labels": {"alertname": "HTTPErrorRatioHigh", "service": "checkout",
                                          "severity": "critical", "job": "checkout", "instance": "app-2:8080"},
         "annotations": {"summary": "checkout answered 6% with 5xx", "description": "Recovered.",
                         "runbook_url": "https://runbooks.example.com/HTTPErrorRatioHigh.md"},
         "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2024-01-01T01:00:00Z", "generatorURL": "", "fingerprint": "2"},
    ],
}


@pytest.mark.tools
@pytest.mark.parametrize("name, kind", [
    ("stackctl.text", "text"), ("stackctl.slack.text", "text"), ("stackctl.email.html", "html"),
    ("stackctl.pagerduty.description", "text"),
])
def test_templates_render_with_amtool(name, kind, tmp_path):
    amtool = find_tool("amtool")
    bundle = render_stack(tmp_path / "stack", {"preset": "metrics"})
    data = tmp_path / "data.json"
    data.write_text(json.dumps(TEMPLATE_DATA))
    result = subprocess.run(
        [amtool, "template", "render", f"--template.glob={bundle / AM_DIR / 'templates' / '*.tmpl'}",
         f"--template.data={data}", f"--template.type={kind}", f"--template.text={{{{ template \"{name}\" . }}}}"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "checkout answers 7.5% of requests with 5xx" in out
    if name != "stackctl.pagerduty.description":  # one line; the runbook is in the PagerDuty details
        assert "https://runbooks.example.com/HTTPErrorRatioHigh.md" in out
        assert "7.5% of the HTTP requests to checkout fail with a 5xx status." in out
        assert "checkout" in out and "app-2:8080" in out  # service and instance
        assert "RESOLVED" in out or ":white_check_mark:" in out
    else:
        assert out.startswith("[FIRING:1] CRITICAL HTTPErrorRatioHigh (checkout): ")


@pytest.mark.tools
def test_title_and_severity_templates(tmp_path):
    amtool = find_tool("amtool")
    bundle = render_stack(tmp_path / "stack", {"preset": "metrics"})
    data = tmp_path / "data.json"
    data.write_text(json.dumps(TEMPLATE_DATA))

    def render(text: str) -> str:
        result = subprocess.run(
            [amtool, "template", "render", f"--template.glob={bundle / AM_DIR / 'templates' / '*.tmpl'}",
             f"--template.data={data}", f"--template.text={text}"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert render('{{ template "stackctl.title" . }}') == "[FIRING:1] CRITICAL HTTPErrorRatioHigh (checkout)"
    assert render('{{ template "stackctl.email.subject" . }}') == "[FIRING:1] CRITICAL HTTPErrorRatioHigh (checkout)"
    assert render('{{ template "stackctl.pagerduty.severity" . }}') == "critical"
    assert render('{{ template "stackctl.slack.color" . }}') == "danger"


# --- the real Alertmanager: inhibition -------------------------------------------------------------------------


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def _api(url: str, body: Any = None) -> Any:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read()
    return json.loads(text) if text else None


@contextmanager
def alertmanager_container(config_dir: Path) -> Iterator[str]:
    """local/alertmanager (Debian's 0.25, tests.support.images) with `config_dir` as /etc/alertmanager, as compose
    mounts it; yields the API base URL."""
    from tests.support import images

    if not images.docker_available():
        pytest.skip("no Docker engine reachable (docker info failed)")
    tag = images.ensure_image("alertmanager")
    container = _docker("create", "--label", "org.stackctl.test=alerting", "-p", "127.0.0.1::9093", tag).stdout.strip()
    try:
        _docker("cp", f"{config_dir}/.", f"{container}:/etc/alertmanager/")
        _docker("start", container)
        base = "http://" + _docker("port", container, "9093/tcp").stdout.split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    logs = _docker("logs", "--tail", "30", container, check=False)
                    pytest.fail(f"Alertmanager did not become ready:\n{logs.stdout}{logs.stderr}")
                time.sleep(0.3)
        yield base
    finally:
        _docker("rm", "-f", "-v", container, check=False)


@pytest.mark.docker
def test_inhibition_rules_in_a_real_alertmanager(tmp_path):
    bundle = render_stack(tmp_path / "stack", ALL_STACK)
    now = datetime.now(timezone.utc)
    alerts = {
        # A critical mutes the warning of the same alert and service, not another service's.
        "http-critical": {"alertname": "HTTPErrorRatioHigh", "severity": "critical", "service": "payments",
                          "job": "payments"},
        "http-warning": {"alertname": "HTTPErrorRatioHigh", "severity": "warning", "service": "payments",
                         "job": "payments"},
        "http-warning-other": {"alertname": "HTTPErrorRatioHigh", "severity": "warning", "service": "search",
                               "job": "search"},
        # A down target mutes its service's job-wide alerts (no instance label)...
        "target-down": {"alertname": "TargetDown", "severity": "critical", "service": "checkout", "job": "checkout",
                        "instance": "app:8080"},
        "slo-checkout": {"alertname": "SLOErrorBudgetBurn", "severity": "critical", "service": "checkout",
                         "slo": "checkout-availability"},
        # ...and the same instance's alerts, but not another instance's.
        "node-down": {"alertname": "TargetDown", "severity": "critical", "service": "node-exporter",
                      "job": "node-exporter", "instance": "node-b:9100"},
        "cpu-node-b": {"alertname": "HostCpuUsageHigh", "severity": "critical", "service": "node-exporter",
                       "job": "node-exporter", "instance": "node-b:9100"},
        "cpu-node-a": {"alertname": "HostCpuUsageHigh", "severity": "critical", "service": "node-exporter",
                       "job": "node-exporter", "instance": "node-a:9100"},
        # A full disk mutes the prediction for that filesystem only.
        "disk-low": {"alertname": "HostDiskSpaceLow", "severity": "critical", "service": "node-exporter",
                     "job": "node-exporter", "instance": "node-a:9100", "mountpoint": "/"},
        "disk-filling": {"alertname": "HostDiskFillingUp", "severity": "warning", "service": "node-exporter",
                         "job": "node-exporter", "instance": "node-a:9100", "mountpoint": "/"},
        "disk-filling-data": {"alertname": "HostDiskFillingUp", "severity": "warning", "service": "node-exporter",
                              "job": "node-exporter", "instance": "node-a:9100", "mountpoint": "/data"},
    }
    muted = {"http-warning", "slo-checkout", "cpu-node-b", "disk-filling"}
    with alertmanager_container(bundle / AM_DIR) as base:
        status = _api(f"{base}/api/v2/status")
        assert [r["name"] for r in yaml.safe_load(status["config"]["original"])["receivers"]] == \
            ["default", "null", "stackctl-verify"] + [r["name"] for r in ALL_RECEIVERS]
        _api(f"{base}/api/v2/alerts", [
            {"labels": {**labels, "test_id": key}, "annotations": {"summary": key},
             "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for key, labels in alerts.items()])
        deadline = time.monotonic() + 20
        while True:
            listed = {a["labels"]["test_id"]: a["status"] for a in _api(f"{base}/api/v2/alerts")}
            inhibited = {key for key, status in listed.items() if status["inhibitedBy"]}
            if len(listed) == len(alerts) and inhibited == muted:
                break
            if time.monotonic() > deadline:
                assert (len(listed), inhibited) == (len(alerts), muted), listed
            time.sleep(0.3)
