"""The secrets store's rotation side files, the inventory `secrets list` shows, `secrets show`, and the pure part of
rotation (which secrets rotate, through which service, recreating whom). No Docker, no network."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from stackctl.core.config import Stack
from stackctl.core.endpoints import host_url
from stackctl.core.errors import StackError
from stackctl.core.secrets import missing_values
from stackctl.ops import rotate as rotation
from stackctl.ops.secrets import inventory
from stackctl.shells.stackfile import load_stack
from stackctl.shells.state import NEXT_SUFFIX, PREVIOUS_SUFFIX, SecretStore
from tests.conftest import stored_secrets


def make_stack(directory: Path, text: str = "version: 1\npreset: full\n") -> Stack:
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / "stack.yaml"
    file.write_text(text)
    return load_stack(file, environ={})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Two receivers whose credentials the user supplies: one from a file, one from an environment variable.
RECEIVERS = ("alerting:\n  receivers:\n"
             "    - name: slack\n      type: slack\n      api_url: {from_file: slack-url}\n"
             "    - name: pager\n      type: pagerduty\n      routing_key: {from_env: PD_KEY}\n")
SLACK, PAGER = "alertmanager_slack_api_url", "alertmanager_pager_routing_key"


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return make_stack(tmp_path / "proj")


# --- the store -----------------------------------------------------------------------------------------------------


def test_side_files_are_private_and_removable(stack: Stack):
    store = SecretStore.for_stack(stack)
    assert store.read_side("elastic_password", NEXT_SUFFIX) is None
    store.write_side("elastic_password", NEXT_SUFFIX, "next-value")
    store.write_side("elastic_password", PREVIOUS_SUFFIX, "old-value")
    assert store.read_side("elastic_password", NEXT_SUFFIX) == "next-value"
    for suffix in (NEXT_SUFFIX, PREVIOUS_SUFFIX):
        assert mode(store.side_path("elastic_password", suffix)) == 0o600
    assert mode(store.root) == 0o700
    store.remove_side("elastic_password", NEXT_SUFFIX)
    store.remove_side("elastic_password", NEXT_SUFFIX)  # removing twice is fine
    assert store.read_side("elastic_password", NEXT_SUFFIX) is None
    assert not store.exists("elastic_password"), "side files are not the secret"


def test_mode_of_missing_and_present_secrets(stack: Stack):
    store = SecretStore.for_stack(stack)
    assert store.mode("grafana_admin_password") is None
    store.write_all(missing_values(stack, store.exists))
    assert store.mode("grafana_admin_password") == 0o600


# --- the inventory -------------------------------------------------------------------------------------------------


def test_inventory_lists_what_the_stack_uses_with_its_consumers(stack: Stack):
    store = SecretStore.for_stack(stack)
    before = {e.name: e for e in inventory(stack, store)}
    assert not any(e.present for e in before.values())
    store.write_all(missing_values(stack, store.exists))
    entries = {e.name: e for e in inventory(stack, store)}
    assert set(entries) == {"collector_writer_password", "elastic_password", "elasticsearch_exporter_password",
                            "grafana_admin_password", "grafana_reader_password", "kibana_encryption_key",
                            "kibana_system_password", "logstash_writer_password"}
    assert entries["elastic_password"].used_by == ("elasticsearch", "elasticsearch-setup")
    assert entries["logstash_writer_password"].used_by == ("elasticsearch-setup", "logstash")
    assert entries["kibana_encryption_key"].kind == "key32"
    assert all(e.present and e.origin == "generated" and e.mode == "0600" for e in entries.values())
    assert all(0 <= e.age_seconds < 60 for e in entries.values())


def test_inventory_of_a_metrics_stack_has_only_grafana(tmp_path: Path):
    stack = make_stack(tmp_path / "m", "version: 1\npreset: metrics\n")
    assert [e.name for e in inventory(stack, SecretStore.for_stack(stack))] == ["grafana_admin_password"]


def test_inventory_includes_user_supplied_secrets_without_reading_them(tmp_path: Path):
    stack = make_stack(tmp_path / "r", "version: 1\npreset: metrics\n" + RECEIVERS)
    url_file = stack.file.parent / "slack-url"
    url_file.write_text("https://hooks.example/very-secret\n")
    entries = {e.name: e for e in inventory(stack, SecretStore.for_stack(stack), environ={"PD_KEY": "x"})}
    slack, pagerduty = entries[SLACK], entries[PAGER]
    assert slack.origin == "user" and slack.present and slack.source == f"file {url_file}"
    assert slack.used_by == ("alertmanager",)
    assert pagerduty.present and pagerduty.source == "environment variable PD_KEY" and pagerduty.age_seconds is None
    assert "very-secret" not in json.dumps([e.to_json() for e in entries.values()])


# --- the CLI -------------------------------------------------------------------------------------------------------


def test_list_json_shape_and_no_values(stack: Stack, cli):
    store = stored_secrets(stack)
    result = cli("-f", stack.file, "secrets", "list", "--json")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"state_dir", "secrets"} and data["state_dir"] == str(store.root)
    keys = {"name", "origin", "kind", "used_by", "present", "age_seconds", "source", "mode", "rotatable",
            "not_rotated_because"}
    assert all(set(row) == keys for row in data["secrets"])
    rows = {row["name"]: row for row in data["secrets"]}
    assert rows["elastic_password"]["used_by"] == ["elasticsearch", "elasticsearch-setup"]
    assert rows["elastic_password"]["rotatable"] is True and rows["elastic_password"]["present"] is True
    assert rows["kibana_encryption_key"]["rotatable"] is False
    assert "decryptionOnlyKeys" in rows["kibana_encryption_key"]["not_rotated_because"]
    for row in data["secrets"]:
        assert store.read(row["name"]) not in result.output


def test_list_table_names_missing_secrets(stack: Stack, cli):
    result = cli("-f", stack.file, "secrets", "list")
    assert result.code == 0, result.output
    assert "missing" in result.stdout  # the table may wrap names in a narrow terminal
    assert "grafana_admin_password" in result.stderr and "stackctl render" in result.stderr


def test_show_prints_the_value_alone(stack: Stack, cli):
    store = stored_secrets(stack)
    result = cli("-f", stack.file, "secrets", "show", "grafana_admin_password")
    assert result.code == 0
    assert result.stdout == store.read("grafana_admin_password") + "\n"


def test_show_unknown_name_suggests_the_closest(stack: Stack, cli):
    result = cli("-f", stack.file, "secrets", "show", "grafana_admin_pasword")
    assert result.code == 2 and result.stdout == ""
    assert "unknown secret 'grafana_admin_pasword'" in result.stderr
    assert "did you mean 'grafana_admin_password'" in result.stderr


def test_show_of_a_missing_value_says_how_to_make_it(stack: Stack, cli):
    result = cli("-f", stack.file, "secrets", "show", "elastic_password")
    assert result.code == 2 and "stackctl render" in result.stderr


def test_show_of_a_secret_this_stack_does_not_use(tmp_path: Path, cli):
    stack = make_stack(tmp_path / "m", "version: 1\npreset: metrics\n")
    result = cli("-f", stack.file, "secrets", "show", "elastic_password")
    assert result.code == 2 and "not used by any service enabled" in result.stderr


def test_show_refuses_user_supplied_secrets(tmp_path: Path, cli):
    stack = make_stack(tmp_path / "r", "version: 1\npreset: metrics\n" + RECEIVERS)
    result = cli("-f", stack.file, "secrets", "show", PAGER, env={"PD_KEY": "pd-secret-value"})
    assert result.code == 2 and "environment variable PD_KEY" in result.stderr and result.stdout == ""
    assert "pd-secret-value" not in result.output
    from_file = cli("-f", stack.file, "secrets", "show", SLACK)
    assert from_file.code == 2 and "slack-url" in from_file.stderr


# --- what a rotation involves (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret, holder, account, seeded_once, consumers", [
    ("elastic_password", "elasticsearch", "elastic", True, ("elasticsearch", "elasticsearch-setup")),
    ("kibana_system_password", "elasticsearch", "kibana_system", False, ("elasticsearch-setup", "kibana")),
    ("logstash_writer_password", "elasticsearch", "logstash_writer", False, ("elasticsearch-setup", "logstash")),
    ("collector_writer_password", "elasticsearch", "collector_writer", False,
     ("elasticsearch-setup", "otel-collector")),
    ("grafana_reader_password", "elasticsearch", "grafana_reader", False, ("grafana", "elasticsearch-setup")),
    ("grafana_admin_password", "grafana", "admin", True, ("grafana",)),
])
def test_plan(stack: Stack, secret, holder, account, seeded_once, consumers):
    plan = rotation.plan_rotation(stack, secret)
    assert (plan.holder.key, plan.account, plan.seeded_once, plan.consumers) == (holder, account, seeded_once,
                                                                                consumers)


def test_plan_follows_the_configured_grafana_admin(tmp_path: Path):
    stack = make_stack(tmp_path / "g", "version: 1\npreset: metrics\nservices:\n  grafana:\n    admin_user: root\n")
    assert rotation.plan_rotation(stack, "grafana_admin_password").account == "root"


def test_refusals(tmp_path: Path, stack: Stack):
    assert rotation.refusal(stack, "elastic_password") is None
    assert "decryptionOnlyKeys" in rotation.refusal(stack, "kibana_encryption_key")
    metrics = make_stack(tmp_path / "m", "version: 1\npreset: metrics\n")
    assert "not used by any service" in rotation.refusal(metrics, "elastic_password")
    with pytest.raises(StackError, match="not used"):
        rotation.plan_rotation(metrics, "logstash_writer_password")


@pytest.mark.parametrize("bind, expected", [
    ("127.0.0.1", "http://127.0.0.1:9200"),
    ("0.0.0.0", "http://127.0.0.1:9200"),
    ("192.168.1.5", "http://192.168.1.5:9200"),
    ("::1", "http://[::1]:9200"),
])
def test_host_url(tmp_path: Path, bind: str, expected: str):
    stack = make_stack(tmp_path / "h", f"version: 1\npreset: logs\nbind_address: '{bind}'\n")
    assert host_url(stack, "elasticsearch") == expected


def test_host_url_of_a_disabled_service(tmp_path: Path):
    stack = make_stack(tmp_path / "h", "version: 1\npreset: metrics\n")
    with pytest.raises(StackError, match="not enabled"):
        host_url(stack, "elasticsearch")
