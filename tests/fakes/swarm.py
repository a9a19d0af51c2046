"""FAKE: a small stand-in following Docker Swarm as `docker stack deploy`, `docker stack rm` and the engine API
present it, not the real tools.

`FakeSwarmStack` is stackctl's real `docker stack` shell (every command line is built by the real code) with `run`
replaced: it records each command line with its environment, and a deploy reads the bundle's stack file the way
the Docker CLI does (secret names interpolated from `${VAR:?...}`, configs created from their files, namespace
labels on everything) and updates in `FakeSwarm` exactly the services whose definition changed, as Swarm does: a
new task running the new spec, the old one shut down. `FakeSwarm` answers the engine calls of
stackctl.shells.docker_engine.DockerEngine that the Swarm code uses.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import yaml

from stackctl.core.readiness import SwarmServiceInfo, TaskInfo
from stackctl.core.render import COMPOSE_FILE
from stackctl.core.swarm import NAMESPACE_LABEL, NodeInfo
from stackctl.shells.compose import SwarmStack
from stackctl.shells.docker_engine import SwarmState
from stackctl.shells.runner import Completed, ToolError

_ids = itertools.count(1)
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")


def running_task(node: str = "node-1") -> TaskInfo:
    now = datetime.now(timezone.utc)
    return TaskInfo(node=node, state="running", desired="running", since=now, created=now,
                    container_id=f"t{next(_ids):011d}")


@dataclass
class Forwarder:
    script: str
    ports: list[int]
    network: str
    image: str
    removed: bool = False


@dataclass
class FakeSwarm:
    state: SwarmState = field(default_factory=lambda: SwarmState("active", True, "node-1"))
    node_list: list[NodeInfo] = field(default_factory=lambda: [
        NodeInfo("node-1", "node-1", "manager", "active", "ready", "10.0.0.1", {"stackctl.data": "true"})])
    specs: dict[str, dict] = field(default_factory=dict)  # Swarm service name -> its definition as deployed
    services: dict[str, SwarmServiceInfo] = field(default_factory=dict)  # compose name -> info
    secrets: dict[str, tuple[str, dict]] = field(default_factory=dict)  # name -> (value, labels)
    configs: dict[str, dict] = field(default_factory=dict)  # name -> labels
    volume_names: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # compose names of services created or updated, in order
    forwarders: list[Forwarder] = field(default_factory=list)
    backends: dict[str, int] = field(default_factory=dict)  # service name -> a port on 127.0.0.1 answering for it
    log: list[str] = field(default_factory=list)

    # --- what DockerEngine answers ------------------------------------------------------------------------------

    def ping(self) -> None:
        pass

    def info(self) -> dict:
        return {"MemTotal": 16 * 1024**3, "DockerRootDir": "/var/lib/docker", "OperatingSystem": "fake"}

    def version(self) -> dict:
        return {"Version": "20.10.24", "ApiVersion": "1.41"}

    def swarm_state(self) -> SwarmState:
        return self.state

    def nodes(self) -> list[NodeInfo]:
        return list(self.node_list)

    def image_present(self, ref: str) -> bool:
        return True

    def containers(self, project: str) -> list:
        return []

    def volumes(self, project: str) -> list[str]:
        return []

    def stack_services(self, project: str) -> list[SwarmServiceInfo]:
        return [self.services[name] for name in sorted(self.services)]

    def task_containers(self, project: str, name: str) -> list[str]:
        service = self.services.get(name)
        return [t.container_id for t in service.tasks if t.state == "running" and t.node == self.state.node_id] \
            if service else []

    def service_logs(self, project: str, name: str, tail: int = 30) -> str:
        return f"log of {project}_{name} (last {tail})\n"

    def secret_names(self, project: str) -> list[str]:
        return sorted(n for n, (_, labels) in self.secrets.items() if labels.get(NAMESPACE_LABEL) == project)

    def config_names(self, project: str) -> list[str]:
        return sorted(n for n, labels in self.configs.items() if labels.get(NAMESPACE_LABEL) == project)

    def create_secret(self, name: str, value: str, labels: dict[str, str]) -> None:
        assert name not in self.secrets, f"secret {name} exists already: Swarm refuses"
        self.log.append(f"create secret {name}")
        self.secrets[name] = (value, dict(labels))

    def objects_in_use(self, project: str) -> set[str]:
        return {ref for spec in self.specs.values() for ref in spec["secret_refs"] + spec["config_refs"]}

    def remove_object(self, kind: str, name: str) -> bool:
        if name in self.objects_in_use(""):
            return False
        self.log.append(f"remove {kind[:-1]} {name}")
        (self.secrets if kind == "secrets" else self.configs).pop(name, None)
        return True

    def stack_volumes(self, project: str) -> list[str]:
        return sorted(v for v in self.volume_names if v.startswith(f"{project}_"))

    def remove_volume(self, name: str) -> str:
        self.volume_names.remove(name)
        return ""

    def stack_containers(self, project: str) -> int:
        return 0

    def start_forwarder(self, image: str, network: str, script: str, ports: list[int], labels: dict) -> str:
        if not any(spec for spec in self.specs):
            from stackctl.core.errors import StackError

            raise StackError(f"cannot start a forwarder on {network}: network {network} not found")
        self.forwarders.append(Forwarder(script, list(ports), network, image))
        return f"forwarder-{len(self.forwarders)}"

    def _forwarder(self, container_id: str) -> Forwarder:
        return self.forwarders[int(container_id.split("-")[1]) - 1]

    def container_state(self, container_id: str) -> tuple[str, str]:
        return ("exited" if self._forwarder(container_id).removed else "running"), ""

    def forwarder_ports(self, container_id: str) -> dict[int, int]:
        """Each listener leads to the backend of the service its nc connects to (or to a made-up port)."""
        routes = re.findall(r"-p (\d+) -e busybox nc (\S+) (\d+)", self._forwarder(container_id).script)
        return {int(listen): self.backends.get(host, 40000 + int(listen)) for listen, host, _ in routes}

    def exec_output(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        ports = self._forwarder(container_id).ports
        return 0, "".join(f"tcp 0 0 0.0.0.0:{port} 0.0.0.0:* LISTEN\n" for port in ports)

    def remove_container(self, container_id: str) -> None:
        self._forwarder(container_id).removed = True

    # --- what docker stack deploy / rm do -------------------------------------------------------------------------

    def deploy(self, project: str, bundle: Path, env: dict[str, str]) -> None:
        text = (bundle / COMPOSE_FILE).read_text()

        def name_of(match: re.Match) -> str:
            if match.group(1) not in env:
                raise ToolError("docker stack deploy failed", Completed(("docker",), 1, "",
                                f"required variable {match.group(1)} is missing a value"))
            return env[match.group(1)]

        document = yaml.safe_load(VARIABLE.sub(name_of, text))
        secret_names = {key: s["name"] for key, s in (document.get("secrets") or {}).items()}
        for key, secret in secret_names.items():
            assert secret in self.secrets, f"external secret {secret} not found"
        for config in (document.get("configs") or {}).values():
            self.configs.setdefault(config["name"], {NAMESPACE_LABEL: project})
        wanted = {}
        for name, service in document["services"].items():
            wanted[f"{project}_{name}"] = {
                "definition": json.dumps(service, sort_keys=True) + json.dumps(
                    [secret_names[s["source"]] for s in service.get("secrets", [])]),
                "secret_refs": [secret_names[s["source"]] for s in service.get("secrets", [])],
                "config_refs": [document["configs"][c["source"]]["name"] for c in service.get("configs", [])],
                "mode": service["deploy"]["mode"], "image": service["image"]}
        for full in set(self.specs) - set(wanted):  # --prune
            del self.specs[full]
            self.services.pop(full.removeprefix(f"{project}_"), None)
        for full, spec in wanted.items():
            name = full.removeprefix(f"{project}_")
            if self.specs.get(full, {}).get("definition") == spec["definition"]:
                continue
            self.specs[full] = spec
            self.updated.append(name)
            nodes = [n.hostname for n in self.node_list] if spec["mode"] == "global" else ["node-1"]
            self.services[name] = SwarmServiceInfo(
                name, "global" if spec["mode"] == "global" else "replicated",
                None if spec["mode"] == "global" else 1, spec["image"], tuple(running_task(n) for n in nodes))

    def remove_stack(self, project: str) -> None:
        self.specs.clear()
        self.services.clear()
        for name in self.secret_names(project):
            del self.secrets[name]
        for name in self.config_names(project):
            del self.configs[name]


@dataclass
class Call:
    argv: list[str]
    env: dict[str, str]
    what: str


class FakeSwarmStack(SwarmStack):
    def __init__(self, swarm: FakeSwarm, project: str = "stackctl"):
        super().__init__(Path("/bundle"), project)
        self.swarm = swarm
        self.calls: list[Call] = []
        self.fail: str | None = None  # stderr of a failing run

    def for_bundle(self, stack, bundle: Path, env: dict[str, str]) -> "FakeSwarmStack":
        """A Runtime.make_swarm: this fake, for the bundle, with the environment the real shell would get."""
        self.bundle, self.project, self.env = bundle, stack.config.project, dict(env)
        return self

    def run(self, argv: list[str], what: str, timeout: float | None = 600, capture: bool = True) -> Completed:
        self.calls.append(Call(list(argv), dict(self.env), what))
        if self.fail is not None:
            raise ToolError(f"{what} failed", Completed(tuple(argv), 1, "", self.fail))
        if argv == self.deploy_argv():
            self.swarm.deploy(self.project, self.bundle, self.env)
        elif argv == self.rm_argv():
            self.swarm.remove_stack(self.project)
        return Completed(tuple(argv), 0, "", "")

    def run_together(self, argvs: list[list[str]], what: str) -> None:
        for argv in argvs:
            self.run(argv, what)

    def verbs(self) -> list[str]:
        return [" ".join(call.argv[1:3]) for call in self.calls]


def with_task(info: SwarmServiceInfo, **changes) -> SwarmServiceInfo:
    """The service with its (first) task changed, e.g. state="starting"."""
    return replace(info, tasks=(replace(info.tasks[0], **changes),) + info.tasks[1:])
