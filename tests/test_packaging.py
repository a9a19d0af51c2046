"""The installed (non-editable) package carries its templates: a wheel renders the same bundle as the checkout."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from stackctl.shells.stackfile import load_stack
from stackctl.core.render import render_bundle

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.tools
def test_wheel_install_renders_the_same_bundle(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(wheels)],
                   check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("stackctl-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # Dependencies come from the environment running the tests (a venv's own site-packages, not the system's).
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "outer-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True)
    project = tmp_path / "project"
    project.mkdir()
    run = lambda *args: subprocess.run([str(python), "-m", "stackctl", *args], cwd=project, capture_output=True,
                                       text=True)
    located = subprocess.run([str(python), "-c", "import stackctl.core.render as r; print(r.asset_root())"],
                             cwd=project, capture_output=True, text=True, check=True).stdout.strip()
    assert "_assets" in located and str(ROOT) not in located  # the installed copy, not this checkout
    assert run("init").returncode == 0
    result = run("render", "--out", str(project / "build"))
    assert result.returncode == 0, result.stderr
    expected = render_bundle(load_stack(project / "stack.yaml"))
    written = {p.relative_to(project / "build").as_posix(): p.read_bytes()
               for p in (project / "build").rglob("*") if p.is_file() and p.name != ".stackctl-bundle.json"}
    assert written == expected
