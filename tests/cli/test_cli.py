"""The command line: init, render and validate as a user runs them. Every bad input is one message on stderr
and exit code 2, never a traceback, and nothing is written."""

from __future__ import annotations

import json

import pytest

from stackctl import __version__
from stackctl.core import catalog
from tests.conftest import Project, init_text, run_subprocess, tree
from tests.core.test_config import BAD_FILES


def assert_clean_error(result, *fragments: str) -> None:
    """Exit 2, one `error:` message naming what is wrong, no traceback, nothing on stdout."""
    assert result.code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- init ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_init_writes_the_template_with_the_preset(tmp_path, cli, preset):
    result = cli("init", "--preset", preset, cwd=tmp_path)
    assert result.code == 0, result.output
    assert (tmp_path / "stack.yaml").read_text() == init_text(preset)
    assert f"preset {preset}" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.yaml"]


def test_init_refuses_to_overwrite_without_force(tmp_path, cli):
    file = tmp_path / "stack.yaml"
    file.write_text("preset: metrics\n")
    assert_clean_error(cli("-f", file, "init"), "already exists", "--force")
    assert file.read_text() == "preset: metrics\n"
    assert cli("-f", file, "init", "--force").code == 0
    assert file.read_text() == init_text()


def test_init_refuses_an_unknown_preset(tmp_path, cli):
    assert_clean_error(cli("-f", tmp_path / "stack.yaml", "init", "--preset", "everything"),
                       "unknown preset 'everything'", "metrics, logs, traces, full")
    assert list(tmp_path.iterdir()) == []


def test_init_then_render_uses_the_defaults(tmp_path, cli):
    assert cli("init", cwd=tmp_path).code == 0
    result = cli("render", "--json", cwd=tmp_path)
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bundle"] == str(tmp_path / "build")
    assert report["services"] == [s.name for s in catalog.CATALOG]
    generated = set(catalog.generated_secrets())
    assert set(report["secrets_generated"]) == generated
    assert (tmp_path / "build" / "compose.yaml").is_file()


# --- render ---------------------------------------------------------------------------------------------------------


def test_render_reports_what_it_wrote(project: Project, cli):
    first = cli("-f", project.file, "render")
    assert first.code == 0, first.output
    assert "generated secret grafana_admin_password" in first.stdout
    assert "0 unchanged, 0 removed" in first.stdout
    second = cli("-f", project.file, "render", "--json")
    report = json.loads(second.stdout)
    assert report["written"] == [] and report["removed"] == [] and report["secrets_generated"] == []
    assert report["unchanged"] == len(tree(project.build)) - 1  # all but the manifest


def test_render_out_option(project: Project, cli, tmp_path):
    out = tmp_path / "elsewhere" / "bundle"
    result = cli("-f", project.file, "render", "--out", out)
    assert result.code == 0, result.output
    assert (out / "compose.yaml").is_file() and not project.build.exists()


def test_render_finds_stack_yaml_in_the_current_directory(project: Project, cli):
    result = cli("render", cwd=project.dir)
    assert result.code == 0, result.output
    assert (project.build / "compose.yaml").is_file()


def test_stackctl_file_locates_the_stack_file_and_is_no_setting(project: Project, cli, tmp_path):
    result = cli("render", env={"STACKCTL_FILE": str(project.file)}, cwd=tmp_path)
    assert result.code == 0, result.output
    assert (project.build / "compose.yaml").is_file()
    assert not (tmp_path / "build").exists()


def test_environment_and_set_overrides_reach_the_bundle(project: Project, cli):
    result = cli("-f", project.file, "--set", "services.jaeger.port=16687", "render",
                 env={"STACKCTL_SERVICES__GRAFANA__PORT": "3001", "STACKCTL_PRESET": "metrics",
                      "STACKCTL_SERVICES__JAEGER__ENABLED": "true"})
    assert result.code == 0, result.output
    compose = (project.build / "compose.yaml").read_text()
    assert "127.0.0.1:3001:3000" in compose and "127.0.0.1:16687:16686" in compose
    assert "kibana" not in compose


