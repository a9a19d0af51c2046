"""Property: for every string-valued setting of stack.yaml, any value the model accepts renders a bundle that the
real validators accept (docker compose config, promtool, amtool) and through which no secret leaks, not even via
Compose's own ${...} interpolation; any other value is refused with one line naming the key, exit code 2.

The values hypothesis tries include newlines, quotes, `$` and `${...}` naming stackctl's secret variables, `{{`,
`[[`, `#`, emoji, NUL and very long strings. CI runs a fixed set of 120 examples; STACKTEST_PROPERTY_EXAMPLES=N runs N
random ones (800 passed when this was written)."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackctl.core.checks import FAILED, structural_checks
from stackctl.core.config import load_config, resolve
from stackctl.core.errors import ConfigError
from stackctl.core.render import render_bundle
from stackctl.core.secrets import env_name, generate_value, required_secrets
from stackctl.shells.compose import find_compose
from stackctl.shells.fs import staging_dir, template_cache, write_tree

pytestmark = pytest.mark.tools

# A stack where every string-valued setting exists: one scrape target, one SLO, one receiver of each kind.
BASE = {
    "scrape_targets": [{"job": "app", "targets": ["app:8080"], "labels": {"team": "web"}}],
    "rules": {"slos": [{"name": "checkout-availability", "service": "checkout", "objective": 99.9}]},
    "alerting": {"receivers": [
        {"name": "slack", "type": "slack", "channel": "#ops", "api_url": {"from_env": "SLACK_URL"}},
        {"name": "mail", "type": "email", "to": "oncall@example.com", "from": "am@example.com",
         "smarthost": "smtp.example.com:587", "username": "am", "password": {"from_env": "SMTP"}},
        {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/am"},
    ]},
}
SETTINGS = [
    ("project",), ("bind_address",), ("registry_mirror",),
    ("services", "prometheus", "image"), ("services", "prometheus", "retention"),
    ("services", "prometheus", "retention_size"), ("services", "prometheus", "scrape_interval"),
    ("services", "grafana", "admin_user"), ("services", "grafana", "plugins", 0), ("services", "grafana", "memory"),
    ("services", "elasticsearch", "cluster_name"), ("services", "elasticsearch", "extra_java_opts"),
    ("services", "elasticsearch", "log_retention"), ("services", "elasticsearch", "heap"),
    ("services", "logstash", "heap"),
    ("scrape_targets", 0, "job"), ("scrape_targets", 0, "targets", 0), ("scrape_targets", 0, "metrics_path"),
    ("scrape_targets", 0, "scheme"), ("scrape_targets", 0, "labels", "team"),
    ("rules", "runbook_base_url"), ("rules", "slos", 0, "name"), ("rules", "slos", 0, "service"),
    ("rules", "http", "latency_p95_warning"), ("alerting", "group_wait"),
    ("alerting", "receivers", 0, "name"), ("alerting", "receivers", 0, "channel"),
    ("alerting", "receivers", 1, "to"), ("alerting", "receivers", 1, "from"), ("alerting", "receivers", 1, "username"),
    ("alerting", "receivers", 1, "smarthost"), ("alerting", "receivers", 2, "url"),
]
TRICKY = ["x-${STACK_SECRET_GRAFANA_ADMIN_PASSWORD}", "$STACK_SECRET_ELASTIC_PASSWORD", "$$", "a\nb", "a\rb",
          "{{ .CommonLabels.x }}", "[[ x ]]", "[% if %]", "# comment", "'", '"', "it's", "😀", "emoji-😀-x",
          "a\x00b", "x" * 5000, "", " ", "-", "null", "true", "1e3", "*alias", "&anchor", "key: value", "a:b",
          "http://x/$1", "#ops-{{ .X }}", "\\", "\t", "\u2028", "\ufeff", "prom/prometheus:v3.14.0", "30s", "1h30m",
          "host.docker.internal:9100", "/metrics?a=b&c=%20", "https://wiki.example.com/runbooks"]
CHARS = st.sampled_from(list("aZ09-_.:/@#$%{}[]'\"\\ \t\n!?&*|>=~,;()^`+") + ["😀", "\x00", "\u0085", "é"])
VALUES = st.one_of(st.sampled_from(TRICKY), st.text(CHARS, max_size=40),
                   st.builds(lambda s, n: s * n, st.sampled_from(["a", "$", "{"]), st.integers(1000, 6000)))

# A value each setting accepts, for hypothesis to decorate with hostile prefixes and suffixes: most decorated values
# must be refused, and the ones accepted must still render a bundle every tool accepts.
VALID = {
    "project": "shop", "bind_address": "127.0.0.1", "registry_mirror": "mirror.example.com:5000",
    "image": "prom/prometheus:v3.14.0", "retention": "15d", "retention_size": "10GB", "scrape_interval": "15s",
    "admin_user": "admin", "plugins": "grafana-clock-panel", "memory": "512m", "cluster_name": "stackctl",
    "extra_java_opts": "-XX:UseSVE=0", "log_retention": "7d", "heap": "256m", "job": "app", "targets": "app:8080",
    "metrics_path": "/metrics", "scheme": "https", "team": "web", "runbook_base_url": "https://wiki.example.com/rb",
    "name": "checkout", "service": "checkout", "latency_p95_warning": "200ms", "group_wait": "30s", "channel": "#ops",
    "to": "oncall@example.com", "from": "am@example.com", "username": "am", "smarthost": "smtp.example.com:587",
    "url": "https://hooks.example.com/am",
}
NOISE = st.one_of(st.just(""), st.sampled_from(["$", "${STACK_SECRET_ELASTIC_PASSWORD}", "{{", "}}", "[[", "'",
                                                "\"", "#", " ", "\n", "\x00", "😀", ":", "@", "%", "x" * 300]),
                  st.text(CHARS, max_size=5))


@st.composite
def cases(draw) -> tuple[tuple, str]:
    path = draw(st.sampled_from(SETTINGS))
    key = next(part for part in reversed(path) if isinstance(part, str))
    if draw(st.booleans()):
        return path, draw(VALUES)
    return path, draw(NOISE) + VALID[key] + draw(NOISE)


FAKE_ENV = {"SLACK_URL": "https://hooks.slack.example/T0/B0/slack-secret-value", "SMTP": "smtp-secret-value-123"}
CACHE = template_cache()


def with_setting(path: tuple, value: str) -> dict:
    """BASE with the setting at `path` (keys and list indexes) set to `value`."""
    data = copy.deepcopy(BASE)
    node: dict | list = data
    for part, following in zip(path[:-1], path[1:]):
        node = node[part] if isinstance(node, list) else node.setdefault(part, [] if isinstance(following, int) else {})
    if isinstance(node, list) and len(node) <= path[-1]:
        node.append(value)
    else:
        node[path[-1]] = value
    return data


def run(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def check_accepted(stack, tmp_path) -> None:
    """The bundle passes every real validator, and no secret reaches it or Compose's view of it."""
    plan = render_bundle(stack, CACHE)
    secrets = {name: generate_value("password") for name in required_secrets(stack)}
    secrets.update({"alertmanager_slack_api_url": FAKE_ENV["SLACK_URL"], "alertmanager_mail_password": FAKE_ENV["SMTP"]})
    failed = [c for c in structural_checks(stack, plan, {k: v.encode() for k, v in secrets.items()})
              if c.status == FAILED]
    assert not failed, failed
    with staging_dir() as bundle:
        write_tree(plan, bundle)
        tool = find_compose()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("STACK")},
               **{env_name(name): value for name, value in secrets.items() if name in required_secrets(stack)}}
        compose = run([*tool.argv, "--project-directory", str(bundle), "--file", str(bundle / "compose.yaml"),
                       "config"], env)
        assert compose.returncode == 0, compose.stderr
        for value in secrets.values():
            assert value not in compose.stdout, "a secret reached the compose file through interpolation"
        checks = [["promtool", "check", "config", str(bundle / "configs/prometheus/prometheus.yml")],
                  ["promtool", "check", "rules", *map(str, sorted((bundle / "configs/prometheus/rules").glob("*.yml")))],
                  ["amtool", "check-config", str(bundle / "configs/alertmanager/alertmanager.yml")]]
        for argv in checks:
            result = run(argv)
            assert result.returncode == 0, f"{' '.join(argv[:3])}:\n{result.stdout}{result.stderr}"


