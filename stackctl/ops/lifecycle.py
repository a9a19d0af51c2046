"""Bringing the stack up and down, waiting for health, and explaining a failure: the operations behind `up`,
`down`, `status` and `logs`, callable without the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stackctl.core import catalog
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.readiness import FAILED, READY, ContainerInfo, ServiceStatus, current_status
from stackctl.core.render import COMPOSE_FILE
from stackctl.core.schema import closest
from stackctl.ops.bundle import PreparedBundle, is_current, prepare_bundle
from stackctl.ops.context import Runtime
from stackctl.ops.doctor import image_checks
from stackctl.ops import swarm
from stackctl.ops.provision import after_up
from stackctl.shells.runner import ToolError
from stackctl.shells.state import JournalStore

Progress = Callable[[list[ServiceStatus], float], None]
LOG_TAIL = 30  # log lines shown for each service that failed


def _quiet(statuses: list[ServiceStatus], elapsed: float) -> None:
    pass


def service_names(stack: Stack, names: list[str]) -> list[str]:
    """Compose names for the services the user named (stack.yaml key or compose name), checked."""
    result = []
    for name in names:
        try:
            spec = catalog.spec_for(name)
        except KeyError:
            hint = closest(name, [s.name for s in catalog.CATALOG])
            raise StackError(f"unknown service {name!r}" + (f" ({hint})" if hint else "")) from None
        if spec.key not in stack.services:
            raise StackError(f"{spec.name} is not enabled in {stack.file}")
        result.append(spec.name)
    return result


def wait_until_ready(stack: Stack, inspect: Callable[[], list[ContainerInfo]], probe, timeout: float,
                     on_update: Progress = _quiet, only: set[str] | None = None, interval: float = 1.0,
                     clock: Callable[[], float] | None = None,
                     sleep: Callable[[float], None] | None = None) -> tuple[bool, list[ServiceStatus]]:
    """Poll the containers until every service is ready (True), one failed or the timeout passed (False)."""
    return wait_for(lambda: current_status(stack, inspect(), probe, only), timeout, on_update, interval, clock, sleep)


def wait_for(look: Callable[[], list[ServiceStatus]], timeout: float, on_update: Progress = _quiet,
             interval: float = 1.0, clock: Callable[[], float] | None = None,
             sleep: Callable[[float], None] | None = None) -> tuple[bool, list[ServiceStatus]]:
    """Poll `look` until every status is ready (True), one failed or the timeout passed (False)."""
    import time

    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    start = clock()
    while True:
        statuses = look()
        elapsed = clock() - start
        on_update(statuses, elapsed)
        if any(s.phase == FAILED for s in statuses):
            return False, statuses
        if all(s.phase == READY for s in statuses):
            return True, statuses
        if elapsed >= timeout:
            return False, statuses
        sleep(min(interval, max(timeout - elapsed, 0.0)))


def statuses(stack: Stack, runtime: Runtime, only: set[str] | None = None) -> list[ServiceStatus]:
    """Every enabled service's status: its container's, or on Swarm its tasks'."""
    if stack.on_swarm:
        return swarm.statuses(stack, runtime, only)
    return current_status(stack, runtime.engine.containers(stack.config.project), runtime.probe, only)


def explain_failure(runtime: Runtime, statuses: list[ServiceStatus], tail: int = LOG_TAIL,
                    stack: Stack | None = None) -> str:
    """For each service that is not ready: its state, its last healthcheck outputs and its last log lines (on
    Swarm, of the service: `stack` given with target swarm)."""
    lines = []
    on_swarm = stack is not None and stack.on_swarm
    for s in statuses:
        if s.phase == READY:
            continue
        lines.append(f"--- {s.service}: {s.state}, {s.health}" + (f" ({s.detail})" if s.detail else ""))
        lines.extend(f"  on {task.node}: {task.state}" + (f" ({task.detail})" if task.detail else "")
                     for task in s.nodes if task.state != "running")
        outputs = [o for o in s.health_output if o]
        if outputs:
            lines.append(f"last healthcheck output of {s.service}:")
            lines.extend(f"  {line}" for output in outputs for line in output.splitlines()[-5:])
        if on_swarm and s.state != "missing":
            lines.append(f"last {tail} log lines of {s.service}:")
            lines.append(runtime.engine.service_logs(stack.config.project, s.service, tail=tail).rstrip()
                         or "(no output)")
        elif s.container_id:
            lines.append(f"last {tail} log lines of {s.service}:")
            lines.append(runtime.engine.logs(s.container_id, tail=tail).rstrip() or "(no output)")
    return "\n".join(lines)


