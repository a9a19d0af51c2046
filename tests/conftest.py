"""Shared fixtures: a project directory with a stack file, the CLI run in-process or as a subprocess, stacks
loaded from YAML text, and the real validators (promtool, amtool from Debian packages; docker compose) on PATH.

Nothing here writes into the repository: every project lives under pytest's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackctl.core.config import Stack
from stackctl.core.secrets import missing_values
from stackctl.shells.stackfile import load_stack
from stackctl.shells.state import SecretStore

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "stackctl" / "stack.yaml.template"


def init_text(preset: str = "full") -> str:
    """What `stackctl init --preset PRESET` writes."""
    return TEMPLATE.read_text().replace("{{ preset }}", preset)


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without any STACKCTL_* variable (a developer's shell must not change what tests see)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_")}
    env.update(extra or {})
    return env


def stack_from(text: str, directory: Path, env: dict[str, str] | None = None, sets: list[str] | None = None,
               name: str = "stack.yaml") -> Stack:
    """Write `text` as the stack file in `directory` and load it; `env` holds the only STACKCTL_* variables."""
    file = directory / name
    file.write_text(text)
    return load_stack(file, environ=dict(env or {}), sets=sets)


def stored_secrets(stack: Stack) -> SecretStore:
    """The stack's state directory holding every generated secret, as `stackctl render` leaves it."""
    store = SecretStore.for_stack(stack)
    store.write_all(missing_values(stack, store.exists))
    return store


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative posix path -> bytes); {} when `root` does not exist."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Project:
    """A temporary project: a stack file, and the places stackctl writes next to it."""

    dir: Path

    @property
    def file(self) -> Path:
        return self.dir / "stack.yaml"

    @property
    def build(self) -> Path:
        return self.dir / "build"

    @property
    def state(self) -> Path:
        return self.dir / ".stackctl"

    def write(self, text: str) -> Path:
        self.file.write_text(text)
        return self.file

    def load(self, env: dict[str, str] | None = None, sets: list[str] | None = None) -> Stack:
        return load_stack(self.file, environ=dict(env or {}), sets=sets)

    def written(self) -> set[str]:
        """Names of everything in the project directory besides the stack file."""
        return {p.name for p in self.dir.iterdir()} - {self.file.name}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project directory holding `stack.yaml` as `stackctl init` writes it (preset full)."""
    proj = Project(tmp_path / "proj")
    proj.dir.mkdir()
    proj.write(init_text())
    return proj


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _run_cli_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                        env: dict[str, str] | None, cwd: Path | None, runtime=None) -> CliResult:
    from stackctl import cli

    with monkeypatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("STACKCTL_")]:
            patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        patch.setattr(sys, "argv", ["stackctl", *args])
        capsys.readouterr()  # drop anything printed before
        code: int | str | None = 0
        try:
            cli.main(runtime=runtime)
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
    if code is None:
        code = 0
    assert isinstance(code, int), f"exit code {code!r} is not a number"
    return CliResult(code, captured.out, captured.err)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., CliResult]:
    """Run the CLI in-process through `stackctl.cli.main` (as the console script does): cli("render", "-f", ...).

    Only the STACKCTL_* variables given in `env` are set; `cwd` changes directory for the call; `runtime` (a
    stackctl.ops.context.Runtime) replaces the real shells.
    """

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, runtime=None) -> CliResult:
        return _run_cli_in_process([str(a) for a in args], monkeypatch, capsys, env, cwd, runtime)

    return run


def run_subprocess(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """`python -m stackctl ARGS` in a fresh interpreter: the end-to-end path, real sys.exit and all."""
    proc = subprocess.run([sys.executable, "-m", "stackctl", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=clean_environ(env), stdin=subprocess.DEVNULL)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# --- the real validators ----------------------------------------------------------------------------------------


def require_or_skip(reason: str) -> None:
    """A tool-based test cannot run: in CI (env CI set) that is a failure, elsewhere a skip with the reason."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: tool tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def debian_tools_dir() -> Path | None:
    """promtool and amtool unpacked from Debian packages (cached under ~/.cache/stackctl-dev), or None."""
    try:
        from tests.support.debian import tools_bin_dir

        return tools_bin_dir()
    except Exception:  # no apt, no network, no cache: reported by the `tools` fixture
        return None


@dataclass(frozen=True)
class Tools:
    bin_dir: Path | None
    path: str  # PATH with promtool and amtool on it


@pytest.fixture
def tools(debian_tools_dir: Path | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tools]:
    """PATH with promtool, amtool and Docker Compose v2 on it; fails in CI, skips elsewhere, when one is missing."""
    path = os.environ.get("PATH", "")
    if debian_tools_dir is not None:
        path = f"{debian_tools_dir}{os.pathsep}{path}"
    monkeypatch.setenv("PATH", path)
    missing = [tool for tool in ("promtool", "amtool") if shutil.which(tool, path=path) is None]
    if missing:
        require_or_skip(f"{' and '.join(missing)} not found (python -m tests.support.debian --tools-path "
                        "unpacks them from Debian packages)")
    from stackctl.shells.compose import find_compose
    from stackctl.core.errors import StackError

    try:
        find_compose()
    except StackError as error:
        require_or_skip(f"Docker Compose v2 not available: {error.message}")
    yield Tools(debian_tools_dir, path)


@pytest.fixture
def path_without_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only docker (when installed): promtool and amtool are missing for certain."""
    bin_dir = tmp_path / "bin-without-tools"
    bin_dir.mkdir()
    docker = shutil.which("docker")
    if docker:
        (bin_dir / "docker").symlink_to(docker)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir
