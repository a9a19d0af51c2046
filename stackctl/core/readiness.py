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
from stackctl.core.swarm import ONESHOT_ATTEMPTS, placement_label

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
class NodeTask:
    """Where one task of a Swarm service runs, and how it is (status per node of per-node services)."""

    node: str  # the node's hostname
    state: str  # Swarm task state: pending, starting, running, failed, ...
    detail: str = ""


@dataclass(frozen=True)
class ServiceStatus:
    service: str  # compose name
    phase: str  # ready | waiting | failed
    state: str  # container state, or "missing"; on Swarm "running"/"starting"/... of its tasks
    health: str  # healthy / unhealthy / starting / completed / probe ok / probe failing / none
    detail: str = ""
    container_id: str = ""
    image: str = ""
    uptime_seconds: float | None = None
    health_output: tuple[str, ...] = ()  # the last healthcheck outputs, newest last
    # On Swarm: running and desired tasks, and for per-node (global) services where each task is.
    running: int | None = None
    desired: int | None = None
    nodes: tuple[NodeTask, ...] = ()

    def to_json(self) -> dict:
        data = asdict(self)
        if self.desired is None:  # a compose container: no tasks to count
            for key in ("running", "desired", "nodes"):
                data.pop(key)
        else:
            data["nodes"] = list(data["nodes"])
        return data


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


# --- Docker Swarm: tasks instead of containers -----------------------------------------------------------------------

# Task states on their way to running; anything else that is not running or complete has ended.
TASK_STARTING = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting")
TASK_FAILED = ("failed", "rejected", "orphaned")
# The scheduler's words when no node satisfies a placement constraint (a missing node label). Its other "no suitable
# node" reasons pass: a host-mode port still held by the task being replaced, memory freed by a stopping task.
NO_NODE = "scheduling constraints not satisfied"


@dataclass(frozen=True)
class TaskInfo:
    """One task of a Swarm service as the engine reports it. A task with a healthcheck becomes `running` only once
    its container is healthy (Swarm holds it in `starting` until then), so running means ready."""

    node: str  # hostname of its node ("" before it is scheduled)
    state: str  # Status.State
    desired: str  # DesiredState: running while Swarm wants it, shutdown once replaced or stopped
    error: str = ""  # Status.Err
    message: str = ""  # Status.Message
    exit_code: int | None = None
    since: datetime | None = None  # when it entered its state
    created: datetime | None = None
    current: bool = True  # runs the service's present spec (False: an older spec still being replaced)
    container_id: str = ""


@dataclass(frozen=True)
class SwarmServiceInfo:
    """One service of a deployed stack: its mode, the replicas wanted, its tasks and its rolling update."""

    name: str  # compose service name (the Swarm service is <project>_<name>)
    mode: str  # replicated | global
    replicas: int | None
    image: str
    tasks: tuple[TaskInfo, ...] = ()
    update_state: str = ""  # UpdateStatus.State: updating, completed, paused, rollback_*, or ""
    update_message: str = ""


def _newest(tasks) -> TaskInfo | None:
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return max(tasks, key=lambda t: t.created or epoch, default=None)


def _problem(task: TaskInfo) -> str:
    return task.error or task.message or task.state


def evaluate_swarm(svc: ResolvedService, info: SwarmServiceInfo | None, placement: str | None = None,
                   now: datetime | None = None) -> ServiceStatus:
    """Is this Swarm service where `up` wants it: its desired tasks running (and so healthy), a setup job complete.
    `placement` is the node label it is placed by, named when no node carries it."""
    if info is None:
        return ServiceStatus(svc.name, WAITING, "missing", "none", "not deployed yet", running=0, desired=0)
    spec = svc.spec
    now = now or datetime.now(timezone.utc)
    wanted = [t for t in info.tasks if t.desired in ("running", "ready")]
    running = [t for t in wanted if t.state == "running" and t.current]
    desired = info.replicas if info.mode == "replicated" else len(wanted)
    if spec.oneshot:
        desired = 1
    failures = [t for t in info.tasks if t.state in TASK_FAILED and t.current]
    nodes = tuple(NodeTask(t.node or "(unscheduled)", t.state, t.error if t.state != "running" else "")
                  for t in sorted(wanted, key=lambda t: t.node)) if info.mode == "global" else ()
    oldest = min((t.since for t in running if t.since), default=None)
    base = dict(service=svc.name, image=info.image, running=len(running), desired=desired, nodes=nodes,
                uptime_seconds=(now - oldest).total_seconds() if oldest else None)
    if spec.oneshot:
        last = _newest([t for t in info.tasks if t.current])
        if last is not None and last.state == "complete":
            return ServiceStatus(phase=READY, state="complete", health="completed", **base)
        if last is not None and last.state in TASK_FAILED and len(failures) >= ONESHOT_ATTEMPTS:
            return ServiceStatus(phase=FAILED, state=last.state, health="failed",
                                 detail=f"gave up after {len(failures)} attempts: {_problem(last)}", **base)
        state = last.state if last else "missing"
        return ServiceStatus(phase=WAITING, state=state, health="running",
                             detail=_problem(last) if last and last.state in TASK_FAILED else "", **base)
    stuck = next((t for t in wanted if t.state == "pending" and NO_NODE in t.error), None)
    if stuck is not None:
        detail = (f"no node carries the label {placement} that places it (docker node update --label-add "
                  f"{placement} NODE)") if placement else stuck.error
        return ServiceStatus(phase=FAILED, state="pending", health="none", detail=detail, **base)
    if info.update_state in ("paused", "rollback_paused"):
        return ServiceStatus(phase=FAILED, state="update paused", health="none",
                             detail=info.update_message or "Swarm paused its rolling update", **base)
    if len(failures) >= CRASH_LOOP_RESTARTS:
        last = _newest(failures)
        return ServiceStatus(phase=FAILED, state=last.state, health="unhealthy" if spec.healthcheck else "none",
                             detail=f"crash loop: {len(failures)} tasks ended since the last deploy; last: "
                                    f"{_problem(last)}", **base)
    if desired and len(running) >= desired:
        return ServiceStatus(phase=READY, state="running", health="healthy" if spec.healthcheck else "running",
                             **base)
    if not wanted:
        return ServiceStatus(phase=WAITING, state="missing", health="none", detail="no task yet", **base)
    pending = [t for t in wanted if not (t.state == "running" and t.current)]
    states = sorted({t.state if t.current else "updating" for t in pending})
    last_failure = _newest(failures)
    return ServiceStatus(phase=WAITING, state=", ".join(states), health="starting",
                         detail=f"last task ended: {_problem(last_failure)}" if last_failure else "", **base)


def swarm_status(stack: Stack, services: Iterable[SwarmServiceInfo], only: set[str] | None = None,
                 now: datetime | None = None) -> list[ServiceStatus]:
    """Every enabled service's status on Swarm (or those named in `only`)."""
    by_name = {s.name: s for s in services}
    return [evaluate_swarm(svc, by_name.get(svc.name), placement_label(stack, svc), now)
            for svc in stack.services.values() if not only or svc.name in only]
