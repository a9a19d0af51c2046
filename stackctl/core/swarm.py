"""Docker Swarm (pure): the stack file `docker stack deploy` reads, the names of the Swarm objects that hold configs
and secrets, and which node label places which service.

The stack file is the compose document in Swarm's terms: limits and restart policy under `deploy:`; no
`depends_on` (Swarm ignores it: services tolerate any start order and stackctl waits for readiness itself);
config files as Swarm configs and secrets as Swarm secrets, each named with a hash of its content, so a changed
file or a rotated secret is a new object and only the services using it are updated; per-node services
(node-exporter) in `mode: global`; services keeping data in volumes on the node carrying their label.

Secret names depend on values, which never enter a rendered file: the stack file names each secret object through
a variable (`${STACK_SWARM_SECRET_<NAME>}`) that only the `docker stack deploy` subprocess sees, as Compose's
secrets come from variables only its subprocess sees.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from stackctl.core.config import ResolvedService, Stack
from stackctl.core.errors import StackError
from stackctl.core.versions import with_mirror

MAX_OBJECT_NAME = 64  # Swarm's limit on config and secret names
MAX_OBJECT_SIZE = 500 * 1024  # Swarm's limit on the data of one config or secret
NAMESPACE_LABEL = "com.docker.stack.namespace"  # set by docker stack deploy on everything it creates
SECRET_LABEL = "org.stackctl.secret"  # the stack.yaml name of the secret a Swarm secret holds
SECRET_NAME_PREFIX = "STACK_SWARM_SECRET_"  # not STACKCTL_ (config overrides) nor STACK_SECRET_ (values)
SERVICE_LABEL = "org.stackctl.service"
ONESHOT_ATTEMPTS = 20  # a setup job retries (10 s apart) while what it sets up is still starting
FORWARDER_IMAGE = ("busybox", "1.37.0")  # the default forwarder: busybox's nc, one per port
NETWORK = "default"  # the stack's overlay network, `<project>_default` in the engine


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]


def object_name(project: str, what: str, digest: str) -> str:
    """`<project>_<what>-<digest>`, cut to Swarm's 64 characters (the digest is always kept whole)."""
    what = re.sub(r"[^A-Za-z0-9._-]", "-", what)
    head = f"{project}_{what}"[: MAX_OBJECT_NAME - len(digest) - 1].rstrip("._-")
    return f"{head}-{digest}"


def config_object_name(project: str, path: str, data: bytes) -> str:
    """The Swarm config holding one bundle file: a new name whenever its content changes."""
    return object_name(project, PurePosixPath(path).name, _digest(data))


def secret_object_name(project: str, secret: str, value: str) -> str:
    """The Swarm secret holding one value: a new name whenever the value changes. Only the engine and the deploy
    subprocess see it (a hash of a weak user-supplied value must not sit in a file that may be shared)."""
    return object_name(project, secret, _digest(secret.encode(), value.encode()))


def secret_name_variable(secret: str) -> str:
    return SECRET_NAME_PREFIX + secret.upper()


def secret_names_env(stack: Stack, values: dict[str, str]) -> dict[str, str]:
    """The environment of `docker stack deploy`: the Swarm secret name of each secret, by variable."""
    project = stack.config.project
    return {secret_name_variable(name): secret_object_name(project, name, value) for name, value in values.items()}


def node_label_constraint(label: str) -> str:
    key, _, value = label.partition("=")
    return f"node.labels.{key} == {value}"


def placement_label(stack: Stack, svc: ResolvedService) -> str | None:
    """The node label a service is placed by: its swarm.placement entry, else swarm.data_label when it keeps data
    in volumes (they are local to one node); None: any node."""
    swarm = stack.config.swarm
    owner = svc.spec.part_of or svc.key
    if owner in swarm.placement:
        return swarm.placement[owner]
    return swarm.data_label if svc.spec.keeps_data else None


def placements(stack: Stack) -> dict[str, list[str]]:
    """Node label -> the services (compose names) it places, in catalog order."""
    found: dict[str, list[str]] = {}
    for svc in stack.services.values():
        label = placement_label(stack, svc)
        if label:
            found.setdefault(label, []).append(svc.name)
    return found


def forwarder_image(stack: Stack) -> str:
    """The image of the forwarder that reaches unpublished services: swarm.forwarder_image, else busybox."""
    repository, tag = FORWARDER_IMAGE
    return stack.config.swarm.forwarder_image or f"{with_mirror(repository, stack.config.registry_mirror)}:{tag}"


def label_fix(label: str) -> str:
    return f"docker node update --label-add {label} NODE"


# --- the stack file ------------------------------------------------------------------------------------------------

# Compose keys Swarm ignores or replaces: the restart policy and memory limit move under deploy, Swarm starts in any
# order (stackctl waits for readiness), and a container name would clash between tasks.
NOT_ON_SWARM = ("restart", "mem_limit", "depends_on", "container_name")


def _split_volume(spec: str) -> tuple[str, str, str]:
    source, _, rest = spec.partition(":")
    target, _, mode = rest.partition(":")
    return source, target, mode