@settings(max_examples=int(os.environ.get("STACKTEST_PROPERTY_EXAMPLES", "120")), deadline=None,
          derandomize=os.environ.get("STACKTEST_PROPERTY_EXAMPLES") is None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
@example(case=(("services", "elasticsearch", "cluster_name"), "x-${STACK_SECRET_GRAFANA_ADMIN_PASSWORD}"))
@example(case=(("alerting", "receivers", 0, "channel"), "#ops-{{ .CommonLabels.team }}"))
@example(case=(("rules", "runbook_base_url"), "https://wiki.example.com/it's"))
@example(case=(("scrape_targets", 0, "metrics_path"), "/metrics: {a: [b]} # c"))
@example(case=(("scrape_targets", 0, "labels", "team"), "web 😀 ${STACK_SECRET_X} {{ x }}"))
@example(case=(("services", "prometheus", "image"), "prom/prometheus:v3.14.0$"))
def test_any_accepted_value_renders_a_valid_bundle_and_anything_else_is_refused(tools, tmp_path, case):
    path, value = case
    data = with_setting(path, value)
    try:
        stack = resolve(load_config(data, "stack.yaml", environ={}), tmp_path / "stack.yaml")
    except ConfigError as error:
        assert error.exit_code == 2 and "\n" not in str(error) and not error.details
        assert error.path.split(".")[0].split("[")[0] == path[0], (error.path, path)
        return
    check_accepted(stack, tmp_path)
