"""The Elasticsearch setup job and the log indices: the rendered script is valid bash for every preset, and run for
real (bash + curl on the host) against a FAKE Elasticsearch it makes the documented calls, with bodies Elasticsearch
accepts, and reaches the same state when run twice. The Kibana data view call is checked against a FAKE Kibana."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stackctl.core.config import Stack
from stackctl.core.secrets import missing_values
from stackctl.shells.stackfile import load_stack
from stackctl.core.render import render_bundle
from stackctl.shells.state import SecretStore
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.kibana import FakeKibana

pytestmark = pytest.mark.contract

SETUP_DIR = "configs/elasticsearch_setup"
STACKS = {
    "logs": "version: 1\npreset: logs\n",
    "full": "version: 1\npreset: full\n",
    "traces+es": "version: 1\npreset: traces\nservices:\n  elasticsearch:\n    enabled: true\n",
    "es-only": "version: 1\npreset: metrics\nservices:\n  grafana:\n    enabled: false\n  elasticsearch:\n"
               "    enabled: true\n",
    "es+kibana": "version: 1\npreset: metrics\nservices:\n  elasticsearch:\n    enabled: true\n  kibana:\n"
                 "    enabled: true\n",
}


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")


def make_stack(directory: Path, text: str) -> Stack:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stack.yaml").write_text(text)
    return load_stack(directory / "stack.yaml", environ={})


def write_setup(stack: Stack, out: Path) -> Path:
    """The setup job's files as rendered into the bundle; returns the script."""
    for rel, data in render_bundle(stack).items():
        if rel.startswith(SETUP_DIR + "/"):
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return out / SETUP_DIR / "setup.sh"


def run_setup(script: Path, es_url: str, secrets_dir: Path, attempts: int = 3) -> subprocess.CompletedProcess:
    env = {**os.environ, "ES_URL": es_url, "SECRETS_DIR": str(secrets_dir), "SETUP_WAIT_ATTEMPTS": str(attempts)}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_rendered_script_is_valid_bash(tmp_path: Path, name: str):
    needs("bash")
    script = write_setup(make_stack(tmp_path / name, STACKS[name]), tmp_path / name / "build")
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert script.read_text().startswith("#!/usr/bin/env bash\n")


def test_no_setup_job_without_elasticsearch(tmp_path: Path):
    plan = render_bundle(make_stack(tmp_path / "m", "version: 1\npreset: metrics\n"))
    assert not any(rel.startswith(SETUP_DIR) for rel in plan)


def ready_to_run(directory: Path, text: str):
    """A stack with its secrets generated and its setup script rendered into directory/build."""
    needs("bash", "curl")
    stack = make_stack(directory, text)
    store = SecretStore.for_stack(stack)
    store.write_all(missing_values(stack, store.exists))
    return stack, store, write_setup(stack, directory / "build")


@pytest.fixture
def full(tmp_path: Path):
    """A rendered `full` stack with its secrets, and a fake Elasticsearch seeded with its elastic password."""
    stack, store, script = ready_to_run(tmp_path / "full", STACKS["full"])
    with FakeElasticsearch(store.read("elastic_password")) as es:
        yield stack, store, script, es


def test_setup_makes_the_documented_calls_as_elastic(full):
    stack, store, script, es = full
    result = run_setup(script, es.url, store.root)
    assert result.returncode == 0, result.stderr
    assert es.unhandled == []
    assert all(r.auth == ("elastic", store.read("elastic_password")) for r in es.requests)
    calls = [(r.method, r.path) for r in es.requests]
    assert calls == [
        ("GET", "/_security/_authenticate"),
        ("POST", "/_security/user/kibana_system/_password"),
        ("PUT", "/_security/role/stackctl_log_writer"),
        ("PUT", "/_security/user/logstash_writer"),
        ("PUT", "/_security/user/collector_writer"),
        ("PUT", "/_security/role/stackctl_log_reader"),
        ("PUT", "/_security/user/grafana_reader"),
        ("PUT", "/_security/role/stackctl_monitor"),
        ("PUT", "/_security/user/elasticsearch_exporter"),
        ("PUT", "/_ilm/policy/stackctl-logs"),
        ("PUT", "/_index_template/stackctl-logs"),
        ("PUT", "/_component_template/logs@custom"),
        ("PUT", "/_component_template/logs-otel@custom"),
    ]
    # Users carry the values of their secret files.
    for user, secret in (("kibana_system", "kibana_system_password"), ("logstash_writer", "logstash_writer_password"),
                         ("collector_writer", "collector_writer_password"),
                         ("grafana_reader", "grafana_reader_password")):
        assert es.password_of(user) == store.read(secret)
    assert es.users["logstash_writer"]["roles"] == ["stackctl_log_writer"]
    assert es.users["grafana_reader"]["roles"] == ["stackctl_log_reader"]
    # No value in the job's output.
    for name in ("elastic_password", "kibana_system_password", "logstash_writer_password"):
        assert store.read(name) not in result.stdout + result.stderr


