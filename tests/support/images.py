"""Local container images for the stack's services, built from Debian packages without any registry.

This module owns the `local/<service>:<version>` images (prometheus, alertmanager, node-exporter, pushgateway,
blackbox-exporter) that the container smoke tests run instead of the upstream images, which can't be pulled here.
Each image is a hand-made root filesystem, written with `tarfile` so ownership and modes are exact without chown on
the host, and loaded with `docker import --change ...`. It mimics the official image: the binaries at the same paths
(/bin/prometheus, ...), the same USER, WORKDIR, EXPOSE, VOLUME, ENTRYPOINT and CMD, plus busybox for health checks
(`wget -q --spider http://127.0.0.1:9090/-/ready`) and debugging. The binaries come from `tests.support.debian`.

An image whose tag already exists is reused (unless force=True), so a second run costs one `docker image inspect`.
The images carry a label with a hash of their recipe: a tag built from an older recipe is rebuilt, not reused.

    python -m tests.support.images [--force] [--json] [SERVICE...]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.debian import cache_root, extract_package, package_version

NOBODY = 65534
BUSYBOX_PACKAGE = "busybox-static"
# Bump when the way images are assembled changes, so that cached images built the old way are rebuilt.
RECIPE_REVISION = 1
LABEL_SOURCE = "org.stackctl.source"
LABEL_LOCAL = "org.stackctl.local-image"
LABEL_RECIPE = "org.stackctl.recipe"
# The official images inherit this PATH from their busybox base; an imported image has no ENV at all.
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_APPLETS = (
    "sh", "wget", "cat", "ls", "sleep", "ps", "id", "mkdir", "rm", "cp", "mv", "tar", "chown", "chmod", "env",
    "echo", "test", "[",
)  # fmt: skip

PROMETHEUS_YML = """\
# Default config of local/prometheus: Prometheus scrapes itself (like upstream's example config).
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""

ALERTMANAGER_YML = """\
# Default config of local/alertmanager: every alert goes to a receiver that sends nothing.
route:
  receiver: "null"
  group_by: [alertname]
receivers:
  - name: "null"
"""


@dataclass(frozen=True)
class LocalImage:
    """How to assemble one service's image; paths are absolute in the image, package paths relative to its root."""

    package: str  # Debian package that ships the binaries
    binaries: Mapping[str, str]  # image path -> package path; the first one is the ENTRYPOINT
    port: int  # EXPOSEd, and where health_path answers
    health_path: str  # answers 200 once the service is up
    cmd: tuple[str, ...] = ()
    workdir: str = "/"
    user: str = "nobody"
    volumes: tuple[str, ...] = ()
    owned_dirs: tuple[str, ...] = ()  # created owned by nobody, like upstream's `chown -R nobody:nobody`
    configs: Mapping[str, str] = field(default_factory=dict)  # image path -> default config text
    package_files: Mapping[str, str] = field(default_factory=dict)  # image path -> file or tree in the package

    @property
    def entrypoint(self) -> tuple[str, ...]:
        return (next(iter(self.binaries)),)


