"""Reaching the stack's services from this machine, whichever the target: the one way verify, rotation, after-up
provisioning (and backup/restore) get a service's URL.

    with reach(stack, runtime) as where:
        url = where.url("prometheus")            # its main port
        url = where.url("collector", "otlp_http")

target: compose: the published host ports (stackctl.core.endpoints.host_url). target: swarm: a published port at
the address Swarm opens it on (any node with the routing mesh, so this engine's machine; the task's node with
endpoint_mode dnsrr); every other port through one short-lived forwarder container on the stack's overlay network
(busybox's nc, one listener per port) whose ports are bound to 127.0.0.1 of this engine's machine only, removed
when the `with` block ends. Unpublished services stay unpublished.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from stackctl.core.config import Stack
from stackctl.core.endpoints import host_url
from stackctl.core.errors import StackError
from stackctl.core.swarm import NETWORK, engine_host, forwarder_image
from stackctl.ops.context import Runtime

FORWARDER_LABEL = "org.stackctl.forwarder"
FIRST_LISTENER = 10000  # the forwarder's listening ports inside its container: 10000, 10001, ...
READY_WAIT = 20.0  # seconds for the forwarder to listen


@dataclass
class Reach:
    """Where this machine reaches each port of the stack's services: (service key, port name) -> (host, port)."""

    stack: Stack
    addresses: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    via_forwarder: set[tuple[str, str]] = field(default_factory=set)

    def url(self, key: str, port: str | None = None) -> str:
        """http://host:port of a service's port (default: its main port) as this machine reaches it."""
        if not self.stack.on_swarm:
            return host_url(self.stack, key, port)
        svc = self.stack.services.get(key)
        if svc is None:
            from stackctl.core.catalog import SERVICES

            raise StackError(f"{SERVICES[key].title} is not enabled in {self.stack.file}")
        name = port or (svc.spec.primary_port.name if svc.spec.primary_port else "")
        if (key, name) not in self.addresses:
            raise StackError(f"{svc.name} has no {name or 'API'} port stackctl can reach")
        host, number = self.addresses[(key, name)]
        return f"http://{'[' + host + ']' if ':' in host else host}:{number}"


def _wanted(stack: Stack, ports: Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """(service key, port name) pairs to reach: those given, else every port of every long-running service."""
    if ports is not None:
        return list(dict.fromkeys(ports))
    return [(svc.key, port.name) for svc in stack.services.values() if not svc.spec.oneshot for port in svc.spec.ports]


def _published(stack: Stack, runtime: Runtime, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
    """The wanted ports Swarm publishes, at the address it opens them on."""
    local = engine_host(runtime.environ.get("DOCKER_HOST", "")) or "127.0.0.1"
    routed = stack.config.swarm.endpoint_mode == "vip"
    addresses = {}
    task_nodes: dict[str, str] = {}
    if not routed and any(port in stack.services[key].host_ports for key, port in wanted):
        nodes = {n.hostname: n.address for n in runtime.engine.nodes()}
        for service in runtime.engine.stack_services(stack.config.project):
            running = [t for t in service.tasks if t.state == "running" and t.desired == "running"]
            if running:
                task_nodes[service.name] = nodes.get(running[0].node, "")
    for key, port in wanted:
        svc = stack.services[key]
        if port not in svc.host_ports:
            continue
        host = local if routed else task_nodes.get(svc.name)
        if host:
            addresses[(key, port)] = (host if host not in ("0.0.0.0", "") else local, svc.host_ports[port])
    return addresses


def forwarder_script(routes: list[tuple[int, str, int]]) -> str:
    """One busybox nc listener per (listening port, service host, service port); each connection gets its own nc
    to the service, so requests run side by side."""
    lines = [f"busybox nc -ll -p {listen} -e busybox nc {host} {port} &" for listen, host, port in routes]
    return "\n".join(lines + ["wait"])


def _await_listeners(runtime: Runtime, container: str, listen: list[int], image: str) -> dict[int, int]:
    """Host port of each listener once all listen; StackError with the forwarder's log when it stopped."""
    start = runtime.clock()
    while True:
        state, log = runtime.engine.container_state(container)
        if state not in ("created", "running"):
            raise StackError(f"the forwarder ({image}) stopped: {log.strip() or state}",
                             details="It runs busybox's nc on the stack's network; swarm.forwarder_image names an "
                                     "image that has it")
        published = runtime.engine.forwarder_ports(container) if state == "running" else {}
        if state == "running" and len(published) == len(listen):
            code, output = runtime.engine.exec_output(container, ["busybox", "netstat", "-ltn"])
            if code != 0 or all(f":{port} " in output for port in listen):
                return published  # listening (or no netstat to ask: nc listens within a moment of starting)
        if runtime.clock() - start > READY_WAIT:
            raise StackError(f"the forwarder ({image}) did not listen within {READY_WAIT:.0f}s", details=log)
        runtime.sleep(0.2)


@contextmanager
def reach(stack: Stack, runtime: Runtime, ports: Iterable[tuple[str, str]] | None = None) -> Iterator[Reach]:
    """Where this machine reaches the services (see the module docstring). `ports` narrows what is needed to
    (service key, port name) pairs; default: every port of every long-running service."""
    if not stack.on_swarm:
        yield Reach(stack)
        return
    wanted = [(key, port) for key, port in _wanted(stack, ports) if key in stack.services]
    addresses = _published(stack, runtime, wanted)
    rest = [pair for pair in wanted if pair not in addresses]
    if not rest:
        yield Reach(stack, addresses)
        return
    remote = engine_host(runtime.environ.get("DOCKER_HOST", ""))
    if remote:
        names = ", ".join(sorted({stack.services[key].name for key, _ in rest}))
        raise StackError(
            f"reaching {names} (not published) goes through a forwarder bound to 127.0.0.1 of the engine's machine, "
            f"and DOCKER_HOST names another machine ({remote})",
            details=f"Run stackctl on {remote} itself, or list the services in swarm.publish")
    routes = [(FIRST_LISTENER + i, stack.services[key].name, stack.services[key].spec.port(port).container)
              for i, (key, port) in enumerate(rest)]
    image = forwarder_image(stack)
    project = stack.config.project
    container = runtime.engine.start_forwarder(image, f"{project}_{NETWORK}", forwarder_script(routes),
                                               [listen for listen, _, _ in routes], {FORWARDER_LABEL: project})
    try:
        published = _await_listeners(runtime, container, [listen for listen, _, _ in routes], image)
        for (listen, _, _), pair in zip(routes, rest):
            addresses[pair] = ("127.0.0.1", published[listen])
        yield Reach(stack, addresses, set(rest))
    finally:
        runtime.engine.remove_container(container)
