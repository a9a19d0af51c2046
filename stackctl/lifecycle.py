"""Stack lifecycle: what 'healthy' means per service, waiting for it, status rows and URLs.

The readiness rules are pure (ContainerInfo + probe result -> ServiceStatus); the waiting loop gets its
inspection, probing and clock from the caller, so tests drive it without Docker.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from stackctl.config import ResolvedService, Stack
from stackctl.docker_engine import ContainerInfo

READY, WAITING, FAILED = "ready", "waiting", "failed"


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


def host_url(stack: Stack, key: str, port: str | None = None) -> str:
    """http://host:port of a service's published port as seen from this machine (bind address, 0.0.0.0 -> loopback)."""
    from stackctl.catalog import SERVICES
    from stackctl.errors import StackError

    svc = stack.services.get(key)
    if svc is None:
        raise StackError(f"{SERVICES[key].title} is not enabled in {stack.file}")
    name = port or (svc.spec.primary_port.name if svc.spec.primary_port else "")
    if name not in svc.host_ports:
        raise StackError(f"{svc.name} does not publish its {name or 'API'} port on the host, so stackctl cannot "
                         "reach its API")
    host = stack.config.bind_address
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{svc.host_ports[name]}"


def probe_url(stack: Stack, svc: ResolvedService) -> str | None:
    """The host URL of a service's external readiness probe (images without an HTTP client inside)."""
    probe = svc.spec.probe
    if probe is None or probe.port not in svc.host_ports:
        return None
    return host_url(stack, svc.key, probe.port) + probe.path


def evaluate(svc: ResolvedService, container: ContainerInfo | None, probe_ok: bool | None = None,
             probe_detail: str = "") -> ServiceStatus:
    """Is this service where `up` wants it? Pure: the rules for every kind of service in one place."""
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
    if container.state == "restarting" or (container.state == "running" and container.restart_count >= 3):
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


Inspector = Callable[[], list[ContainerInfo]]
Prober = Callable[[str], tuple[bool, str]]


def current_status(stack: Stack, containers: Iterable[ContainerInfo], probe: Prober,
                   only: set[str] | None = None) -> list[ServiceStatus]:
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


def wait_until_ready(stack: Stack, inspect: Inspector, probe: Prober, timeout: float,
                     on_update: Callable[[list[ServiceStatus], float], None],
                     only: set[str] | None = None, interval: float = 1.0,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> tuple[bool, list[ServiceStatus]]:
    """Poll until every service is ready (True), one failed or the timeout passed (False)."""
    start = clock()
    while True:
        statuses = current_status(stack, inspect(), probe, only)
        elapsed = clock() - start
        on_update(statuses, elapsed)
        if any(s.phase == FAILED for s in statuses):
            return False, statuses
        if all(s.phase == READY for s in statuses):
            return True, statuses
        if elapsed >= timeout:
            return False, statuses
        sleep(interval)


def urls(stack: Stack) -> list[dict]:
    """Where to open each UI and where to point apps, from the catalog's published ports."""
    host = stack.config.bind_address
    host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
    rows = []
    for svc in stack.services.values():
        for port in svc.spec.ports:
            if port.name in svc.host_ports:
                scheme = port.scheme
                address = f"{host}:{svc.host_ports[port.name]}"
                rows.append({
                    "service": svc.name, "port": port.name, "description": port.description,
                    "url": f"{scheme}://{address}" if scheme in ("http", "https") else address,
                })
    return rows


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"