@dataclass
class UpResult:
    statuses: list[ServiceStatus]
    noop: bool  # the bundle was current and every service ready: compose was not called
    prepared: PreparedBundle | None = None
    warnings: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # Swarm configs and secrets of earlier versions, removed


def bring_up(stack: Stack, bundle: Path, runtime: Runtime, services: list[str] = (), timeout: float = 300,
             on_progress: Progress = _quiet, on_event: Callable[[str], None] = lambda message: None) -> UpResult:
    """Render and validate (writing only what passed), start with compose, wait until healthy, then run the
    catalog's after-up provisioning. Raises StackError (exit 1) naming the services that did not become healthy,
    with their healthcheck output and logs."""
    names = service_names(stack, list(services))
    only = set(names) or None
    journal = JournalStore.for_stack(stack).load()
    if journal is not None:  # a half-swapped volume must not be started: finish or roll back first
        raise StackError(f"a restore ({journal.id}, phase {journal.phase}) did not finish, so the stack is not started:"
                         " run 'stackctl restore --resume' to finish it or 'stackctl restore --rollback' to put the "
                         "previous data back")
    runtime.engine.ping()  # fail fast, before anything is written, when the engine is unreachable
    if stack.on_swarm:
        return _bring_up_on_swarm(stack, bundle, runtime, names, timeout, on_progress, on_event)
    if is_current(stack, bundle, runtime):
        now = statuses(stack, runtime, only)
        if all(s.phase == READY for s in now):
            return UpResult(now, noop=True)
    _refuse_missing_images(stack, runtime)
    prepared = prepare_bundle(stack, bundle, runtime, tools=True)
    compose = runtime.compose(stack, bundle)
    on_event("starting " + ", ".join(names or [s.name for s in stack.services.values()]))
    try:
        compose.run(compose.up_argv(names), what="docker compose up", timeout=max(timeout, 600))
    except ToolError as error:
        raise _compose_failure(error, stack, runtime, only) from None
    ok, final = wait_until_ready(stack, lambda: runtime.engine.containers(stack.config.project), runtime.probe,
                                 timeout, on_progress, only=only, interval=runtime.poll_interval,
                                 clock=runtime.clock, sleep=runtime.sleep)
    if not ok:
        timed_out = not any(s.phase == FAILED for s in final)
        bad = [s.service for s in final if s.phase != READY]
        message = (f"timed out after {timeout:.0f}s waiting for " if timed_out else "not healthy: ") + ", ".join(bad)
        raise StackError(message, details=explain_failure(runtime, final), exit_code=1)
    warnings = after_up(stack, runtime) if only is None else []
    return UpResult(final, noop=False, prepared=prepared, warnings=warnings)


def _refuse_missing_images(stack: Stack, runtime: Runtime) -> None:
    missing = [c for c in image_checks(stack, runtime.engine) if c.status != "ok"]
    if missing:
        raise StackError("images are missing and cannot be pulled; nothing was started",
                         details="\n".join(f"{c.name}: {c.found}\n  fix: {c.fix}" for c in missing))


