"""Rendering: every preset renders; a disabled service leaves no trace; ports bind where told; images follow the
mirror and the versions; plans are deterministic; writes are atomic, minimal and recover from crashes; secrets
never reach a rendered file and live in a private state directory."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.core import catalog
from stackctl.core import render
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.render import COMPOSE_FILE, render_bundle
from stackctl.shells.fs import INCOMPLETE, MANIFEST, bundle_is_current, write_bundle
from stackctl.core.secrets import env_name, required_secrets
from stackctl.shells.state import SecretStore
from stackctl.core.checks import check_no_secret_values, structural_checks
from stackctl.core.secrets import missing_values
from tests.conftest import Project, clean_environ, init_text, stack_from, stored_secrets, tree

DATASOURCES = "grafana/provisioning/datasources/datasources.yaml"
PROMETHEUS = "configs/prometheus/prometheus.yml"
COLLECTOR = "configs/collector/config.yaml"


def rendered(text: str, directory: Path, env: dict | None = None) -> tuple[Stack, dict[str, bytes]]:
    stack = stack_from(text, directory, env=env)
    return stack, render_bundle(stack)


RUNBOOK_PATHS = ("runbooks/", "grafana/dashboards/runbooks/")


def compose_of(plan: dict[str, bytes]) -> dict:
    return yaml.safe_load(plan[COMPOSE_FILE])


def off(*keys: str) -> str:
    return "services:\n" + "".join(f"  {key}:\n    enabled: false\n" for key in keys)


# --- every preset -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_every_preset_renders_a_consistent_bundle(tmp_path, preset):
    stack, plan = rendered(init_text(preset), tmp_path)
    compose = compose_of(plan)
    assert compose["name"] == "stackctl"
    assert set(compose["services"]) == {svc.name for svc in stack.services.values()}
    for path, data in plan.items():  # every file parses as what its name says
        if path.endswith((".yml", ".yaml")):
            yaml.safe_load(data)
        elif path.endswith(".json"):
            json.loads(data)
    for key, svc in stack.services.items():
        spec = svc.spec
        service = compose["services"][spec.name]
        assert service["image"] == f"{spec.image}:{spec.version}"
        assert service["labels"]["org.stackctl.service"] == key
        assert service["mem_limit"] == spec.memory
        assert service["restart"] == ("no" if spec.oneshot else "unless-stopped")
        assert ("healthcheck" in service) == (spec.healthcheck is not None)
        templates = render.asset_root() / "configs" / key
        if templates.is_dir() and any(p.is_file() for p in templates.rglob("*")):  # its own configs are in the bundle
            assert any(p.startswith(f"configs/{key}/") for p in plan), key
    failed = [c for c in structural_checks(stack, plan, {}) if c.status != "passed"]
    assert not failed, failed


def test_rendered_files_carry_a_do_not_edit_header_and_scripts_keep_their_shebang(tmp_path):
    _, plan = rendered("", tmp_path)
    assert plan[COMPOSE_FILE].startswith(b"# Rendered by stackctl")
    for path, data in plan.items():
        if path.endswith((".yml", ".yaml", ".conf")):
            assert b"Do not edit" in data.split(b"\n", 2)[0] + data.split(b"\n", 2)[1], path
    script = plan["configs/elasticsearch_setup/setup.sh"]
    assert script.startswith(b"#!/usr/bin/env bash\n# Rendered by stackctl")


def test_depends_on_uses_health_and_setup_completion(tmp_path):
    _, plan = rendered("", tmp_path)
    services = compose_of(plan)["services"]
    assert services["otel-collector"]["depends_on"]["elasticsearch-setup"] == {"condition": "service_completed_successfully"}
    assert services["kibana"]["depends_on"]["elasticsearch"] == {"condition": "service_healthy"}
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            other = catalog.BY_NAME[dependency]
            if not other.oneshot:
                assert how["condition"] == ("service_healthy" if other.healthcheck else "service_started"), name


def test_secrets_are_declared_from_the_environment_and_mounted_read_only_for_the_service_user(tmp_path):
    stack, plan = rendered("", tmp_path)
    compose = compose_of(plan)
    assert compose["secrets"] == {name: {"environment": env_name(name)} for name in required_secrets(stack)}
    for key, svc in stack.services.items():
        for secret in compose["services"][svc.name].get("secrets") or []:
            assert secret["target"] == secret["source"]
            assert secret["mode"] == 0o400
            assert (secret["uid"], secret["gid"]) == (str(svc.spec.uid), str(svc.spec.gid))


# --- a disabled service leaves no trace ----------------------------------------------------------------------


def dependents(key: str) -> list[str]:
    """Services that require `key` (the model refuses them on without it), transitively."""
    found: list[str] = []
    for other in catalog.USER_SERVICES:
        if key in catalog.SERVICES[other].requires:
            found += [other] + dependents(other)
    return found


# Secrets that must be gone when a service is off (and with it whatever the model forces off).
SECRETS_GONE_WITH = {
    "prometheus": set(),
    "alertmanager": set(),
    "grafana": {"grafana_admin_password", "grafana_reader_password"},
    "elasticsearch": {"elastic_password", "kibana_system_password", "kibana_encryption_key",
                      "logstash_writer_password", "collector_writer_password", "grafana_reader_password",
                      "elasticsearch_exporter_password"},
    "elasticsearch_exporter": {"elasticsearch_exporter_password"},
    "logstash": {"logstash_writer_password"},
    "kibana": {"kibana_system_password", "kibana_encryption_key"},
    "jaeger": set(),
    "collector": {"collector_writer_password"},
    "node_exporter": set(),
    "blackbox_exporter": set(),
}
# Other names that only mean the service: Elasticsearch users the setup job makes for it, datasource uids,
# collector exporters.
ALSO_MEANS = {
    "elasticsearch": ["elasticsearch-logs", "elastic_password"],
    "kibana": ["kibana_system"],
    "logstash": ["logstash_writer"],
    "collector": ["collector_writer"],
    "grafana": ["grafana_reader"],
    "prometheus": ["prometheusremotewrite"],
}
# Text that contains a service's name without referring to the service, with the reason: (service key or None
# for any, file pattern, text pattern). Only the matched text is excused, not the rest of its line.
NOT_REFERENCES = [
    # The collector's and Jaeger's own /metrics endpoint is a pull exporter whose *type* is called prometheus.
    ("prometheus", r"^configs/(collector|jaeger)/config\.yaml$", r"^\s+prometheus:\s*$"),
    # Alertmanager's datasource says which API flavour it speaks.
    ("prometheus", re.escape(DATASOURCES), r"^\s+implementation: prometheus\s*$"),
    # A negative matcher only excludes a job: with the job absent it matches everything, as intended.
    (None, r"^configs/prometheus/rules/", r'job!(=|~)"[^"]*"'),
    # Runbooks are prose for people: they may mention other components while diagnosing. Only the runbooks of
    # rendered alerts are shipped (test_runbooks_follow_the_rendered_alerts), so a whole disabled pack leaves none.
    (None, r"^(runbooks/|grafana/dashboards/runbooks/)", r".*"),
    # A dashboard's label matcher selects a job's series; with the job gone it selects nothing (the collector's
    # panels filter out Jaeger, which exposes the same otelcol_* names).
    (None, r"^grafana/dashboards/", r'job="[^"]*"'),
]
# Dashboard JSON keys holding prose for people, not queries or links.
PROSE_KEYS = {"description", "title", "tags", "text", "content", "legendFormat", "displayName", "label"}


def _json_strings(node: Any, key: str = "") -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() if k not in PROSE_KEYS for s in _json_strings(v, k)]
    if isinstance(node, list):
        return [s for v in node for s in _json_strings(v, key)]
    return [node] if isinstance(node, str) else []


def references(plan: dict[str, bytes], key: str) -> list[str]:
    """Every place in the bundle that refers to service `key`: its compose/DNS name as a whole word (metric names
    like alertmanager_alerts and type names like prometheusremotewrite do not count; ALSO_MEANS adds names that
    do), minus the lines NOT_REFERENCES explains."""
    spec = catalog.SERVICES[key]
    words = [spec.name] + ALSO_MEANS.get(key, [])
    pattern = re.compile("|".join(rf"(?<![A-Za-z0-9_-]){re.escape(w)}(?![A-Za-z0-9_])" for w in words))
    found = []
    for path, data in plan.items():
        if path.endswith(".json"):
            for text in _json_strings(json.loads(data)):
                for service, file_pattern, text_pattern in NOT_REFERENCES:
                    if service in (key, None) and re.search(file_pattern, path):
                        text = re.sub(text_pattern, "", text)
                if pattern.search(text):
                    found.append(f"{path}: {text[:120]!r}")
            continue
        for number, line in enumerate(data.decode().splitlines(), 1):
            text = line
            for service, file_pattern, text_pattern in NOT_REFERENCES:
                if service in (key, None) and re.search(file_pattern, path):
                    text = re.sub(text_pattern, "", text)
            if pattern.search(text):
                found.append(f"{path}:{number}: {line.strip()[:120]}")
    return found


def dashboard_datasource_uids(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and isinstance(ds.get("uid"), str):
            found.add(ds["uid"])
        elif isinstance(ds, str) and ds:  # a legacy reference by name; "" (e.g. alert list options) means any
            found.add(ds)
        if isinstance(node.get("datasourceUid"), str):
            found.add(node["datasourceUid"])
        for value in node.values():
            found |= dashboard_datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= dashboard_datasource_uids(value)
    return found


def provisioned_datasources(plan: dict[str, bytes]) -> set[str]:
    if DATASOURCES not in plan:
        return set()
    return {ds["uid"] for ds in yaml.safe_load(plan[DATASOURCES]).get("datasources") or []}


@pytest.mark.parametrize("key", catalog.USER_SERVICES)
def test_disabled_service_leaves_no_reference_anywhere(tmp_path, key):
    disabled = [key] + dependents(key)
    stack, plan = rendered(off(*disabled), tmp_path)
    gone = [k for k in catalog.CATALOG if (k.part_of or k.key) in disabled]
    assert not any(stack.enabled(spec.key) for spec in gone)
    compose = compose_of(plan)
    for spec in gone:
        # no compose service, dependency, volume or bundle file of its own
        assert spec.name not in compose["services"]
        for name, service in compose["services"].items():
            assert spec.name not in (service.get("depends_on") or {}), f"{name} depends on {spec.name}"
        volume_prefix = spec.key.replace("_", "-") + "-"
        assert not [v for v in compose.get("volumes") or {} if v.startswith(volume_prefix)]
        owned = (f"configs/{spec.key}/",) + tuple(f"{d}/" for d in getattr(spec, "assets", ()))
        assert not [p for p in plan if p.startswith(owned)]
        # nothing anywhere names it
        assert references(plan, spec.key) == [], "\n".join(references(plan, spec.key))
    # its secrets are neither declared, mounted nor mentioned
    secrets = set().union(*(SECRETS_GONE_WITH[k] for k in disabled))
    assert not secrets & required_secrets(stack).keys()
    assert not secrets & set(compose.get("secrets") or {})
    for path, data in plan.items():
        for secret in secrets:
            if not path.startswith(RUNBOOK_PATHS):  # prose may say how to read a secret for diagnosis
                assert secret.encode() not in data, f"{path} mentions {secret}"
    # no datasource, scrape job, alerting target or exporter points at it
    names = {spec.name for spec in gone}
    if PROMETHEUS in plan:
        prom = yaml.safe_load(plan[PROMETHEUS])
        jobs = {job["job_name"] for job in prom["scrape_configs"]}
        targets = {t.split(":")[0] for job in prom["scrape_configs"] for g in job["static_configs"] for t in g["targets"]}
        assert not names & (jobs | targets)
        if "alertmanager" in disabled:
            assert "alerting" not in prom
    if DATASOURCES in plan:
        datasources = yaml.safe_load(plan[DATASOURCES])["datasources"]
        assert not names & {re.sub(r"^https?://([^:/]+).*", r"\1", ds["url"]) for ds in datasources}
        provisioned = provisioned_datasources(plan)
        for path, data in plan.items():  # every datasource anything refers to is provisioned
            if path.startswith("grafana/"):
                doc = json.loads(data) if path.endswith(".json") else yaml.safe_load(data)
                dangling = dashboard_datasource_uids(doc) - provisioned - {"-- Grafana --", "grafana", "-- Dashboard --"}
                assert not {u for u in dangling if not u.startswith("$")}, f"{path} uses datasources {dangling}"
    if COLLECTOR in plan:
        collector = yaml.safe_load(plan[COLLECTOR])
        exporters = collector["exporters"]
        for name, exporter in exporters.items():
            urls = [exporter.get("endpoint")] + list(exporter.get("endpoints") or [])
            assert not names & {re.sub(r"^\w+://", "", u).split(":")[0] for u in urls if u}, name
        if "prometheus" in disabled:
            assert not [name for name in exporters if "prometheus" in name]
        if "jaeger" in disabled:
            assert not [name for name in exporters if "jaeger" in name]
        if "elasticsearch" in disabled:
            assert not [name for name in exporters if "elasticsearch" in name]
        used = {e for p in collector["service"]["pipelines"].values() for e in p["exporters"]}
        assert used == set(exporters)


def test_signals_without_a_backend_go_to_the_debug_exporter(tmp_path):
    _, plan = rendered("preset: traces\n", tmp_path)
    pipelines = yaml.safe_load(plan[COLLECTOR])["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["debug"]
    assert pipelines["logs"]["exporters"] == ["debug"]


def test_the_reference_search_sees_real_references(tmp_path):
    """Guard against a search that finds nothing: with everything on, each service is referred to somewhere."""
    _, plan = rendered("", tmp_path)
    for key in catalog.USER_SERVICES:
        assert references(plan, key), key


# --- ports and bind address -----------------------------------------------------------------------------------


def published(compose: dict) -> dict[str, list[str]]:
    return {name: list(service.get("ports") or []) for name, service in compose["services"].items()}


@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_every_port_is_bound_to_the_bind_address(tmp_path, preset):
    stack, plan = rendered(f"preset: {preset}\n", tmp_path)
    ports = published(compose_of(plan))
    expected = sum(1 for svc in stack.services.values() for p in svc.spec.ports if p.host is not None and not svc.spec.oneshot)
    assert sum(map(len, ports.values())) == expected
    for name, entries in ports.items():
        for entry in entries:
            assert entry.startswith("127.0.0.1:"), f"{name}: {entry}"
    for service in compose_of(plan)["services"].values():
        assert "network_mode" not in service and "expose" not in service


def test_changing_bind_address_changes_every_port(tmp_path):
    _, local = rendered("", tmp_path)
    _, exposed = rendered("bind_address: 0.0.0.0\n", tmp_path)
    local_ports, exposed_ports = published(compose_of(local)), published(compose_of(exposed))
    assert {n: [p.replace("127.0.0.1:", "0.0.0.0:", 1) for p in ps] for n, ps in local_ports.items()} == exposed_ports
    assert not [p for ps in exposed_ports.values() for p in ps if not p.startswith("0.0.0.0:")]
    assert b"127.0.0.1:" not in exposed[COMPOSE_FILE].replace(b"http://127.0.0.1:", b"")  # healthchecks stay inside


def test_host_ports_follow_the_settings(tmp_path):
    _, plan = rendered("services:\n  grafana:\n    port: 3001\n  logstash:\n    ports:\n      beats: 5045\n", tmp_path)
    ports = published(compose_of(plan))
    assert ports["grafana"] == ["127.0.0.1:3001:3000"]
    assert "127.0.0.1:5045:5044" in ports["logstash"]


# --- images: mirror and versions ------------------------------------------------------------------------------


def test_registry_mirror_rewrites_default_images_but_not_overrides(tmp_path):
    mirror = "mirror.example.com:5000"
    stack, plan = rendered(f"registry_mirror: {mirror}\nservices:\n  grafana:\n    image: grafana/grafana:12.0.0\n",
                           tmp_path)
    services = compose_of(plan)["services"]
    assert services["grafana"]["image"] == "grafana/grafana:12.0.0"
    for key, svc in stack.services.items():
        if key == "grafana":
            continue
        image = services[svc.name]["image"]
        assert image.startswith(mirror + "/"), image
        assert image.endswith(":" + svc.spec.version)
    assert services["elasticsearch"]["image"] == f"{mirror}/elasticsearch/elasticsearch:9.5.1"
    assert services["prometheus"]["image"] == f"{mirror}/prom/prometheus:v3.14.0"
    for path, data in plan.items():
        assert b"docker.elastic.co" not in data, path


def test_prometheus_flags_follow_the_image_version(tmp_path):
    _, default = rendered("", tmp_path)
    _, debian = rendered("services:\n  prometheus:\n    image: local/prometheus:2.42.0\n", tmp_path)
    new = compose_of(default)["services"]["prometheus"]["command"]
    old = compose_of(debian)["services"]["prometheus"]["command"]
    assert "--web.enable-otlp-receiver" in new
    assert "--web.enable-otlp-receiver" not in old
    assert "--web.enable-remote-write-receiver" in new and "--web.enable-remote-write-receiver" in old
    assert compose_of(debian)["services"]["prometheus"]["image"] == "local/prometheus:2.42.0"


@pytest.mark.parametrize("version, exporter", [
    ("0.120.0", "otlp/jaeger"), ("0.143.0", "otlp/jaeger"), ("0.144.0", "otlp_grpc/jaeger"), ("0.155.0", "otlp_grpc/jaeger"),
])
def test_collector_exporter_names_follow_the_image_version(tmp_path, version, exporter):
    _, plan = rendered(f"services:\n  collector:\n    image: otel/opentelemetry-collector-contrib:{version}\n", tmp_path)
    collector = yaml.safe_load(plan[COLLECTOR])
    assert exporter in collector["exporters"]
    assert collector["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert collector["service"]["pipelines"]["traces"]["exporters"] == [exporter]


def test_grafana_plugin_setting_follows_the_image_version(tmp_path):
    _, new = rendered("services:\n  grafana:\n    plugins: [a-panel]\n", tmp_path)
    _, old = rendered("services:\n  grafana:\n    plugins: [a-panel]\n    image: grafana/grafana:11.6.0\n", tmp_path)
    assert compose_of(new)["services"]["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"] == "a-panel"
    assert compose_of(old)["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"] == "a-panel"


# --- determinism and writing -----------------------------------------------------------------------------------


def test_rendering_twice_gives_byte_identical_plans(tmp_path):
    stack = stack_from(init_text(), tmp_path)
    first, second = render_bundle(stack), render_bundle(stack)
    assert first == second
    assert list(first) == sorted(first)


def test_rendering_in_fresh_interpreters_is_deterministic(project: Project):
    """Different hash seeds, same bytes: the second render writes nothing."""
    results = []
    for seed in ("1", "2"):
        env = {**clean_environ(), "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-m", "stackctl", "-f", str(project.file), "render", "--json"],
                              cwd=project.dir, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        results.append((json.loads(proc.stdout), tree(project.build)))
    (first, files_first), (second, files_second) = results
    assert first["written"] and second["written"] == [] and second["removed"] == []
    assert files_first == files_second


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_second_write_changes_nothing(tmp_path):
    stack = stack_from("", tmp_path)
    plan = render_bundle(stack)
    out = tmp_path / "build"
    first = write_bundle(plan, out)
    assert set(first.written) == set(plan) and not first.unchanged and not first.removed
    assert tree(out) == {**plan, MANIFEST: (out / MANIFEST).read_bytes()}
    before = _stats(out)
    second = write_bundle(render_bundle(stack), out)
    assert second.written == () and set(second.unchanged) == set(plan) and second.removed == ()
    assert _stats(out) == before  # no file touched, not even the manifest
    assert not (out / INCOMPLETE).exists()
    assert bundle_is_current(plan, out)


def test_file_modes(tmp_path):
    stack = stack_from("", tmp_path)
    out = tmp_path / "build"
    write_bundle(render_bundle(stack), out)
    for path in out.rglob("*"):
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o755 if path.suffix == ".sh" else 0o644), path


def test_a_changed_or_edited_file_is_rewritten(tmp_path):
    out = tmp_path / "build"
    stack = stack_from("", tmp_path)
    write_bundle(render_bundle(stack), out)
    (out / PROMETHEUS).write_text("edited by hand\n")
    stack = stack_from("services:\n  prometheus:\n    retention: 30d\n", tmp_path)
    plan = render_bundle(stack)
    result = write_bundle(plan, out)
    assert PROMETHEUS not in result.unchanged
    assert COMPOSE_FILE in result.written  # the retention flag changed
    assert tree(out) == {**plan, MANIFEST: (out / MANIFEST).read_bytes()}


def test_turning_a_service_off_removes_its_files_and_directories(tmp_path):
    out = tmp_path / "build"
    write_bundle(render_bundle(stack_from("", tmp_path)), out)
    assert (out / "configs/logstash/pipeline/main.conf").exists()
    plan = render_bundle(stack_from(off("logstash", "kibana"), tmp_path))
    result = write_bundle(plan, out)
    runbooks = ("LogstashDown", "LogstashPipelineBackingUp", "KibanaDown")
    assert set(result.removed) == {"configs/logstash/logstash.yml", "configs/logstash/pipeline/main.conf",
                                   "configs/kibana/kibana.yml", *(f"runbooks/{name}.md" for name in runbooks),
                                   *(f"grafana/dashboards/runbooks/{name}.json" for name in runbooks)}
    assert tree(out) == {**plan, MANIFEST: (out / MANIFEST).read_bytes()}
    assert not (out / "configs/logstash").exists() and not (out / "configs/kibana").exists()
    empty = [d for d in out.rglob("*") if d.is_dir() and not any(d.iterdir())]
    assert empty == []


def test_a_crash_marker_makes_the_next_write_rewrite_everything(tmp_path):
    out = tmp_path / "build"
    plan = render_bundle(stack_from("", tmp_path))
    write_bundle(plan, out)
    (out / INCOMPLETE).write_text("stackctl render in progress\n")  # a write that died half-way
    (out / PROMETHEUS).write_bytes(plan[PROMETHEUS][:10])  # ... leaving a file behind
    result = write_bundle(plan, out)
    assert set(result.written) == set(plan) and result.unchanged == ()
    assert not (out / INCOMPLETE).exists()
    assert tree(out) == {**plan, MANIFEST: (out / MANIFEST).read_bytes()}


def test_after_a_crash_stale_files_of_the_last_complete_write_are_still_removed(tmp_path):
    out = tmp_path / "build"
    write_bundle(render_bundle(stack_from("", tmp_path)), out)
    (out / INCOMPLETE).write_text("stackctl render in progress\n")
    plan = render_bundle(stack_from("preset: metrics\n", tmp_path))
    result = write_bundle(plan, out)
    assert "configs/kibana/kibana.yml" in result.removed
    assert tree(out) == {**plan, MANIFEST: (out / MANIFEST).read_bytes()}


def test_a_directory_not_written_by_stackctl_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(StackError, match="not written by stackctl"):
        write_bundle(render_bundle(stack_from("", tmp_path)), out)
    assert tree(out) == {"notes.txt": b"keep me"}


def test_a_failed_render_leaves_the_previous_bundle_byte_identical(project: Project, cli):
    assert cli("-f", project.file, "render").code == 0
    before_build, before_state = tree(project.build), tree(project.state)
    stats = _stats(project.build)
    project.write(init_text() + "services:\n  grafana:\n    port: 0\n")  # duplicate key `services`, too
    result = cli("-f", project.file, "render")
    assert result.code == 2
    project.write("preset: full\nservices:\n  grafana:\n    port: 70000\n")
    result = cli("-f", project.file, "render")
    assert result.code == 2 and "services.grafana.port" in result.stderr
    assert tree(project.build) == before_build and tree(project.state) == before_state
    assert _stats(project.build) == stats


def test_a_render_failing_after_the_config_loaded_writes_nothing(project: Project, cli, monkeypatch):
    assert cli("-f", project.file, "render").code == 0
    before = tree(project.build)
    real = render.compose_service

    def broken(stack, svc, fragment, config_hash):
        if svc.key == "node_exporter":  # the last service: everything before it rendered fine
            raise StackError("template compose/node_exporter.yaml.j2: boom")
        return real(stack, svc, fragment, config_hash)

    monkeypatch.setattr(render, "compose_service", broken)
    project.write(init_text() + "\n# changed\n")
    result = cli("-f", project.file, "render")
    assert result.code == 2 and "boom" in result.stderr
    assert tree(project.build) == before


# --- secrets -----------------------------------------------------------------------------------------------------


def test_no_secret_value_appears_in_any_rendered_file(project: Project, cli):
    assert cli("-f", project.file, "render").code == 0
    stack = project.load()
    store = SecretStore.for_stack(stack)
    values = {name: store.read(name) for name in required_secrets(stack)}
    assert values and all(len(v) >= 32 for v in values.values())
    for path, data in tree(project.build).items():
        for name, value in values.items():
            assert value.encode() not in data, f"{path} contains the value of {name}"
    known = store.known_values(stack, environ={})
    assert known.keys() == values.keys()
    assert check_no_secret_values(stack, render_bundle(stack), known) == []


def test_the_secret_value_check_finds_a_leak(project: Project, cli):
    assert cli("-f", project.file, "render").code == 0
    stack = project.load()
    plan = render_bundle(stack)
    store = SecretStore.for_stack(stack)
    value = store.read("grafana_admin_password")
    plan["configs/kibana/kibana.yml"] += f"leaked: {value}\n".encode()
    assert check_no_secret_values(stack, plan, store.known_values(stack, environ={})) == ["configs/kibana/kibana.yml: contains the value of secret grafana_admin_password"]


def test_secrets_are_private_and_ignored_by_git(project: Project, cli):
    old = os.umask(0)  # a careless umask must not make them readable
    try:
        assert cli("-f", project.file, "render").code == 0
    finally:
        os.umask(old)
    secrets_dir = project.state / "secrets"
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    files = sorted(secrets_dir.iterdir())
    assert set(required_secrets(project.load())) <= {f.name for f in files}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    ignore = (project.state / ".gitignore").read_text().splitlines()
    assert "*" in ignore


def test_secrets_are_generated_once(project: Project, cli):
    assert cli("-f", project.file, "render").code == 0
    stack = project.load()
    store = SecretStore.for_stack(stack)
    first = {name: store.read(name) for name in required_secrets(stack)}
    assert cli("-f", project.file, "render").code == 0
    assert {name: store.read(name) for name in required_secrets(stack)} == first
    assert missing_values(stack, store.exists) == {}


def test_secrets_dir_that_is_too_open_is_tightened(project: Project, cli):
    assert cli("-f", project.file, "render").code == 0
    (project.state / "secrets" / "grafana_admin_password").unlink()  # so the next render writes one again
    project.state.chmod(0o755)
    (project.state / "secrets").chmod(0o777)
    assert cli("-f", project.file, "render").code == 0
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((project.state / "secrets").stat().st_mode) == 0o700


def test_rendering_is_relocatable(tmp_path):
    """The same stack gives the same bytes wherever it is rendered: no path of the rendering machine inside."""
    plans = []
    for where in ("one", "two/deeper"):
        (tmp_path / where).mkdir(parents=True)
        stack, plan = rendered("", tmp_path / where)
        plans.append(plan)
        for path, data in plan.items():
            assert str(tmp_path).encode() not in data, path
            assert b"file://" not in data, path
    assert plans[0] == plans[1]


def test_runbooks_follow_the_rendered_alerts(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "nohost").mkdir()
    full = {p for p in rendered("", tmp_path / "full")[1] if p.startswith("runbooks/")}
    without_hosts = {p for p in rendered(off("node_exporter"), tmp_path / "nohost")[1] if p.startswith("runbooks/")}
    assert "runbooks/HostCpuUsageHigh.md" in full and "runbooks/README.md" in full
    assert not [p for p in without_hosts if p.startswith("runbooks/Host")]
    assert "runbooks/TargetDown.md" in without_hosts


def test_user_supplied_receiver_secrets_reach_alertmanager_as_files_only(tmp_path):
    (tmp_path / "hook").write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    text = ("preset: metrics\nalerting:\n  receivers:\n    - name: ops\n      type: slack\n"
            "      channel: '#ops'\n      api_url: {from_file: hook}\n"
            "    - name: pager\n      type: pagerduty\n      routing_key: {from_env: PD_KEY}\n")
    stack, plan = rendered(text, tmp_path)
    compose = compose_of(plan)
    mounted = {s["source"]: s for s in compose["services"]["alertmanager"]["secrets"]}
    assert set(mounted) == {"alertmanager_ops_api_url", "alertmanager_pager_routing_key"} <= set(required_secrets(stack))
    assert all((s["uid"], s["mode"]) == ("65534", 0o400) for s in mounted.values())
    assert compose["secrets"]["alertmanager_ops_api_url"] == {"environment": env_name("alertmanager_ops_api_url")}
    assert not any(b"hooks.slack.example" in data for data in plan.values())
    env = stored_secrets(stack).compose_env(stack, environ={"PD_KEY": "pd-123"})
    assert env[env_name("alertmanager_ops_api_url")] == "https://hooks.slack.example/T000/B000/XXXX"
    assert env[env_name("alertmanager_pager_routing_key")] == "pd-123"
    with pytest.raises(StackError, match="PD_KEY is not set"):
        SecretStore.for_stack(stack).compose_env(stack, environ={})


def test_leak_check_knows_user_supplied_values_too(tmp_path):
    (tmp_path / "hook").write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    text = "preset: metrics\nalerting:\n  receivers:\n    - name: ops\n      type: slack\n      api_url: {from_file: hook}\n"
    stack, plan = rendered(text, tmp_path)
    known = SecretStore.for_stack(stack).known_values(stack, environ={})
    assert check_no_secret_values(stack, plan, known) == []
    leaked = {**plan, "configs/prometheus/prometheus.yml": plan["configs/prometheus/prometheus.yml"]
              + b"# https://hooks.slack.example/T000/B000/XXXX\n"}
    assert check_no_secret_values(stack, leaked, known) == [
        "configs/prometheus/prometheus.yml: contains the value of secret alertmanager_ops_api_url"]


def test_compose_leaves_the_user_to_the_image(tmp_path):
    """Regression: a numeric `user: "65534:65534"` made Docker 20.10 refuse to inject secret files."""
    _, plan = rendered("", tmp_path)
    services = compose_of(plan)["services"]
    assert not [name for name, service in services.items() if "user" in service]
    assert services["grafana"]["secrets"][0]["uid"] == "472"  # the image's user still owns its secrets
