"""The Runtime: every shell an operation works through, in one object. The CLI builds the real one; tests pass
one with fakes (an engine, a prober, a clock) instead of patching module globals."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stackctl.clients.http import probe as http_probe
from stackctl.core.config import Stack
from stackctl.shells.compose import Compose, ComposeTool, SwarmStack, find_compose
from stackctl.shells.docker_engine import DockerEngine
from stackctl.shells.fs import template_cache
from stackctl.shells.state import SecretStore


@dataclass
class Runtime:
    engine: DockerEngine = field(default_factory=DockerEngine)  # connects on first use
    probe: Callable[[str], tuple[bool, str]] = http_probe
    compose_tool: Callable[[], ComposeTool] = find_compose
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 1.0  # seconds between two looks while waiting for health
    template_cache: object | None = field(default_factory=template_cache)  # compiled templates, kept between runs
    # Builds the Compose shell for a bundle (stack, bundle, env); tests pass a fake with the same methods.
    make_compose: Callable[[Stack, Path, dict[str, str]], Compose] | None = None
    # Builds the `docker stack` shell for a bundle rendered for Swarm (stack, bundle, env); tests pass a fake.
    make_swarm: Callable[[Stack, Path, dict[str, str]], SwarmStack] | None = None

    def store(self, stack: Stack) -> SecretStore:
        return SecretStore.for_stack(stack)

    def compose(self, stack: Stack, bundle: Path, env: dict[str, str] | None = None) -> Compose:
        """Compose commands for the bundle; `env` defaults to every secret's value (read now)."""
        if env is None:
            env = self.store(stack).compose_env(stack, self.environ)
        if self.make_compose is not None:
            return self.make_compose(stack, bundle, env)
        return Compose(bundle, stack.config.project, env=env, tool=self.compose_tool())

    def swarm(self, stack: Stack, bundle: Path, env: dict[str, str] | None = None) -> SwarmStack:
        """`docker stack` commands for the bundle; `env` names the stack's Swarm secrets (no value)."""
        if self.make_swarm is not None:
            return self.make_swarm(stack, bundle, dict(env or {}))
        return SwarmStack(bundle, stack.config.project, env=dict(env or {}))