def bundle_mounts(svc: ResolvedService, volumes: list[str], files: dict[str, bytes]) -> tuple[list[str], list[dict]]:
    """A service's volumes split into what stays a mount (named volumes, absolute host paths) and the bundle files
    it mounted from `./...`, each as (bundle path, target in the container). Swarm runs tasks on other machines,
    where the bundle is not: its files travel as configs."""
    kept, mounted = [], []
    for volume in volumes:
        source, target, _ = _split_volume(volume)
        if not source.startswith("./"):
            kept.append(volume)
            continue
        rel = source[2:].rstrip("/")
        if rel in files:
            mounted.append({"path": rel, "target": target})
            continue
        inside = sorted(p for p in files if p.startswith(rel + "/"))
        if not inside:
            raise StackError(f"{svc.name} mounts {source}, which the bundle does not hold")
        mounted += [{"path": p, "target": f"{target.rstrip('/')}/{p[len(rel) + 1:]}"} for p in inside]
    return kept, mounted


def swarm_service(stack: Stack, svc: ResolvedService, service: dict, files: dict[str, bytes]) -> tuple[dict, dict]:
    """One compose service definition (stackctl.core.render.compose_service) in Swarm's terms, and the configs it
    uses (object name -> bundle path)."""
    spec, swarm = svc.spec, stack.config.swarm
    result = {key: value for key, value in service.items() if key not in NOT_ON_SWARM + ("ports", "volumes")}
    ingress = swarm.endpoint_mode == "vip"
    ports = [{"target": p.container, "published": svc.host_ports[p.name], "protocol": "tcp",
              "mode": "ingress" if ingress else "host"} for p in spec.ports if p.name in svc.host_ports]
    if ports:
        result["ports"] = ports
    kept, mounted = bundle_mounts(svc, service.get("volumes", []), files)
    if kept:
        result["volumes"] = kept
    configs: dict[str, str] = {}
    if mounted:
        result["configs"] = []
        for mount in mounted:
            name = config_object_name(stack.config.project, mount["path"], files[mount["path"]])
            configs[name] = mount["path"]
            result["configs"].append({"source": name, "target": mount["target"], "mode": 0o444})
    deploy: dict[str, Any] = {"mode": "global" if spec.per_node else "replicated"}
    if not spec.per_node:
        deploy["replicas"] = 1
    deploy["endpoint_mode"] = swarm.endpoint_mode
    deploy["resources"] = {"limits": {"memory": svc.memory}}
    deploy["restart_policy"] = ({"condition": "on-failure", "delay": "10s", "max_attempts": ONESHOT_ATTEMPTS}
                                if spec.oneshot else {"condition": "any", "delay": "5s"})
    label = placement_label(stack, svc)
    if label:
        deploy["placement"] = {"constraints": [node_label_constraint(label)]}
    deploy["labels"] = {SERVICE_LABEL: spec.key}
    result["deploy"] = deploy
    return result, configs


def stack_document(stack: Stack, services: dict[str, dict], volumes: dict[str, Any],
                   files: dict[str, bytes]) -> tuple[dict, dict]:
    """The stack file's document, and its secrets section (kept apart: its `${...}` must not be escaped)."""
    swarm_services: dict[str, dict] = {}
    configs: dict[str, dict] = {}
    for svc in stack.services.values():
        swarm_services[svc.name], used = swarm_service(stack, svc, services[svc.name], files)
        configs.update({name: {"name": name, "file": f"./{path}"} for name, path in used.items()})
    document: dict[str, Any] = {"services": swarm_services,
                                "networks": {NETWORK: {"driver": "overlay", "attachable": True}}}
    if volumes:
        document["volumes"] = volumes
    if configs:
        document["configs"] = dict(sorted(configs.items()))
    secrets = {name: {"external": True, "name": "${" + secret_name_variable(name) + ":?stackctl up sets it}"}
               for name in sorted({use.name for svc in stack.services.values() for use in svc.secrets})}
    return document, secrets


def check_stack_file(stack: Stack, plan: dict[str, bytes], document: dict) -> list[str]:
    """What Swarm would refuse only at deploy time: configs it cannot hold, and object names it does not take."""
    problems = []
    for key, config in sorted((document.get("configs") or {}).items()):
        path = config["file"][2:]
        if path not in plan:
            problems.append(f"config {key} is the file {path}, which the bundle does not hold")
        elif len(plan[path]) > MAX_OBJECT_SIZE:
            problems.append(f"{path}: {len(plan[path]) // 1024} KiB is more than the {MAX_OBJECT_SIZE // 1024} KiB "
                            "Swarm holds in one config")
        if len(config["name"]) > MAX_OBJECT_NAME:
            problems.append(f"config name {config['name']} is longer than Swarm's {MAX_OBJECT_NAME} characters")
    return problems


# --- the cluster ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    """One node of the cluster as the engine reports it."""

    id: str
    hostname: str
    role: str  # manager | worker
    availability: str  # active | pause | drain
    state: str  # ready | down | unknown | disconnected
    address: str  # Status.Addr: where its published ports are reached
    labels: dict[str, str] = field(default_factory=dict)

    def carries(self, label: str) -> bool:
        key, _, value = label.partition("=")
        return self.labels.get(key) == value

    @property
    def usable(self) -> bool:
        return self.availability == "active" and self.state == "ready"


def unplaced(stack: Stack, nodes: list[NodeInfo]) -> dict[str, list[str]]:
    """Node labels that place services but that no usable node carries -> those services."""
    return {label: names for label, names in placements(stack).items()
            if not any(node.usable and node.carries(label) for node in nodes)}


def engine_host(docker_host: str) -> str | None:
    """The machine of the engine DOCKER_HOST names, or None when it is this one (unset, a unix socket, a pipe)."""
    match = re.fullmatch(r"(?:tcp|ssh|https?)://(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)(?::\d+)?/?", docker_host.strip())
    if not match or match.group(1) in ("localhost", "127.0.0.1", "[::1]"):
        return None
    return match.group(1)