# service name (as in the compose file) -> image recipe, each matching the official image's Dockerfile.
LOCAL_IMAGES: dict[str, LocalImage] = {
    "prometheus": LocalImage(
        package="prometheus",
        binaries={"/bin/prometheus": "usr/bin/prometheus", "/bin/promtool": "usr/bin/promtool"},
        port=9090,
        health_path="/-/ready",
        cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
        workdir="/prometheus",
        volumes=("/prometheus",),
        owned_dirs=("/prometheus", "/etc/prometheus"),
        configs={"/etc/prometheus/prometheus.yml": PROMETHEUS_YML},
        # Debian's build reads its web assets from here instead of embedding them.
        package_files={"/usr/share/prometheus": "usr/share/prometheus"},
    ),
    "alertmanager": LocalImage(
        package="prometheus-alertmanager",
        binaries={"/bin/alertmanager": "usr/bin/prometheus-alertmanager", "/bin/amtool": "usr/bin/amtool"},
        port=9093,
        health_path="/-/ready",
        cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        workdir="/alertmanager",
        volumes=("/alertmanager",),
        owned_dirs=("/alertmanager", "/etc/alertmanager"),
        configs={"/etc/alertmanager/alertmanager.yml": ALERTMANAGER_YML},
        # Debian's build reads its notification templates and UI from here.
        package_files={"/usr/share/prometheus/alertmanager": "usr/share/prometheus/alertmanager"},
    ),
    "node-exporter": LocalImage(
        package="prometheus-node-exporter",
        binaries={"/bin/node_exporter": "usr/bin/prometheus-node-exporter"},
        port=9100,
        health_path="/metrics",  # node_exporter 1.5 has no /-/ready
        # Debian's build defaults --collector.textfile.directory to this; without it every scrape logs an error.
        owned_dirs=("/var/lib/prometheus/node-exporter",),
    ),
    "pushgateway": LocalImage(
        package="prometheus-pushgateway",
        binaries={"/bin/pushgateway": "usr/bin/prometheus-pushgateway"},
        port=9091,
        health_path="/-/ready",
        workdir="/pushgateway",
        # Debian's build defaults --persistence.file to /var/lib/prometheus/pushgateway.data (upstream: none).
        owned_dirs=("/pushgateway", "/var/lib/prometheus"),
        package_files={"/usr/share/prometheus/pushgateway": "usr/share/prometheus/pushgateway"},
    ),
    "blackbox-exporter": LocalImage(
        package="prometheus-blackbox-exporter",
        binaries={"/bin/blackbox_exporter": "usr/bin/prometheus-blackbox-exporter"},
        port=9115,
        health_path="/-/healthy",
        cmd=("--config.file=/etc/blackbox_exporter/config.yml",),
        # Debian ships upstream's example blackbox.yml, which is what the official image uses as its config.
        package_files={"/etc/blackbox_exporter/config.yml": "etc/prometheus/blackbox.yml"},
    ),
}


# --- docker -----------------------------------------------------------------------------------------------------


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", *args]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise RuntimeError(f"{' '.join(cmd)}: docker CLI not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(cmd)}: timed out after {timeout}s") from exc
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return result


def docker_available() -> bool:
    """True when the docker CLI is installed and a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    try:
        return _docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except RuntimeError:
        return False


def _inspect_image(ref: str) -> dict | None:
    result = _docker("image", "inspect", ref, check=False)
    if result.returncode != 0:
        if "No such image" in result.stderr or "no such image" in result.stderr.lower():
            return None
        raise RuntimeError(f"docker image inspect {ref} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)[0]


# --- versions and recipe ----------------------------------------------------------------------------------------


def _spec(service: str) -> LocalImage:
    try:
        return LOCAL_IMAGES[service]
    except KeyError:
        raise ValueError(f"no local image for {service!r}; known: {', '.join(LOCAL_IMAGES)}") from None


def deb_version(package: str) -> str:
    """Full Debian version of the cached package, e.g. '2.42.0+ds-5+deb12u1' (epoch kept, as in '1:1.35.0-4')."""
    # tests.support.debian records the unpacked .deb's file name in `.complete`: NAME_VERSION_ARCH.deb.
    deb_name = (extract_package(package) / ".complete").read_text().strip()
    return urllib.parse.unquote(deb_name.split("_")[1])


def image_tag(service: str) -> str:
    """The tag of a service's local image, e.g. 'local/prometheus:2.42.0' (unpacks the package if needed)."""
    return f"local/{service}:{package_version(_spec(service).package)}"


def _recipe_hash(spec: LocalImage) -> str:
    recipe = [RECIPE_REVISION, repr(spec), deb_version(spec.package), deb_version(BUSYBOX_PACKAGE)]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def _docker_changes(spec: LocalImage, labels: Mapping[str, str]) -> list[str]:
    # JSON arrays and JSON-quoted strings are valid Dockerfile syntax; values contain ':' and '='.
    changes = [
        f"USER {spec.user}",
        f"WORKDIR {spec.workdir}",
        f"EXPOSE {spec.port}",
        f"ENV PATH={PATH_ENV}",
        f"ENTRYPOINT {json.dumps(list(spec.entrypoint))}",
    ]
    if spec.cmd:
        changes.append(f"CMD {json.dumps(list(spec.cmd))}")
    if spec.volumes:
        changes.append(f"VOLUME {json.dumps(list(spec.volumes))}")
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]
    return changes


# --- root filesystem --------------------------------------------------------------------------------------------


