"""FAKE: a small stand-in following the Docker Compose CLI and the Docker engine's container state, not the real
tools.

`FakeCompose` is stackctl's real Compose shell (so every command line is built by the real code) with `run`
replaced: it records each command line with a copy of the environment it would run with, and an `up` recreates the
named services' containers in `FakeEngine`, which answers `containers(project)` and `volumes(project)` like
stackctl.shells.docker_engine.DockerEngine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from pathlib import Path

from stackctl.core.readiness import ContainerInfo
from stackctl.core.versions import Version
from stackctl.shells.compose import Compose, ComposeTool
from stackctl.shells.runner import Completed, ToolError

TOOL = ComposeTool(("docker", "compose"), Version(2, 40, 3))

_ids = itertools.count(1)


def container(service: str, state: str = "running", health: str = "healthy", exit_code: int = 0) -> ContainerInfo:
    return ContainerInfo(id=f"c{next(_ids):011d}", name=f"stackctl-{service}-1", service=service, state=state,
                         health=health, exit_code=exit_code, restart_count=0,
                         started_at=datetime.now(timezone.utc), image=f"{service}:test", config_hash="")


@dataclass
class FakeEngine:
    running: dict[str, ContainerInfo] = field(default_factory=dict)  # by compose service name
    volume_names: list[str] = field(default_factory=list)
    oneshots: set[str] = field(default_factory=set)  # services that run to completion

    def ping(self) -> None:
        pass

    def containers(self, project: str) -> list[ContainerInfo]:
        return sorted(self.running.values(), key=lambda c: c.service)

    def volumes(self, project: str) -> list[str]:
        return sorted(self.volume_names)

    def recreate(self, service: str, start: bool) -> None:
        if not start:
            self.running[service] = container(service, state="created", health="none")
        elif service in self.oneshots:
            self.running[service] = container(service, state="exited", health="none")
        else:
            self.running[service] = container(service)


@dataclass
class Call:
    argv: list[str]
    env: dict[str, str]
    what: str


class FakeCompose(Compose):
    def __init__(self, engine: FakeEngine, project: str = "stackctl", env: dict[str, str] | None = None):
        super().__init__(Path("/bundle"), project, env=dict(env or {}), tool=TOOL)
        self.engine = engine
        self.calls: list[Call] = []
        self.fail: str | None = None  # stderr of a failing run

    def for_bundle(self, stack, bundle, env: dict[str, str]) -> "FakeCompose":
        """A Runtime.make_compose: this fake, with the environment the real shell would get."""
        self.env = dict(env)
        return self

    def run(self, argv: list[str], what: str, timeout: float | None = 600, capture: bool = True) -> Completed:
        self.calls.append(Call(list(argv), dict(self.env), what))
        if self.fail is not None:
            raise ToolError(f"{what} failed", Completed(tuple(argv), 1, "", self.fail))
        rest = argv[len(self.base()):]
        if rest and rest[0] == "up":
            services = [a for a in rest[1:] if not a.startswith("-")]
            for service in services:
                self.engine.recreate(service, start="--no-start" not in rest)
        return Completed(tuple(argv), 0, "", "")

    def services_in(self, call: Call) -> list[str]:
        return [a for a in call.argv[len(self.base()) + 1:] if not a.startswith("-")]


def stopped(info: ContainerInfo) -> ContainerInfo:
    return replace(info, state="exited", health="none")
