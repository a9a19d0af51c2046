"""Details of stack.yaml checking and of the catalog a user meets: the exact messages of refused remote-write
settings, the bounds of the remote-write queue, retention sizes, how wrong types are described, the healthcheck
commands and telemetry entries the catalog declares, and what a failed Swarm task says about itself."""

from __future__ import annotations

import datetime
from datetime import timedelta, timezone

import pytest
import yaml

from stackctl.core import catalog
from stackctl.core.config import load_config
from stackctl.core.errors import ConfigError
from stackctl.core.readiness import WAITING, SwarmServiceInfo, TaskInfo, evaluate_swarm
from stackctl.core.render import render_bundle
from stackctl.core.schema import closest
from stackctl.core.units import retention_size_bytes
from stackctl.core import yamltext
from tests.conftest import stack_from
from tests.support.stacks import make_stack

REMOTE = "services.prometheus.remote_write[0]"


def remote_write_error(target: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config({"preset": "metrics", "services": {"prometheus": {"remote_write": [target]}}}, "stack.yaml",
                    environ={})
    return caught.value


def config_error(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(data, "stack.yaml", environ={})
    return str(caught.value)


def queue_of(tmp_path, **queue) -> dict:
    """The queue_config Prometheus gets for one remote write with these queue settings."""
    stack = stack_from(yaml.safe_dump({"preset": "metrics", "services": {"prometheus": {"remote_write": [
        {"url": "https://mimir.example.com/api/v1/push", "queue": queue}]}}}), tmp_path)
    config = yamltext.load(render_bundle(stack)["configs/prometheus/prometheus.yml"])
    return config["remote_write"][0]["queue_config"]


# --- remote write ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, key, message", [
    ({"url": "ftp://x/write"}, "url",
     "must be an http:// or https:// URL without spaces, quotes or braces"),
    ({"url": "https://user:pw@x/write"}, "url",
     "must not contain a user name or password (user:password@host): give them as basic_auth, whose password "
     "stackctl hands over as a file"),
    ({"url": "https://x/w", "name": "Bad Name"}, "name", "must be lowercase letters, digits, - and _"),
    ({"url": "https://x/w", "headers": {"Bad Header": "x"}}, "headers.Bad Header", "is not an HTTP header name"),
    ({"url": "https://x/w", "headers": {"Authorization": "Bearer x"}}, "headers.Authorization",
     "is set by Prometheus itself; use basic_auth for credentials"),
    ({"url": "https://x/w", "queue": {"min_shards": 5, "max_shards": 2}}, "queue.min_shards",
     "must not be above max_shards"),
    ({"url": "https://x/w", "queue": {"capacity": 0}}, "queue.capacity", "must be between 1 and 1000000 (got 0)"),
    ({"url": "https://x/w", "queue": {"max_samples_per_send": 1_000_001}}, "queue.max_samples_per_send",
     "must be between 1 and 1000000 (got 1000001)"),
    ({"url": "https://x/w", "queue": {"min_backoff": "0s"}}, "queue.min_backoff", "must be at least 1ms (got 0s)"),
    ({"url": "https://x/w", "queue": {"max_backoff": "fast"}}, "queue.max_backoff",
     "must be a duration like 30s, 5m, 1h30m or 15d, units largest first (got 'fast')"),
])
def test_a_refused_remote_write_setting_says_exactly_what_is_wrong_at_its_key(target, key, message):
    """The whole message a user reads for each refused remote_write setting, at the setting's own key."""
    error = remote_write_error(target)
    assert error.path == f"{REMOTE}.{key}"
    assert str(error) == f"stack.yaml: {REMOTE}.{key}: {message}"


def test_a_plain_remote_write_password_is_refused_saying_prometheus_reads_it_from_a_file():
    """The refusal of a password written in stack.yaml names Prometheus as the service the file is handed to."""
    error = remote_write_error({"url": "https://x/w", "basic_auth": {"username": "u", "password": "plain-secret"}})
    assert str(error) == (
        f"stack.yaml: {REMOTE}.basic_auth.password: is text, but secrets are never written in stack.yaml: say where "
        "the value comes from with {from_file: PATH} or {from_env: VARIABLE} (stackctl hands the value to "
        "Prometheus as a file under /run/secrets)")


def test_the_queue_bounds_are_inclusive_and_equal_shard_limits_are_accepted(tmp_path):
    """1 and 1000000 are both allowed for every count, min_shards may equal max_shards, 1ms is the shortest
    backoff: all reach Prometheus' queue_config unchanged."""
    assert queue_of(tmp_path, capacity=1, min_shards=1, max_shards=1, max_samples_per_send=1_000_000,
                    min_backoff="1ms", batch_send_deadline="1ms", max_backoff="2s") == {
        "capacity": 1, "min_shards": 1, "max_shards": 1, "max_samples_per_send": 1_000_000, "min_backoff": "1ms",
        "batch_send_deadline": "1ms", "max_backoff": "2s"}
    assert queue_of(tmp_path, capacity=1_000_000, min_shards=7, max_shards=7) == {
        "capacity": 1_000_000, "min_shards": 7, "max_shards": 7}


