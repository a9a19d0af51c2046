"""What 'ready' means for each kind of service (pure): a container's inspected state plus, for images without a
healthcheck, an external probe's answer -> a ServiceStatus of ready, waiting or failed.

The Docker shell fills ContainerInfo from `docker inspect`; the waiting loop (stackctl.ops.lifecycle) polls these
rules with the clock and probes it is given, so tests drive them without Docker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

from stackctl.core.config import ResolvedService, Stack
from stackctl.core.endpoints import probe_url

READY, WAITING, FAILED = "ready", "waiting", "failed"
CRASH_LOOP_RESTARTS = 3  # restarts after which a running container counts as crash-looping


@dataclass(frozen=True)
class ContainerInfo:
    """One container of the stack as the engine reports it."""

    id: str
    name: str
    service: str  # compose service name
    state: str  # created | running | restarting | exited | paused | dead
    health: str  # healthy | unhealthy | starting | none
    exit_code: int
    restart_count: int
    started_at: datetime | None
    image: str
    config_hash: str
    health_output: tuple[str, ...] = field(default=())  # last healthcheck outputs, newest last

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        if self.state != "running" or self.started_at is None:
            return None
        return ((now or datetime.now(timezone.utc)) - self.started_at).total_seconds()


@dataclass(frozen=True)
class ServiceStatus:
    service: str  # compose name
    phase: str  # ready | waiting | failed
    state: str  # container state, or "missing"
    health: str  # healthy / unhealthy / starting / completed / probe ok / probe failing / none
    detail: str = ""
    container_id: str = ""
    image: str = ""
    uptime_seconds: float | None = None
    health_output: tuple[str, ...] = ()  # the last healthcheck outputs, newest last

    def to_json(self) -> dict:
        return asdict(self)


def evaluate(svc: ResolvedService, container: ContainerInfo | None, probe_ok: bool | None = None,
             probe_detail: str = "") -> ServiceStatus:
    """Is this service where `up` wants it? The rules for every kind of service in one place."""
    spec = svc.spec
    if container is None:
        return ServiceStatus(svc.name, WAITING, "missing", "none", "no container yet")
    base = dict(service=svc.name, state=container.state, container_id=container.id, image=container.image,
                uptime_seconds=container.uptime_seconds(), health_output=container.health_output)
    if spec.oneshot:
        if container.state == "exited":
            if container.exit_code == 0:
                return ServiceStatus(phase=READY, health="completed", **base)
            return ServiceStatus(phase=FAILED, health="failed", detail=f"exited with code {container.exit_code}", **base)
        if container.state == "dead":
            return ServiceStatus(phase=FAILED, health="failed", detail="container is dead", **base)
        return ServiceStatus(phase=WAITING, health="running", **base)
    if container.state in ("exited", "dead"):
        return ServiceStatus(phase=FAILED, health=container.health,
                             detail=f"container {container.state} (exit code {container.exit_code})", **base)
    if container.state == "restarting" or (container.state == "running"
                                           and container.restart_count >= CRASH_LOOP_RESTARTS):
        return ServiceStatus(phase=FAILED, health=container.health,
                             detail=f"crash loop: restarted {container.restart_count} times", **base)
    if container.state != "running":
        return ServiceStatus(phase=WAITING, health=container.health, detail=f"container {container.state}", **base)
    if spec.healthcheck is not None:
        if container.health == "healthy":
            return ServiceStatus(phase=READY, health="healthy", **base)
        if container.health == "unhealthy":
            last = container.health_output[-1] if container.health_output else ""
            return ServiceStatus(phase=FAILED, health="unhealthy", detail=last, **base)
        return ServiceStatus(phase=WAITING, health=container.health or "starting", **base)
    if spec.probe is not None:
        if probe_ok:
            return ServiceStatus(phase=READY, health="probe ok", **base)
        return ServiceStatus(phase=WAITING, health="probe failing", detail=probe_detail, **base)
    return ServiceStatus(phase=READY, health="none", **base)


Prober = Callable[[str], tuple[bool, str]]


def current_status(stack: Stack, containers: Iterable[ContainerInfo], probe: Prober,
                   only: set[str] | None = None) -> list[ServiceStatus]:
    """Every enabled service's status (or those named in `only`), probing only running containers that need it."""
    by_service = {c.service: c for c in containers}
    statuses = []
    for svc in stack.services.values():
        if only and svc.name not in only:
            continue
        container = by_service.get(svc.name)
        probe_ok, detail = None, ""
        url = probe_url(stack, svc)
        if url and container is not None and container.state == "running":
            probe_ok, detail = probe(url)
        statuses.append(evaluate(svc, container, probe_ok, detail))
    return statuses