def _bring_up_on_swarm(stack: Stack, bundle: Path, runtime: Runtime, names: list[str], timeout: float,
                       on_progress: Progress, on_event: Callable[[str], None]) -> UpResult:
    """bring_up for target: swarm: the engine must be a manager and every placing label carried by a node before
    anything is written; then secrets, `docker stack deploy`, the wait on tasks, and the removal of the configs and
    secrets of earlier versions."""
    if names:
        raise StackError("with target: swarm, 'up' deploys the whole stack (docker stack deploy); run it without "
                         "service names")
    swarm.require_manager(runtime)
    store = runtime.store(stack)
    if is_current(stack, bundle, runtime):
        try:
            deployed = swarm.is_deployed(stack, bundle, runtime, store.values(stack, runtime.environ))
        except StackError:  # a user-supplied secret is unreadable: the validation below says so
            deployed = False
        now = swarm.statuses(stack, runtime)
        if deployed and all(s.phase == READY for s in now):
            return UpResult(now, noop=True)
    _refuse_missing_images(stack, runtime)
    swarm.check_placement(stack, runtime.engine.nodes())
    prepared = prepare_bundle(stack, bundle, runtime, tools=True)
    on_event(f"deploying {len(stack.services)} services to the swarm (docker stack deploy)")
    swarm.deploy(stack, bundle, runtime, store.values(stack, runtime.environ))
    ok, final = wait_for(lambda: swarm.statuses(stack, runtime), timeout, on_progress, runtime.poll_interval,
                         runtime.clock, runtime.sleep)
    if not ok:
        timed_out = not any(s.phase == FAILED for s in final)
        bad = [s.service for s in final if s.phase != READY]
        message = (f"timed out after {timeout:.0f}s waiting for " if timed_out else "not healthy: ") + ", ".join(bad)
        raise StackError(message, details=explain_failure(runtime, final, stack=stack), exit_code=1)
    removed = swarm.prune(stack, runtime)
    if removed:
        on_event(f"removed {len(removed)} configs and secrets no service uses any more")
    return UpResult(final, noop=False, prepared=prepared, warnings=after_up(stack, runtime), removed=removed)


def _compose_failure(error: ToolError, stack: Stack, runtime: Runtime, only: set[str] | None) -> StackError:
    """Compose itself waits on `depends_on: condition: service_healthy` and, when a dependency never gets there,
    says only "dependency failed to start". Name the services that failed, with their healthcheck output and log."""
    broken = [s for s in statuses(stack, runtime) if s.phase == FAILED]
    if not broken:
        return error
    compose_said = error.result.output.strip().splitlines()[-3:]
    return StackError("docker compose up stopped: " + ", ".join(
        f"{s.service} is {s.health if s.health in ('unhealthy', 'failed') else s.state}" for s in broken),
        details="\n".join(["docker compose said:", *(f"  {line}" for line in compose_said),
                           explain_failure(runtime, broken)]), exit_code=1)


def stack_volumes(stack: Stack, runtime: Runtime) -> list[str]:
    """The stack's volumes on this machine (on Swarm: on this node)."""
    if stack.on_swarm:
        return runtime.engine.stack_volumes(stack.config.project)
    return runtime.engine.volumes(stack.config.project)


def bring_down(stack: Stack, bundle: Path, runtime: Runtime, volumes: bool = False,
               on_event: Callable[[str], None] = lambda message: None) -> swarm.Removed | None:
    """Stop and remove the stack, keeping its volumes unless `volumes`. On Swarm: the volumes of this node, which
    the result names (other nodes keep theirs)."""
    bundle = require_bundle(bundle)
    if stack.on_swarm:
        swarm.require_manager(runtime)
        return swarm.remove(stack, bundle, runtime, volumes, on_event=on_event)
    compose = runtime.compose(stack, bundle)
    compose.run(compose.down_argv(volumes=volumes), what="docker compose down")
    return None


def show_logs(stack: Stack, bundle: Path, runtime: Runtime, services: list[str], follow: bool,
              tail: int | None) -> None:
    """Service logs through docker compose (on Swarm, docker service logs), straight to the terminal."""
    names = service_names(stack, services)
    runtime.engine.ping()  # exit 3 when the engine is unreachable, before compose says something vaguer
    if stack.on_swarm:
        swarm.require_manager(runtime)
        swarm.show_logs(stack, require_bundle(bundle), runtime, names or [s.name for s in stack.services.values()],
                        follow, tail)
        return
    compose = runtime.compose(stack, require_bundle(bundle))
    compose.run(compose.logs_argv(names, follow=follow, tail=tail), what="docker compose logs",
                timeout=None, capture=False)


def require_bundle(bundle: Path) -> Path:
    if not (bundle / COMPOSE_FILE).exists():
        raise StackError(f"no bundle in {bundle}: nothing was started from here (run 'stackctl up' first)")
    return bundle
