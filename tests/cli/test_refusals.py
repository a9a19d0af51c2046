"""Every refusal, as the user sees it: exit code 2, one line naming what is wrong, no traceback, no secret text,
and nothing written (no bundle, no state directory, no secret)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Project, init_text

SECRET = "pasted-secret-value-1234567890"


def assert_refused(result, *words: str) -> str:
    assert result.code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert SECRET not in result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["render"], ["validate"]])
@pytest.mark.parametrize("text, words", [
    ("services:\n  kibana:\n    port: 5044\n", ["stack.yaml:3", "services.kibana.port", "logstash (beats)"]),
    ("rules:\n  runbook_base_url: \"https://wiki/it's\"\n", ["stack.yaml:2", "rules.runbook_base_url"]),
    ("state_dir: \"\"\n", ["state_dir", "must name a directory"]),
    ("rules:\n  host:\n    cpu_warning: .nan\n", ["rules.host.cpu_warning", "finite"]),
    (f"alerting:\n  receivers:\n    - {{name: s, type: slack, api_url: {{from_env: '{SECRET}'}}}}\n",
     ["alerting.receivers[0].api_url.from_env"]),
])
def test_bad_stack_files_are_refused_and_nothing_is_written(project: Project, cli, command, text, words):
    project.write(text)
    assert_refused(cli("-f", project.file, *command), *words)
    assert project.written() == set()


@pytest.mark.parametrize("state_dir, words", [
    (".", "the stack file's directory"), ("..", "the stack file's directory"),
    ("build/configs/prometheus", "overlaps the bundle directory"),
    ("existing", "was not created by stackctl"), ("a-file", "is not a directory"), ("link", "symbolic link"),
])
def test_a_state_dir_stackctl_must_not_own_is_refused(project: Project, cli, state_dir, words):
    (project.dir / "existing").mkdir()
    (project.dir / "existing" / "notes.txt").write_text("x")
    (project.dir / "a-file").write_text("x")
    (project.dir / "link").symlink_to(project.dir / "existing")
    project.write(f"preset: metrics\nstate_dir: {state_dir}\n")
    before = {p.name: p.stat().st_mode for p in project.dir.iterdir()}
    assert_refused(cli("-f", project.file, "render"), "state_dir", words)
    assert {p.name: p.stat().st_mode for p in project.dir.iterdir()} == before
    assert not (project.dir / "existing" / ".gitignore").exists()


def test_an_out_that_is_a_file_is_refused_before_any_secret_is_made(project: Project, cli):
    out = project.dir / "out"
    out.write_text("x")
    assert_refused(cli("-f", project.file, "render", "--out", out), "is not a directory")
    assert project.written() == {"out"}


@pytest.mark.parametrize("kind", ["dev-null", "directory", "dev-zero"])
def test_a_stack_file_that_is_not_a_regular_file_is_refused(tmp_path, cli, kind):
    target = {"dev-null": Path("/dev/null"), "dev-zero": Path("/dev/zero"), "directory": tmp_path}[kind]
    assert_refused(cli("-f", target, "render", "--out", tmp_path / "out"), "not a regular file")
    assert not (tmp_path / "out").exists() and not Path("/dev/build").exists()


def test_init_onto_a_directory_is_refused(tmp_path, cli):
    assert_refused(cli("-f", tmp_path, "init", "--force"), "is a directory")


@pytest.mark.parametrize("kind, words", [("directory", "not a regular file"), ("dev-zero", "not a regular file"),
                                         ("large", "at most 64 KiB"), ("binary", "not UTF-8"),
                                         ("fifo", "not a regular file")])
def test_user_secret_files_that_are_not_text_are_refused_by_validate(project: Project, cli, kind, words):
    path = project.dir / "hook"
    if kind == "directory":
        path.mkdir()
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "large":
        path.write_bytes(b"x" * (50 * 1024 * 1024))
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00")
    elif kind == "fifo":
        os.mkfifo(path)
    project.write(f"preset: metrics\nalerting:\n  receivers:\n    - name: s\n      type: slack\n"
                  f"      api_url: {{from_file: {path}}}\n")
    result = cli("-f", project.file, "validate", "--json")
    assert result.code == 1, result.output
    assert words in result.stdout and '"written": false' in result.stdout
    assert project.written() <= {"hook"}


def test_an_environment_variable_naming_no_setting_is_refused(project: Project, cli):
    assert_refused(cli("-f", project.file, "render", env={"STACKCTL_SERVICES____PORT": "1"}),
                   "STACKCTL_SERVICES____PORT", "names no setting")
    assert_refused(cli("-f", project.file, "render", env={"STACKCTL_": "1"}), "STACKCTL_")
    assert project.written() == set()


def test_a_secret_given_with_set_is_not_repeated(project: Project, cli):
    assert_refused(cli("-f", project.file, "--set", f"alerting.receivers={SECRET}", "render"), "alerting.receivers")
    assert_refused(cli("-f", project.file, "--set", SECRET, "render"), "--set")


def test_an_empty_generated_secret_is_refused_everywhere(project: Project, cli):
    project.write(init_text("metrics"))
    assert cli("-f", project.file, "render").code == 0
    (project.state / "secrets" / "grafana_admin_password").write_text("")
    failed = cli("-f", project.file, "validate", "--json")
    assert failed.code == 1 and "grafana_admin_password" in failed.stdout and "is empty" in failed.stdout
    assert_refused(cli("-f", project.file, "secrets", "show", "grafana_admin_password"), "is empty")
    assert_refused(cli("-f", project.file, "render"), "grafana_admin_password", "is empty")


def test_secrets_list_shows_a_user_secret_from_a_file_as_that_file(project: Project, cli):
    (project.dir / "hook").write_text(SECRET)
    project.write("preset: metrics\nalerting:\n  receivers:\n    - {name: s, type: slack, api_url: {from_file: hook}}\n")
    result = cli("-f", project.file, "secrets", "list", "--json")
    assert result.code == 0 and SECRET not in result.output
    import json

    entry = {e["name"]: e for e in json.loads(result.stdout)["secrets"]}["alertmanager_s_api_url"]
    assert entry["present"] is True and entry["origin"] == "user"
    assert entry["source"] == f"file {project.dir / 'hook'}"
