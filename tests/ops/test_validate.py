"""The rendered bundle passes the real validators: `docker compose config`, `promtool check config/rules` and
`amtool check-config`, for every preset and for the oldest versions the Debian-built local images run.

Tests marked `tools` need promtool/amtool (unpacked from Debian packages by tests.support.debian) and Docker
Compose v2. Where one is missing they skip with the reason, except with CI set, where they fail.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stackctl.core import catalog
from stackctl.shells.compose import Compose
from stackctl.core.config import Stack
from stackctl.core.render import COMPOSE_FILE, render_bundle
from stackctl.shells.fs import write_bundle
from stackctl.ops.validate import placeholder_compose_env, tool_checks
from stackctl.shells.compose import find_compose
from stackctl.shells.fs import write_tree
from tests.conftest import Project, init_text, stack_from

PROMETHEUS = "configs/prometheus/prometheus.yml"
ALERTMANAGER = "configs/alertmanager/alertmanager.yml"
DEBIAN_IMAGES = ("services:\n"
                 "  prometheus:\n    image: local/prometheus:2.42.0\n"
                 "  alertmanager:\n    image: local/alertmanager:0.25.0\n")


def written_bundle(text: str, directory: Path) -> tuple[Stack, dict[str, bytes], Path]:
    stack = stack_from(text, directory)
    out = directory / "build"
    plan = render_bundle(stack, out)
    write_bundle(plan, out)
    return stack, plan, out


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_tools_accept(stack: Stack, out: Path) -> None:
    result = Compose(out, stack.config.project, env=placeholder_compose_env(stack)).check_config()
    assert result.ok, result.output
    if stack.enabled("prometheus"):
        checked = run("promtool", "check", "config", str(out / PROMETHEUS))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        rules = sorted((out / "configs/prometheus/rules").glob("*.yml"))
        if rules:
            checked = run("promtool", "check", "rules", *map(str, rules))
            assert checked.returncode == 0, checked.stdout + checked.stderr
    if stack.enabled("alertmanager"):
        checked = run("amtool", "check-config", str(out / ALERTMANAGER))
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.tools
@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_every_preset_passes_the_real_validators(tmp_path, tools, preset):
    stack, _, out = written_bundle(init_text(preset), tmp_path)
    assert_tools_accept(stack, out)


@pytest.mark.tools
@pytest.mark.parametrize("preset", ["metrics", "full"])
def test_the_debian_image_versions_pass_the_real_validators(tmp_path, tools, preset):
    stack, plan, out = written_bundle(f"preset: {preset}\n" + DEBIAN_IMAGES, tmp_path)
    assert str(stack.get("prometheus").version) == "2.42.0"
    assert str(stack.get("alertmanager").version) == "0.25.0"
    assert "--web.enable-otlp-receiver" not in plan[COMPOSE_FILE].decode()
    assert_tools_accept(stack, out)


@pytest.mark.tools
def test_other_settings_pass_the_real_validators(tmp_path, tools):
    text = ("bind_address: 0.0.0.0\nregistry_mirror: mirror.example.com:5000\nproject: shop-mon\n"
            "services:\n  prometheus:\n    retention: 30d\n    retention_size: 10GB\n    scrape_interval: 1m30s\n"
            "  grafana:\n    plugins: [a-panel]\n    anonymous_viewer: true\n"
            "  node_exporter:\n    host_root: false\n"
            "scrape_targets:\n  - job: shop\n    targets: ['host.docker.internal:8080', 'shop:9000']\n"
            "    scheme: https\n    scrape_interval: 5s\n    labels: {team: web}\n")
    stack, _, out = written_bundle(text, tmp_path)
    assert_tools_accept(stack, out)


def checks_of(stack: Stack, plan: dict[str, bytes], directory: Path) -> dict:
    """The real validators' results on `plan`, written to `directory`."""
    directory.mkdir()
    write_tree(plan, directory)
    return {r.name: r for r in tool_checks(stack, directory, find_compose)}


@pytest.mark.tools
def test_tool_checks_report_every_tool_with_its_version(tmp_path, tools):
    stack = stack_from(DEBIAN_IMAGES, tmp_path)
    results = checks_of(stack, render_bundle(stack, tmp_path / "build"), tmp_path / "staged")
    assert not [r for r in results.values() if r.status in ("failed", "missing")], results
    assert re.fullmatch(r"promtool \d+\.\d+\.\d+ \(image 2\.42\.0\)", results["promtool check config"].tool)
    assert re.fullmatch(r"amtool \d+\.\d+\.\d+ \(image 0\.25\.0\)", results["amtool check-config"].tool)
    assert re.fullmatch(r"docker compose \d+\.\d+\.\d+|docker-compose \d+\.\d+\.\d+", results["docker compose config"].tool)