class _RootFS:
    """A tar of a root filesystem; parent directories are added as root:root 0755 when first needed."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.mtime = int(time.time())
        self.paths: set[str] = set()

    def _info(self, path: str, kind: bytes, mode: int, owner: int) -> tarfile.TarInfo:
        name = path.strip("/")
        parent = os.path.dirname(name)
        if parent and parent not in self.paths:
            self.dir("/" + parent)
        self.paths.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, self.mtime
        info.uid = info.gid = owner
        info.uname = info.gname = "nobody" if owner == NOBODY else "root"
        return info

    def dir(self, path: str, mode: int = 0o755, owner: int = 0) -> None:
        if path.strip("/") not in self.paths:
            self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode, owner))

    def text(self, path: str, content: str, mode: int = 0o644, owner: int = 0) -> None:
        data = content.encode()
        info = self._info(path, tarfile.REGTYPE, mode, owner)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        """Copy a host file's content (following symlinks), keeping its permission bits unless mode is given."""
        real = source.resolve()
        info = self._info(path, tarfile.REGTYPE, mode if mode is not None else real.stat().st_mode & 0o7777, 0)
        info.size = real.stat().st_size
        with real.open("rb") as handle:
            self.tar.addfile(info, handle)

    def symlink(self, path: str, target: str) -> None:
        info = self._info(path, tarfile.SYMTYPE, 0o777, 0)
        info.linkname = target
        self.tar.addfile(info)

    def tree(self, path: str, source: Path) -> None:
        """Copy a file or directory tree from the host, keeping symlinks as symlinks (dangling ones too)."""
        if source.is_symlink():
            self.symlink(path, os.readlink(source))
        elif source.is_dir():
            self.dir(path)
            for child in sorted(source.iterdir()):
                self.tree(f"{path.rstrip('/')}/{child.name}", child)
        else:
            self.copy(path, source)


