"""Docker Swarm (target: swarm), the mechanics: this engine must be a swarm manager; each value the stack uses is a
Swarm secret named with a hash of it, created through the API before the deploy; `docker stack deploy` applies the
bundle; statuses come from tasks; configs and secrets no service refers to any more are removed once the stack has
converged; `down` removes the stack and, when asked, this node's volumes.

The flow of `up`, `down`, `status` and `logs` is stackctl.ops.lifecycle's (one flow for both targets); reaching a
service from this machine is stackctl.ops.reach's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.readiness import ServiceStatus, swarm_status
from stackctl.core.render import COMPOSE_FILE
from stackctl.core.swarm import (NAMESPACE_LABEL, SECRET_LABEL, NodeInfo, config_object_name, label_fix,
                                 secret_names_env, secret_object_name, unplaced)
from stackctl.core import yamltext
from stackctl.ops.context import Runtime

MAKE_MANAGER = "docker swarm init --advertise-addr <this machine's IP address>"


def require_manager(runtime: Runtime) -> None:
    """Raise StackError, with the command that fixes it, unless the engine is a manager of an active swarm."""
    state = runtime.engine.swarm_state()
    if state.state != "active":
        why = f" ({state.error})" if state.error else ""
        raise StackError(
            f"target: swarm deploys to a Docker Swarm, and this Docker engine is not part of one (swarm state: "
            f"{state.state}{why}); nothing was changed",
            details=f"Make this machine a swarm (and its manager):\n  {MAKE_MANAGER}\nor join it to your cluster as a "
                    "manager ('docker swarm join-token manager' on a manager prints the command), then run "
                    "'stackctl up' again. On one machine without Swarm, set target: compose.")
    if not state.manager:
        raise StackError("this Docker engine is a swarm worker: stacks are deployed through a manager; nothing was "
                         "changed",
                         details="Run stackctl on a manager node ('docker node ls' there lists them), point DOCKER_HOST "
                                 "at one, or promote this node on a manager: docker node promote <node>")


def check_placement(stack: Stack, nodes: list[NodeInfo]) -> None:
    """Refuse to deploy services no node can take: a node label that places them and that no node carries."""
    missing = unplaced(stack, nodes)
    if not missing:
        return
    lines = [f"no node carries {label}, which places {', '.join(names)}" for label, names in missing.items()]
    here = ", ".join(n.hostname for n in nodes if n.usable) or "none"
    raise StackError("; ".join(lines) + "; nothing was deployed",
                     details="Their data volumes live on the node that runs them: label the node that keeps the data "
                             "(once), then run 'stackctl up' again:\n"
                             + "\n".join(f"  {label_fix(label)}" for label in missing)
                             + f"\nNodes: {here}. Another label per service: swarm.placement in stack.yaml.")


def deploy_env(stack: Stack, runtime: Runtime, values: dict[str, str]) -> dict[str, str]:
    """Make sure a Swarm secret holds each value (a new one when a value changed), and return the environment of
    the deploy, which names them. Values travel over the engine's API only."""
    project = stack.config.project
    existing = set(runtime.engine.secret_names(project))
    for name, value in values.items():
        obj = secret_object_name(project, name, value)
        if obj not in existing:
            runtime.engine.create_secret(obj, value, {NAMESPACE_LABEL: project, SECRET_LABEL: name})
    return secret_names_env(stack, values)


def bundle_objects(stack: Stack, bundle: Path, values: dict[str, str]) -> set[str]:
    """The names of the configs and secrets the bundle's stack file refers to, with these secret values."""
    document = yamltext.load((bundle / COMPOSE_FILE).read_bytes()) or {}
    project = stack.config.project
    configs = {config_object_name(project, c["file"][2:], (bundle / c["file"][2:]).read_bytes())
               for c in (document.get("configs") or {}).values()}
    return configs | {secret_object_name(project, name, value) for name, value in values.items()}


def is_deployed(stack: Stack, bundle: Path, runtime: Runtime, values: dict[str, str]) -> bool:
    """The deployed stack uses every config and secret of the bundle (nothing to deploy, if it is healthy)."""
    return bundle_objects(stack, bundle, values) <= runtime.engine.objects_in_use(stack.config.project)


