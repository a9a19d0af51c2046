"""The GitHub Actions workflows, checked by actionlint (the `tools` tier): syntax, expressions, action inputs and,
where shellcheck is installed, the shell of every `run:` step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

pytestmark = pytest.mark.tools


def actionlint() -> str:
    """The actionlint the test dependencies install into this environment's bin, else one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed (pip install '.[test]' brings it)")
    return found


def test_there_is_a_full_stack_workflow():
    assert ROOT / ".github" / "workflows" / "full-stack.yml" in WORKFLOWS
    text = (ROOT / ".github" / "workflows" / "full-stack.yml").read_text()
    assert "make up" in text and "stackctl verify --deep --json" in text and "upload-artifact" in text


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_actionlint_accepts_the_workflow(workflow):
    result = subprocess.run([actionlint(), "-no-color", str(workflow)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    """The check above means something: a job without runs-on and an unknown expression are errors."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: echo ${{ matrix.nothing }}\n")
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "runs-on" in result.stdout