def _break(plan: dict[str, bytes], path: str, change) -> dict[str, bytes]:
    doc = yaml.safe_load(plan[path])
    change(doc)
    return {**plan, path: yaml.safe_dump(doc).encode()}


@pytest.mark.tools
def test_a_broken_file_fails_validation_with_the_tools_message(tmp_path, tools):
    stack = stack_from("", tmp_path)
    plan = render_bundle(stack, tmp_path / "build")
    plan = _break(plan, PROMETHEUS, lambda d: d["global"].update(scrape_interval="1s1m"))
    plan = _break(plan, ALERTMANAGER, lambda d: d["route"].update(receiver="nowhere"))
    plan = _break(plan, COMPOSE_FILE, lambda d: d["services"]["grafana"].update(bogus_setting=1))
    results = checks_of(stack, plan, tmp_path / "staged")
    assert results["promtool check config"].status == "failed"
    assert "not a valid duration string" in results["promtool check config"].message
    assert results["amtool check-config"].status == "failed"
    assert 'undefined receiver "nowhere"' in results["amtool check-config"].message
    assert results["docker compose config"].status == "failed"
    assert "bogus_setting" in results["docker compose config"].message
    assert results["promtool check rules"].status == "passed"


# --- the validate command ----------------------------------------------------------------------------------------


@pytest.mark.tools
def test_validate_json_reports_which_tools_ran(project: Project, cli, tools):
    result = cli("-f", project.file, "validate", "--json")
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["bundle"] == str(project.build)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("collector pipelines", "references to enabled services", "no secret values in files",
                 "docker compose config", "promtool check config", "amtool check-config"):
        assert checks[name]["status"] == "passed", checks[name]
    assert re.fullmatch(r"promtool \d+\.\d+\.\d+ \(image 3\.14\.0\)", checks["promtool check config"]["tool"])
    assert re.fullmatch(r"amtool \d+\.\d+\.\d+ \(image 0\.34\.0\)", checks["amtool check-config"]["tool"])
    assert re.search(r"\d+\.\d+\.\d+", checks["docker compose config"]["tool"])
    assert checks["promtool check rules"]["status"] == "passed"  # the stack always has rules to check
    assert report["written"] is True and (project.build / COMPOSE_FILE).is_file()


@pytest.mark.tools
def test_validate_fails_with_the_tools_message_and_writes_nothing(project: Project, cli, tools, monkeypatch):
    from stackctl.ops import bundle

    real = bundle.render_bundle

    def broken(stack, out=None, template_cache=None):  # a template bug the structural checks cannot see
        plan = real(stack, out, template_cache)
        return _break(plan, PROMETHEUS, lambda d: d["global"].update(scrape_interval="1s1m"))

    monkeypatch.setattr(bundle, "render_bundle", broken)
    result = cli("-f", project.file, "validate", "--json")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["written"] is False
    assert project.written() == set(), "neither the bundle nor the state directory was written"
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    assert [c["name"] for c in failed] == ["promtool check config"]
    assert "not a valid duration string" in failed[0]["message"]
    text = cli("-f", project.file, "validate")
    assert text.code == 1 and "not a valid duration string" in text.stderr


def test_validate_with_a_tool_missing_says_missing_and_passes(project: Project, cli, path_without_tools):
    result = cli("-f", project.file, "validate", "--json")
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name, tool in (("promtool check config", "promtool"), ("amtool check-config", "amtool")):
        assert checks[name]["status"] == "missing"
        assert f"{tool} is not on PATH" in checks[name]["message"]
    assert report["ok"] is True


def test_validate_strict_fails_when_a_tool_is_missing(project: Project, cli, path_without_tools):
    result = cli("-f", project.file, "validate", "--json", "--strict")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {c["name"] for c in report["checks"] if c["status"] == "missing"} >= {"promtool check config",
                                                                              "amtool check-config"}


def test_validate_text_output_names_the_missing_tools(project: Project, cli, path_without_tools):
    result = cli("-f", project.file, "validate")
    assert result.code == 0
    assert "missing" in result.stdout and "promtool is not on PATH" in result.stdout


def test_tool_checks_without_compose_report_it_missing(tmp_path, path_without_tools):
    from stackctl.core.errors import StackError

    def no_compose():
        raise StackError("Docker Compose v2 (2.24.0 or newer) is required")

    stack, _, out = written_bundle("preset: traces\n", tmp_path)
    results = {r.name: r for r in tool_checks(stack, out, no_compose)}
    assert results["docker compose config"].status == "missing"
    assert "promtool check config" not in results  # Prometheus is off in this preset: nothing to check