def deploy(stack: Stack, bundle: Path, runtime: Runtime, values: dict[str, str]) -> None:
    """Secrets first, then `docker stack deploy`: Swarm updates the services whose definition changed, only them."""
    env = deploy_env(stack, runtime, values)
    docker_stack = runtime.swarm(stack, bundle, env)
    docker_stack.run(docker_stack.deploy_argv(), what="docker stack deploy", timeout=600)


def statuses(stack: Stack, runtime: Runtime, only: set[str] | None = None) -> list[ServiceStatus]:
    return swarm_status(stack, runtime.engine.stack_services(stack.config.project), only)


def prune(stack: Stack, runtime: Runtime) -> list[str]:
    """Remove the stack's configs and secrets no service refers to any more (earlier versions); the engine refuses
    those still in use, which stay until the next run. Returns what was removed."""
    engine, project = runtime.engine, stack.config.project
    used = engine.objects_in_use(project)
    removed = []
    for kind, names in (("configs", engine.config_names(project)), ("secrets", engine.secret_names(project))):
        for name in names:
            if name not in used and engine.remove_object(kind, name):
                removed.append(name)
    return removed


@dataclass(frozen=True)
class Removed:
    volumes: tuple[str, ...]  # removed on this node
    kept: tuple[str, ...]  # this node's volumes the engine would not remove, with its reason


def remove(stack: Stack, bundle: Path, runtime: Runtime, volumes: bool, timeout: float = 120,
           on_event: Callable[[str], None] = lambda message: None) -> Removed:
    """`docker stack rm` (services, the network, the stack's configs and secrets), waiting until this node's tasks
    are gone; with `volumes`, then this node's volumes of the stack. Other nodes keep theirs."""
    engine, project = runtime.engine, stack.config.project
    docker_stack = runtime.swarm(stack, bundle)
    docker_stack.run(docker_stack.rm_argv(), what="docker stack rm", timeout=300)
    start = runtime.clock()
    told = False
    while engine.stack_services(project) or engine.stack_containers(project):
        if runtime.clock() - start > timeout:
            raise StackError(f"docker stack rm {project}: its tasks were still stopping after {timeout:.0f}s",
                             details="'docker stack ps " + project + "' shows them; run 'stackctl down' again")
        if not told:
            on_event("waiting for the stack's tasks to stop")
            told = True
        runtime.sleep(runtime.poll_interval)
    if not volumes:
        return Removed((), ())
    removed, kept = [], []
    for name in engine.stack_volumes(project):
        reason = engine.remove_volume(name)
        (kept if reason else removed).append(f"{name} ({reason})" if reason else name)
    return Removed(tuple(removed), tuple(kept))


def show_logs(stack: Stack, bundle: Path, runtime: Runtime, names: list[str], follow: bool,
              tail: int | None) -> None:
    """`docker service logs` of each service, straight to the terminal: one after the other, or all at once when
    following them."""
    docker_stack = runtime.swarm(stack, bundle)
    argvs = [docker_stack.logs_argv(name, follow=follow, tail=tail) for name in names]
    if follow and len(argvs) > 1:
        docker_stack.run_together(argvs, what="docker service logs")
        return
    for argv in argvs:
        docker_stack.run(argv, what="docker service logs", timeout=None, capture=False)


def task_container(stack: Stack, runtime: Runtime, name: str) -> str:
    """The id of the container running service `name` (compose name) on this node, for what needs the container
    itself (copying data out of its volume, running a command in it). A StackError names the node running it when
    that is another one: its volumes live there, and stackctl must run there."""
    engine, project = runtime.engine, stack.config.project
    found = engine.task_containers(project, name)
    if found:
        return found[0]
    service = next((s for s in engine.stack_services(project) if s.name == name), None)
    nodes = sorted({t.node for t in service.tasks if t.state == "running"}) if service else []
    if not nodes:
        raise StackError(f"{name} has no running task: 'stackctl up' starts it")
    raise StackError(f"{name} runs on {', '.join(nodes)}, not on this node: run stackctl there (its volumes are "
                     "there too)")
