"""Stacks and containers built in memory for tests that need no files: a resolved stack from plain data, and
ContainerInfo as the Docker shell would report it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from stackctl.core.config import Stack, load_config, resolve
from stackctl.core.readiness import ContainerInfo


def make_stack(data: dict | None = None, tmp: Path = Path("/tmp/stackctl-test")) -> Stack:
    config = load_config(dict(data or {}), "stack.yaml", environ={})
    return resolve(config, tmp / "stack.yaml")


def container(service: str, state="running", health="healthy", exit_code=0, restarts=0, output=()) -> ContainerInfo:
    return ContainerInfo(id=f"id-{service}", name=f"p-{service}-1", service=service, state=state, health=health,
                         exit_code=exit_code, restart_count=restarts,
                         started_at=datetime.now(timezone.utc) - timedelta(seconds=42), image="img:1",
                         config_hash="h", health_output=tuple(output))


METRICS = {"preset": "metrics"}