@pytest.mark.parametrize("text, message, line", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_stack_file_is_one_message_exit_2_and_nothing_written(project: Project, cli, text, message, line):
    project.write(text)
    for command in (["render"], ["validate"], ["render", "--json"]):
        result = cli("-f", project.file, *command)
        assert_clean_error(result, f"{project.file}:{line}: ")
        assert project.written() == set(), "nothing may be written"


def test_bad_environment_variable_is_one_message(project: Project, cli):
    result = cli("-f", project.file, "render", env={"STACKCTL_SERVICES__GRAFANA__PROT": "3001"})
    assert_clean_error(result, "environment variable STACKCTL_SERVICES__GRAFANA__PROT",
                       "services.grafana.prot: unknown key (did you mean 'port'?)")
    assert project.written() == set()


def test_bad_set_option_is_one_message(project: Project, cli):
    result = cli("-f", project.file, "--set", "services.grafana.port=0", "render")
    assert_clean_error(result, "--set services.grafana.port=...", "must be a port between 1 and 65535")
    result = cli("-f", project.file, "--set", "services.grafana.port", "render")
    assert_clean_error(result, "KEY=VALUE")
    assert project.written() == set()


def test_missing_stack_file_says_to_run_init(tmp_path, cli):
    for command in (["render"], ["validate"]):
        result = cli(*command, cwd=tmp_path)
        assert_clean_error(result, "stack.yaml: no stack file here", "run 'stackctl init'")
    assert list(tmp_path.iterdir()) == []


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"stackctl {__version__}"


@pytest.mark.parametrize("args", [["rendr"], ["render", "--bogus"], ["init", "-f", "x.yaml"]])
def test_usage_errors_exit_2_without_internal_error(tmp_path, cli, args):
    result = cli(*args, cwd=tmp_path)
    assert result.code == 2, result.output
    assert "internal error" not in result.output


# --- end to end in a fresh interpreter -------------------------------------------------------------------------


def test_end_to_end_init_render_and_a_bad_edit(tmp_path):
    assert run_subprocess("init", "--preset", "metrics", cwd=tmp_path).code == 0
    result = run_subprocess("render", "--json", cwd=tmp_path)
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["services"] == ["prometheus", "alertmanager", "grafana", "node-exporter"]
    before = tree(tmp_path / "build"), tree(tmp_path / ".stackctl")
    file = tmp_path / "stack.yaml"
    file.write_text(file.read_text().replace("retention: 15d", "retension: 15d"))
    result = run_subprocess("render", cwd=tmp_path)
    assert result.code == 2
    assert "Traceback" not in result.output
    line = file.read_text().splitlines().index("    retension: 15d") + 1
    assert result.stderr == (f"error: stack.yaml:{line}: services.prometheus.retension: unknown key "
                             "(did you mean 'retention'?)\n")
    assert (tree(tmp_path / "build"), tree(tmp_path / ".stackctl")) == before


def test_end_to_end_missing_file_and_environment_selection(tmp_path):
    result = run_subprocess("render", cwd=tmp_path)
    assert result.code == 2 and "stackctl init" in result.stderr and "Traceback" not in result.output
    project = tmp_path / "p"
    project.mkdir()
    (project / "mon.yaml").write_text("preset: traces\n")
    result = run_subprocess("render", "--json", cwd=tmp_path, env={"STACKCTL_FILE": str(project / "mon.yaml"),
                                                                   "STACKCTL_SERVICES__GRAFANA__ENABLED": "false"})
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["services"] == ["jaeger", "otel-collector"]
    assert (project / "build" / "compose.yaml").is_file() and not (tmp_path / "build").exists()


def test_end_to_end_ci_test_variables_are_not_settings(tmp_path):
    """.ci/run exports STACKCTL_REQUIRE_ALL=1 and tests read STACKCTL_DEV_CACHE: stackctl must not refuse them."""
    (tmp_path / "stack.yaml").write_text("preset: metrics\n")
    result = run_subprocess("render", cwd=tmp_path, env={"STACKCTL_REQUIRE_ALL": "1", "STACKCTL_DEV_CACHE": "/tmp/x"})
    assert result.code == 0, result.output


@pytest.mark.parametrize("value", ["a[/b]", "[bold]x"])
def test_error_messages_show_user_text_literally(project: Project, cli, value):
    project.write(f"project: {value!r}\n")
    result = cli("-f", project.file, "render")
    assert_clean_error(result, repr(value))