def _shared_libraries(binary: Path) -> list[str]:
    """Paths (as the loader looks them up) of the shared libraries a binary needs; empty for static binaries."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        raise RuntimeError(f"ldd {binary} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    libraries = []
    for line in result.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
        # linux-vdso has no file.
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if "=> not found" in line:
            raise RuntimeError(f"ldd {binary}: missing library: {line.strip()}")
        if match:
            libraries.append(match.group(1))
    return libraries


def _busybox_applets(busybox: Path) -> list[str]:
    result = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    applets = [name for name in result.stdout.split() if name != "busybox"]
    missing = sorted(set(REQUIRED_APPLETS) - set(applets))
    if missing:
        raise RuntimeError(f"{busybox} lacks applets {missing}")
    return applets


def write_rootfs(service: str, tar: tarfile.TarFile) -> None:
    """Write the root filesystem of a service's image into an open tar."""
    spec = _spec(service)
    package_root = extract_package(spec.package)
    busybox = extract_package(BUSYBOX_PACKAGE) / "bin" / "busybox"
    fs = _RootFS(tar)

    for path in ("/bin", "/dev", "/etc", "/home", "/proc", "/sys", "/usr", "/var"):
        fs.dir(path)
    fs.dir("/root", mode=0o700)
    fs.dir("/tmp", mode=0o1777)
    fs.text("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    fs.text("/etc/group", "root:x:0:\nnobody:x:65534:\n")
    # Consult /etc/hosts (managed by Docker) before DNS, as the official busybox base does.
    fs.text("/etc/nsswitch.conf", "hosts: files dns\n")
    fs.copy("/etc/ssl/certs/ca-certificates.crt", Path("/etc/ssl/certs/ca-certificates.crt"), mode=0o644)

    fs.copy("/bin/busybox", busybox, mode=0o755)
    for applet in _busybox_applets(busybox):
        if f"bin/{applet}" not in fs.paths:
            fs.symlink(f"/bin/{applet}", "busybox")

    libraries: set[str] = set()
    for image_path, package_path in spec.binaries.items():
        fs.copy(image_path, package_root / package_path, mode=0o755)
        libraries.update(_shared_libraries(package_root / package_path))
    for library in sorted(libraries):
        # Copy the real file to the path the loader asks for, so no host symlink layout has to be reproduced.
        fs.copy(library, Path(library))

    for directory in spec.owned_dirs:  # before anything inside them creates them as root
        fs.dir(directory, owner=NOBODY)
    for image_path, package_path in spec.package_files.items():
        fs.tree(image_path, package_root / package_path)
    for image_path, content in spec.configs.items():
        fs.text(image_path, content, owner=NOBODY)


# --- build and cache --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(service: str) -> Iterator[None]:
    # Parallel test workers asking for the same image wait for one build instead of importing it twice.
    lock_dir = cache_root() / "images"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{service}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def build_image(service: str, force: bool = False) -> tuple[str, bool]:
    """Ensure a service's image exists; returns (tag, built) where built is False when the tag was reused."""
    spec = _spec(service)
    tag = image_tag(service)
    recipe = _recipe_hash(spec)
    with _build_lock(service):
        existing = _inspect_image(tag)
        existing_labels = ((existing or {}).get("Config") or {}).get("Labels") or {}
        if existing and not force and existing_labels.get(LABEL_RECIPE) == recipe:
            return tag, False
        reason = "forced" if existing and force else "recipe changed" if existing else "missing"
        _log(f"building {tag} from debian:{spec.package}={deb_version(spec.package)} ({reason})")
        labels = {
            LABEL_SOURCE: f"debian:{spec.package}={deb_version(spec.package)}",
            LABEL_LOCAL: "1",
            LABEL_RECIPE: recipe,
        }
        with tempfile.NamedTemporaryFile(prefix=f"stackctl-{service}-", suffix=".tar") as rootfs:
            with tarfile.open(fileobj=rootfs, mode="w", format=tarfile.GNU_FORMAT) as tar:
                write_rootfs(service, tar)
            rootfs.flush()
            args = ["import", "--message", f"stackctl local image from debian:{spec.package}"]
            for change in _docker_changes(spec, labels):
                args += ["--change", change]
            _docker(*args, rootfs.name, tag, timeout=600)
        # The image the tag used to name is now dangling; drop it unless a container still uses it.
        if existing and existing["Id"] != (_inspect_image(tag) or {}).get("Id"):
            _docker("image", "rm", existing["Id"], check=False)
        return tag, True


def ensure_image(service: str, force: bool = False) -> str:
    """Return the tag of a service's local image, building it first if it is missing (or if force)."""
    return build_image(service, force)[0]


def ensure_images(services: Iterable[str] = LOCAL_IMAGES, force: bool = False) -> dict[str, str]:
    """ensure_image for several services (all by default); returns service -> tag."""
    return {service: ensure_image(service, force) for service in services}


# The services with a local image, keyed by their stack.yaml name; Grafana has no Debian package here.
LOCAL_STACK_SERVICES = {"prometheus": "prometheus", "alertmanager": "alertmanager", "node_exporter": "node-exporter"}


def write_local_stack(path: Path) -> int:
    """A stack file for machines without a registry: the metrics preset through per-service image overrides."""
    tags = ensure_images(LOCAL_STACK_SERVICES.values())
    services = {key: {"image": tags[name]} for key, name in LOCAL_STACK_SERVICES.items()}
    services["grafana"] = {"enabled": False}
    header = ("# Written by `make up-local`: the metrics services from images built out of Debian packages\n"
              "# (no registry needed). Grafana has no local image, so it is off. Edit freely.\n")
    path.write_text(header + json.dumps({"preset": "metrics", "services": services}, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: all ({', '.join(LOCAL_IMAGES)})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of lines")
    parser.add_argument("--write-stack", metavar="PATH",
                        help="build the metrics images and write a stack file that uses them (no registry needed)")
    args = parser.parse_args(argv)
    if args.write_stack:
        return write_local_stack(Path(args.write_stack))
    unknown = [service for service in args.services if service not in LOCAL_IMAGES]
    if unknown:
        parser.error(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(LOCAL_IMAGES)}")
    if not docker_available():
        print("no Docker engine reachable (docker info failed)", file=sys.stderr)
        return 1
    report = {}
    for service in args.services or LOCAL_IMAGES:
        started = time.monotonic()
        try:
            tag, built = build_image(service, args.force)
        except RuntimeError as exc:
            print(f"{service}: {exc}", file=sys.stderr)
            return 1
        seconds = round(time.monotonic() - started, 2)
        report[service] = {"tag": tag, "status": "built" if built else "cached", "seconds": seconds}
        if not args.json:
            print(f"{service} {tag} {report[service]['status']} {seconds:.2f}", flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
