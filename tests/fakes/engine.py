"""FAKE: the Docker engine's file operations on named volumes, as stackctl.shells.docker_engine uses them, not the
real engine.

Follows the Engine API (moby api/swagger.yaml: GET /containers/{id}/archive answers a tar of the path with the
path's base name as its root, from a running or stopped container; PUT /containers/{id}/archive extracts a tar into
a directory that must exist, ownership from the tar headers; POST /containers/{id}/exec) over in-memory volumes:
each volume is a dict of relative path -> bytes, mounted into a service's container where the catalog says.
Helper containers' shell scripts are not run; the few commands stackctl sends (rm -rf, chown, chmod, df) are
interpreted, anything else is recorded and answered with exit 0.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass, field, replace

from stackctl.core import catalog
from tests.fakes.compose import FakeEngine, container


@dataclass
class ContainerFS:
    """A container's view of its volumes: read, write, list and remove absolute paths."""

    engine: "FakeFilesEngine"
    mounts: list[tuple[str, str]]  # (mount path, volume), longest mount first

    def _locate(self, path: str) -> tuple[dict[str, bytes], str]:
        for mount, volume in self.mounts:
            if path == mount or path.startswith(mount + "/"):
                return self.engine.files.setdefault(volume, {}), path[len(mount) + 1:]
        raise FileNotFoundError(f"{path} is on no volume of this container")

    def write(self, path: str, data: bytes) -> None:
        files, rel = self._locate(path)
        files[rel] = data

    def read(self, path: str) -> bytes:
        files, rel = self._locate(path)
        return files[rel]

    def listdir(self, path: str) -> list[str]:
        files, rel = self._locate(path)
        prefix = rel + "/" if rel else ""
        return sorted(f"{path}/{name[len(prefix):]}" for name in files if name.startswith(prefix))

    def remove(self, path: str) -> None:
        files, rel = self._locate(path)
        for name in [n for n in files if n == rel or n.startswith(rel + "/") or not rel]:
            del files[name]


@dataclass
class FakeFilesEngine(FakeEngine):
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # volume -> relative path -> bytes
    project: str = "stackctl"
    calls: list[tuple] = field(default_factory=list)
    states_at_copy: list[tuple[str, str]] = field(default_factory=list)  # (path, container state) of each copy out
    free_kib: int = 50 * 1024 * 1024

    def start_services(self, *names: str) -> None:
        for name in names:
            self.running[name] = replace(container(name), name=f"{self.project}-{name}-1")
            for volume in catalog.BY_NAME[name].volumes:
                self.files.setdefault(catalog.BY_NAME[name].docker_volume(self.project, volume), {})

    def fs(self, service: str) -> ContainerFS:
        spec = catalog.BY_NAME[service]
        mounts = sorted(((v.path, spec.docker_volume(self.project, v)) for v in spec.volumes),
                        key=lambda m: -len(m[0]))
        return ContainerFS(self, mounts)

    def _service_of(self, container_id: str) -> str:
        return next(name for name, info in self.running.items() if info.id == container_id)

    # --- what stackctl.shells.docker_engine offers ---

    def container_of(self, project: str, service: str):
        return self.running.get(service)

    def volume_exists(self, name: str) -> bool:
        return name in self.files

    def get_archive(self, container_id: str, path: str):
        service = self._service_of(container_id)
        self.states_at_copy.append((path, self.running[service].state))
        view = self.fs(service)
        files, rel = view._locate(path)
        base = path.rstrip("/").rsplit("/", 1)[-1]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if rel in files:  # a file
                info = tarfile.TarInfo(base)
                info.size = len(files[rel])
                tar.addfile(info, io.BytesIO(files[rel]))
            else:
                names = sorted(n for n in files if n.startswith(rel + "/"))
                if not names:
                    from stackctl.core.errors import StackError

                    raise StackError(f"cannot copy {path} out of container {container_id}: no such file or directory")
                info = tarfile.TarInfo(base)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                for name in names:
                    info = tarfile.TarInfo(f"{base}/{name[len(rel) + 1:]}")
                    info.size = len(files[name])
                    tar.addfile(info, io.BytesIO(files[name]))
        data = buffer.getvalue()
        return iter([data[i:i + 4096] for i in range(0, len(data), 4096)])

    def copy_into_volume(self, project: str, image: str, volume: str, mount: str, chunks) -> None:
        data = b"".join(bytes(c) for c in chunks)
        self.calls.append(("copy_into_volume", volume, mount))
        files = self.files.setdefault(volume, {})
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                if info.isfile():
                    files[info.name] = tar.extractfile(info).read()

    def run_on_volume(self, project: str, image: str, volume: str, mount: str, script: str,
                      timeout: float = 600) -> tuple[int, str]:
        self.calls.append(("run_on_volume", volume, script))
        files = self.files.setdefault(volume, {})
        for path in re.findall(r"rm -rf '([^']+)'", script):
            rel = path[len(mount) + 1:]
            for name in [n for n in files if n == rel or n.startswith(rel + "/")]:
                del files[name]
        if script.startswith("df "):
            return 0, f"Filesystem 1024-blocks Used Available Capacity Mounted on\nfake 1 1 {self.free_kib} 1% {mount}\n"
        return 0, ""

    def exec(self, container_id: str, argv: list[str], user: str = "") -> tuple[int, str]:
        service = self._service_of(container_id)
        self.calls.append(("exec", service, tuple(argv)))
        if argv[:2] == ["rm", "-rf"]:
            self.fs(service).remove(argv[2])
        if argv[0] == "df":
            return 0, f"Filesystem 1024-blocks Used Available Capacity Mounted on\nfake 1 1 {self.free_kib} 1% x\n"
        return 0, ""

    def stop(self, container_id: str, timeout: int = 30) -> None:
        service = self._service_of(container_id)
        self.calls.append(("stop", service))
        self.running[service] = replace(self.running[service], state="exited", health="none")

    def start(self, container_id: str) -> None:
        service = self._service_of(container_id)
        self.calls.append(("start", service))
        self.running[service] = replace(self.running[service], state="running", health="healthy")

    def wait_helpers(self, project: str, timeout: float = 600) -> None:
        pass

    def remove_helpers(self, project: str) -> int:
        return 0
