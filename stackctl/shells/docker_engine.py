"""The Docker SDK shell: container state, health, logs, images and engine facts, and the few container operations
backups need (copying files out of and into containers and volumes, exec, stop and start, short-lived helper
containers on a volume). Nothing else talks to the engine.

Lifecycle (up/down/logs) goes through the Compose CLI (stackctl.compose); inspection comes from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from stackctl.core.errors import StackError
from stackctl.core.readiness import ContainerInfo

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
HELPER_LABEL = "org.stackctl.helper-of"  # short-lived containers stackctl runs on a project's volumes
ARCHIVE_CHUNK = 2 * 1024 * 1024


class EngineUnreachable(StackError):
    exit_code = 3


def _parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    text = text.rstrip("Z")
    main, _, frac = text.partition(".")
    try:
        return datetime.fromisoformat(main + ("." + frac[:6] if frac else "")).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def container_info(attrs: dict) -> ContainerInfo:
    """A ContainerInfo from `docker inspect` data (pure, so tests can feed recorded inspect output)."""
    state = attrs.get("State") or {}
    health = state.get("Health") or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    logs = health.get("Log") or []
    return ContainerInfo(
        id=attrs.get("Id", "")[:12],
        name=attrs.get("Name", "").lstrip("/"),
        service=labels.get(SERVICE_LABEL, ""),
        state=state.get("Status", "unknown"),
        health=health.get("Status", "none"),
        exit_code=int(state.get("ExitCode") or 0),
        restart_count=int(attrs.get("RestartCount") or 0),
        started_at=_parse_time(state.get("StartedAt")),
        image=(attrs.get("Config") or {}).get("Image", ""),
        config_hash=labels.get("org.stackctl.config-hash", ""),
        health_output=tuple((entry.get("Output") or "").strip() for entry in logs[-3:]),
    )


@dataclass
class DockerEngine:
    """A connection to the engine, made on first use."""

    _client: object = None

    @property
    def client(self):
        if self._client is None:
            import docker  # heavy import kept off the --help path

            try:
                self._client = docker.from_env(timeout=30)
                self._client.ping()
            except Exception as error:  # docker raises several types for "no engine here"
                raise EngineUnreachable(
                    f"cannot reach the Docker engine: {error}",
                    details="Is Docker running? Check `docker info`; DOCKER_HOST selects another engine.",
                ) from None
        return self._client

    def ping(self) -> None:
        """Raise EngineUnreachable (exit 3) unless the engine answers."""
        self.client

    def version(self) -> dict:
        return self.client.version()

    def info(self) -> dict:
        return self.client.info()

    def containers(self, project: str) -> list[ContainerInfo]:
        found = self.client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        return sorted((container_info(c.attrs) for c in found), key=lambda c: c.service)

    def logs(self, container_id: str, tail: int = 30) -> str:
        try:
            data = self.client.containers.get(container_id).logs(tail=tail, timestamps=False)
        except Exception as error:
            return f"(logs unavailable: {error})"
        return data.decode("utf-8", "replace")

    def image_present(self, ref: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            return False

    def registry_reachable(self, ref: str) -> tuple[bool, str]:
        """Ask the registry for the image's manifest (no pull). False with the reason when it cannot answer."""
        try:
            self.client.images.get_registry_data(ref)
            return True, ""
        except Exception as error:
            reason = getattr(error, "explanation", None) or str(error)
            return False, reason.splitlines()[0][:200]

    def volumes(self, project: str) -> list[str]:
        return sorted(v.name for v in self.client.volumes.list(filters={"label": f"{PROJECT_LABEL}={project}"}))

    def host_gateway(self) -> str | None:
        """The address `host-gateway` (host.docker.internal) stands for: the default bridge's gateway, unless the
        daemon was configured with another host-gateway-ip. None when the engine does not say."""
        try:
            configs = self.client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []
        except Exception:
            return None
        for config in configs:
            if config.get("Gateway"):
                return config["Gateway"]
            if config.get("Subnet"):  # Docker 20.10 often leaves Gateway out: the bridge takes the first address
                import ipaddress

                network = ipaddress.ip_network(config["Subnet"], strict=False)
                return str(next(network.hosts()))
        return None

    # --- containers and their files (backup and restore) ---------------------------------------------------

    def _container(self, container_id: str):
        with _engine_errors(f"container {container_id}"):
            return self.client.containers.get(container_id)

    def container_of(self, project: str, service: str) -> ContainerInfo | None:
        """The container of a compose service (its compose name), or None."""
        return next((c for c in self.containers(project) if c.service == service), None)

    def get_archive(self, container_id: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` inside the container (running or stopped), as the engine makes it."""
        with _engine_errors(f"cannot copy {path} out of container {container_id}"):
            stream, _ = self._container(container_id).get_archive(path, chunk_size=ARCHIVE_CHUNK)
        return stream

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        """Extract a tar stream (sent as it is produced) into `path`, which must exist, inside the container."""
        with _engine_errors(f"cannot copy files into container {container_id} at {path}"):
            self.client.api.put_archive(container_id, path, iter(chunks))

    def exec(self, container_id: str, argv: list[str], user: str = "") -> tuple[int, str]:
        """Run a command in a running container: (exit code, output)."""
        with _engine_errors(f"cannot run {argv[0]} in container {container_id}"):
            result = self._container(container_id).exec_run(argv, user=user, demux=False)
        return result.exit_code, (result.output or b"").decode("utf-8", "replace")

    def stop(self, container_id: str, timeout: int = 30) -> None:
        with _engine_errors(f"cannot stop container {container_id}"):
            self._container(container_id).stop(timeout=timeout)

    def start(self, container_id: str) -> None:
        with _engine_errors(f"cannot start container {container_id}"):
            self._container(container_id).start()

    def volume_exists(self, name: str) -> bool:
        import docker.errors

        try:
            self.client.volumes.get(name)
            return True
        except docker.errors.NotFound:
            return False

    @contextlib.contextmanager
    def _helper(self, project: str, image: str, volume: str, mount: str, command: list[str] | None):
        """A container of `image` (root, no network) with the volume at `mount`, removed afterwards."""
        with _engine_errors(f"cannot create a helper container of {image} on volume {volume}"):
            container = self.client.containers.create(
                image, entrypoint=["/bin/sh", "-c"] if command else ["/bin/sh"], command=command, user="0",
                volumes={volume: {"bind": mount, "mode": "rw"}}, labels={HELPER_LABEL: project},
                network_mode="none", working_dir="/")
        try:
            yield container
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def run_on_volume(self, project: str, image: str, volume: str, mount: str, script: str,
                      timeout: float = 600) -> tuple[int, str]:
        """Run a shell script as root in a short-lived container of `image` with the volume at `mount`:
        (exit code, output). It keeps running if stackctl is killed, so a script must leave the volume consistent
        on its own."""
        with self._helper(project, image, volume, mount, [script]) as container, \
                _engine_errors(f"the helper container on volume {volume} failed"):
            container.start()
            status = container.wait(timeout=timeout)
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            return int(status.get("StatusCode", 1)), output

    def copy_into_volume(self, project: str, image: str, volume: str, mount: str, chunks: Iterable[bytes]) -> None:
        """Extract a tar stream into the volume (mounted at `mount` in a created, never started, container of
        `image`; the tar's names are relative to `mount`)."""
        with self._helper(project, image, volume, mount, None) as container:
            self.put_archive(container.id, mount, chunks)

    def remove_helpers(self, project: str) -> int:
        """Remove helper containers a killed stackctl left behind (after they finished); how many."""
        removed = 0
        for container in self.client.containers.list(all=True, filters={"label": f"{HELPER_LABEL}={project}"}):
            if container.status != "running":
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                    removed += 1
        return removed

    def wait_helpers(self, project: str, timeout: float = 600) -> None:
        """Wait until no helper container of the project runs (a swap a killed stackctl started may still)."""
        for container in self.client.containers.list(filters={"label": f"{HELPER_LABEL}={project}"}):
            container.wait(timeout=timeout)


@contextlib.contextmanager
def _engine_errors(what: str):
    """The engine's refusals, and an engine that stops answering, as StackError naming what was being done."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.NotFound as error:
        raise StackError(f"{what}: {_explain(error)} (it does not exist, or not any more)") from None
    except docker.errors.APIError as error:
        raise StackError(f"{what}: {_explain(error)}") from None
    except requests.RequestException as error:
        raise StackError(f"{what}: the engine did not answer ({type(error).__name__})") from None


def _explain(error) -> str:
    return str(getattr(error, "explanation", None) or error).splitlines()[0][:300]
