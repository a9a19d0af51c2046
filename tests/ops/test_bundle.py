"""Preparing the bundle: render, check in a staging directory, then write. A failure at any step leaves the previous
bundle and the state directory exactly as they were (bytes and permissions), and a first run that fails leaves
nothing at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stackctl.core.checks import FAILED, CheckResult
from stackctl.core.errors import StackError
from stackctl.ops import bundle as bundle_ops
from stackctl.ops.bundle import prepare_bundle, validate_plan
from stackctl.ops.context import Runtime
from tests.conftest import Project, init_text

MISSING_RECEIVER = ("alerting:\n  receivers:\n    - name: ops\n      type: slack\n"
                    "      api_url: {from_file: no-such-file}\n")


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under `root`: content and permission bits."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (path.read_bytes() if stat.S_ISREG(info.st_mode) else None,
                                                  stat.S_IMODE(info.st_mode))
    return found


def test_a_failed_validation_leaves_the_bundle_and_state_byte_identical(project: Project, cli):
    project.write(init_text("metrics"))
    assert cli("-f", project.file, "render").code == 0
    before = snapshot(project.dir)
    assert any(p.startswith(".stackctl/secrets/") for p in before)
    # The full preset needs more secrets and files; the receiver's secret file is missing, so validation fails.
    project.write("preset: full\n" + MISSING_RECEIVER)
    stack_text = project.file.read_bytes()

    result = cli("-f", project.file, "validate", "--json")
    assert result.code == 1, result.output
    assert '"written": false' in result.stdout and "no-such-file" in result.stdout
    with pytest.raises(StackError, match="no-such-file cannot be read"):
        prepare_bundle(project.load(), project.build, Runtime(), tools=True)

    after = snapshot(project.dir)
    assert {k: v for k, v in after.items() if k != "stack.yaml"} == {k: v for k, v in before.items()
                                                                     if k != "stack.yaml"}
    assert project.file.read_bytes() == stack_text


def test_a_first_run_that_fails_writes_nothing(project: Project):
    project.write("preset: metrics\n" + MISSING_RECEIVER)
    with pytest.raises(StackError, match=r"alerting.receivers\[0\].api_url: .*no-such-file cannot be read"):
        prepare_bundle(project.load(), project.build, Runtime(), tools=True)
    assert project.written() == set(), "no bundle, no state directory, no secret"


def test_a_failed_structural_check_writes_no_bundle_and_no_secret(project: Project, monkeypatch):
    def inconsistent(stack, plan, secrets):
        return [CheckResult("references to enabled services", FAILED, "stackctl", "compose.yaml: broken")]

    monkeypatch.setattr(bundle_ops, "structural_checks", inconsistent)
    with pytest.raises(StackError, match="compose.yaml: broken"):
        prepare_bundle(project.load(), project.build, Runtime(), tools=False)
    assert project.written() == set()


def test_validation_renders_for_the_real_bundle_but_writes_only_a_staging_copy(project: Project, tmp_path):
    validation = validate_plan(project.load(), project.build, Runtime(), tools=False)
    assert not validation.failed() and validation.new_secrets
    assert project.written() == set()
    prepared = bundle_ops.apply(validation, project.load(), project.build, Runtime())
    assert set(prepared.generated) == set(validation.new_secrets)
    assert (project.build / "compose.yaml").read_bytes() == validation.plan["compose.yaml"]