def test_lifecycle_policy_and_index_template(full):
    stack, store, script, es = full
    assert run_setup(script, es.url, store.root).returncode == 0
    policy = es.policies["stackctl-logs"]["policy"]
    rollover = policy["phases"]["hot"]["actions"]["rollover"]
    assert rollover == {"max_age": "1d", "max_primary_shard_size": "10gb"}
    assert policy["phases"]["delete"] == {"min_age": "7d", "actions": {"delete": {}}}

    [put] = es.calls("PUT", "/_index_template/")
    template = put.json  # the body parsed as JSON
    assert template["index_patterns"] == ["logs-stackctl-*"]
    assert template["data_stream"] == {}
    assert template["priority"] > 100, "must win over the built-in logs template"
    assert template["template"]["settings"]["index.lifecycle.name"] == "stackctl-logs"
    props = template["template"]["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date"}
    assert props["message"] == {"type": "text"}
    assert props["trace_id"] == {"type": "keyword"} and props["span_id"] == {"type": "keyword"}
    assert props["log"]["properties"]["level"] == {"type": "keyword"}
    assert props["service"]["properties"]["name"] == {"type": "keyword"}
    assert props["host"]["properties"]["name"] == {"type": "keyword"}
    [dynamic] = template["template"]["mappings"]["dynamic_templates"]
    assert dynamic["strings_as_keyword"]["match_mapping_type"] == "string"
    assert dynamic["strings_as_keyword"]["mapping"]["type"] == "keyword"


def test_running_twice_reaches_the_same_state(full):
    stack, store, script, es = full
    assert run_setup(script, es.url, store.root).returncode == 0
    first = es.state()
    second_run = run_setup(script, es.url, store.root)
    assert second_run.returncode == 0, second_run.stderr
    assert es.state() == first
    assert es.policies["stackctl-logs"]["version"] == 1, "an unchanged policy is not a new version"


def test_a_wrong_elastic_password_fails_without_printing_it(full):
    stack, store, script, es = full
    es.users["elastic"]["password"] = "something-else"
    result = run_setup(script, es.url, store.root, attempts=1)
    assert result.returncode != 0
    assert "did not accept the elastic user" in result.stderr
    assert store.read("elastic_password") not in result.stdout + result.stderr
    assert [(r.method, r.path) for r in es.requests] == [("GET", "/_security/_authenticate")]


def test_a_refused_call_stops_the_job(full):
    stack, store, script, es = full
    es.fail("PUT", "/_index_template/stackctl-logs", 400)
    result = run_setup(script, es.url, store.root)
    assert result.returncode != 0
    assert "PUT /_index_template/stackctl-logs answered 400" in result.stderr


def test_only_the_enabled_services_users(tmp_path: Path):
    stack, store, script = ready_to_run(tmp_path / "ek", STACKS["es+kibana"])
    with FakeElasticsearch(store.read("elastic_password")) as es:
        result = run_setup(script, es.url, store.root)
        assert result.returncode == 0, result.stderr
        paths = [r.path for r in es.requests]
    # Grafana is on in the metrics preset, so its reader exists; no writers without Logstash or the collector.
    assert "/_security/user/kibana_system/_password" in paths
    assert "/_security/user/grafana_reader" in paths
    assert "/_security/role/stackctl_log_writer" not in paths
    assert paths[-4:] == ["/_ilm/policy/stackctl-logs", "/_index_template/stackctl-logs",
                          "/_component_template/logs@custom", "/_component_template/logs-otel@custom"]


def test_retention_follows_the_setting_when_there_is_one(tmp_path: Path):
    stack = make_stack(tmp_path / "r", STACKS["logs"])
    # `services.elasticsearch.log_retention` is read when the config model has it; "7d" otherwise.
    object.__setattr__(stack.services["elasticsearch"].settings, "log_retention", "30d")
    policy = render_bundle(stack)[f"{SETUP_DIR}/ilm-policy.json"]
    import json

    assert json.loads(policy)["policy"]["phases"]["delete"]["min_age"] == "30d"