# --- retention size and other values --------------------------------------------------------------------------

def test_retention_sizes_are_bytes_in_binary_units():
    assert [retention_size_bytes(text) for text in ("1B", "3KB", "512MB", "2GB")] == [
        1, 3 * 1024, 512 * 1024**2, 2 * 1024**3]
    with pytest.raises(ValueError, match="not a retention size: 10"):
        retention_size_bytes(10)


@pytest.mark.parametrize("size, message", [
    ("10 gigs", "must be a size like 512MB or 10GB (got '10 gigs')"),
    ("0MB", "must be above 0 (leave it empty for no size limit) (got 0MB)"),
])
def test_a_bad_retention_size_says_what_a_size_looks_like(size, message):
    assert config_error({"services": {"prometheus": {"retention_size": size}}}) == \
        f"stack.yaml: services.prometheus.retention_size: {message}"


@pytest.mark.parametrize("size", ["1B", "1GB"])
def test_the_smallest_retention_sizes_are_accepted(size):
    load_config({"services": {"prometheus": {"retention_size": size}}}, "stack.yaml", environ={})


@pytest.mark.parametrize("value, described", [
    ([1], "a list"),
    ({"a": 1}, "a mapping"),
    (datetime.date(2024, 1, 1), "datetime.date(2024, 1, 1) (date)"),
])
def test_a_value_of_the_wrong_type_is_described_by_what_it_is(value, described):
    assert config_error({"project": value}) == f"stack.yaml: project: must be a string, got {described}"


def test_an_unknown_key_gets_a_suggestion_only_when_one_is_close():
    assert config_error({"zzzqqq": 1}) == "stack.yaml: zzzqqq: unknown key"
    assert config_error({"projekt": "x"}) == "stack.yaml: projekt: unknown key (did you mean 'project'?)"
    assert closest("zzzqqq", ["project", "preset"]) == ""
    assert closest("prometheu", ["prometheus", "prometheus-x", "alertmanager"]) == "did you mean 'prometheus'?"


# --- catalog ----------------------------------------------------------------------------------------------------

def test_healthchecks_are_exact_wget_and_curl_command_lines():
    """Busybox images are probed with `wget -q --spider`, curl images with `curl -fsS -o /dev/null`, both as
    exec-form (CMD) healthchecks, and the rendered compose file carries them as they are."""
    spec = {s.key: s for s in catalog.CATALOG}
    assert spec["prometheus"].healthcheck.test == ("CMD", "wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready")
    assert spec["grafana"].healthcheck.test == ("CMD", "curl", "-fsS", "-o", "/dev/null",
                                                "http://127.0.0.1:3000/api/health")
    compose = yamltext.load(render_bundle(make_stack({"preset": "full"}))["compose.yaml"])
    assert compose["services"]["prometheus"]["healthcheck"]["test"] == [
        "CMD", "wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready"]
    assert compose["services"]["grafana"]["healthcheck"]["test"] == [
        "CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3000/api/health"]


def test_telemetry_enters_first_through_the_collectors_otlp_http_port_per_signal():
    checks = {check.name: check for spec in catalog.CATALOG for check in spec.verify}
    assert checks["metrics:path"].entries[0] == catalog.Entry("collector", "otlp_http", "/v1/metrics")
    assert checks["logs:otlp"].entries == (catalog.Entry("collector", "otlp_http", "/v1/logs"),)
    assert checks["traces:path"].entries == (catalog.Entry("collector", "otlp_http", "/v1/traces"),)


# --- Swarm task problems ----------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def failed_task(error: str = "", message: str = "") -> TaskInfo:
    return TaskInfo(node="node-1", state="failed", desired="shutdown", error=error, message=message,
                    since=NOW - timedelta(seconds=50), created=NOW - timedelta(seconds=55))


@pytest.mark.parametrize("error, message, said", [
    ("task: non-zero exit (1)", "started", "task: non-zero exit (1)"),
    ("", "preparing failed: no such image", "preparing failed: no such image"),
    ("", "", "failed"),
])
def test_a_failed_task_is_explained_by_its_error_else_its_message_else_its_state(error, message, said):
    stack = make_stack({"target": "swarm"})
    pending = TaskInfo(node="node-1", state="pending", desired="running", since=NOW, created=NOW)
    info = SwarmServiceInfo("prometheus", "replicated", 1, "prometheus:1", (failed_task(error, message), pending))
    status = evaluate_swarm(stack.get("prometheus"), info, None, NOW)
    assert (status.phase, status.detail) == (WAITING, f"last task ended: {said}")
