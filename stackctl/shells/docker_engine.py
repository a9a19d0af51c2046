"""The Docker SDK shell: container state, health, logs, images and engine facts, and the few container operations
backups need (copying files out of and into containers and volumes, exec, stop and start, short-lived helper
containers on a volume). Nothing else talks to the engine.

Lifecycle (up/down/logs) goes through the Compose CLI (stackctl.compose); inspection comes from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from stackctl.core.errors import StackError
from stackctl.core.readiness import ContainerInfo, SwarmServiceInfo, TaskInfo
from stackctl.core.swarm import NAMESPACE_LABEL, NodeInfo
from stackctl.core.units import parse_time

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
HELPER_LABEL = "org.stackctl.helper-of"  # short-lived containers stackctl runs on a project's volumes
ARCHIVE_CHUNK = 2 * 1024 * 1024


class EngineUnreachable(StackError):
    exit_code = 3


def _parse_time(text: str | None) -> datetime | None:
    """The engine's times (RFC 3339, nanoseconds); its "never" (year 1) is None."""
    if not text or text.startswith("0001-"):
        return None
    return parse_time(text)


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


def node_info(attrs: dict) -> NodeInfo:
    """A NodeInfo from `docker node inspect` data."""
    spec, status = attrs.get("Spec") or {}, attrs.get("Status") or {}
    return NodeInfo(id=attrs.get("ID", ""), hostname=(attrs.get("Description") or {}).get("Hostname", ""),
                    role=spec.get("Role", ""), availability=spec.get("Availability", ""),
                    state=status.get("State", ""), address=status.get("Addr", ""), labels=dict(spec.get("Labels") or {}))


def _same_spec(task: dict, template: dict) -> bool:
    """Does the task run the service's present spec? What an update changes lives in the container spec (image,
    configs, secrets, environment) and the resources."""
    spec = task.get("Spec") or {}
    return all(spec.get(key) == template.get(key) for key in ("ContainerSpec", "Resources"))


def swarm_service_info(attrs: dict, tasks: list[dict], hostnames: dict[str, str], project: str) -> SwarmServiceInfo:
    """A SwarmServiceInfo from `docker service inspect` data and its tasks (pure: tests feed recorded data)."""
    spec = attrs.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    mode = spec.get("Mode") or {}
    infos = []
    for task in tasks:
        status = task.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        infos.append(TaskInfo(
            node=hostnames.get(task.get("NodeID", ""), ""), state=status.get("State", "unknown"),
            desired=task.get("DesiredState", ""), error=status.get("Err", ""), message=status.get("Message", ""),
            exit_code=container.get("ExitCode"), since=_parse_time(status.get("Timestamp")),
            created=_parse_time(task.get("CreatedAt")), current=_same_spec(task, template),
            container_id=(container.get("ContainerID") or "")[:12]))
    update = attrs.get("UpdateStatus") or {}
    image = (template.get("ContainerSpec") or {}).get("Image", "").split("@")[0]
    return SwarmServiceInfo(
        name=spec.get("Name", "").removeprefix(f"{project}_"), mode="global" if "Global" in mode else "replicated",
        replicas=(mode.get("Replicated") or {}).get("Replicas"), image=image, tasks=tuple(infos),
        update_state=update.get("State", ""), update_message=update.get("Message", ""))


@dataclass(frozen=True)
class SwarmState:
    """This engine's place in a swarm."""

    state: str  # inactive | pending | active | locked | error
    manager: bool  # it can deploy (ControlAvailable)
    node_id: str = ""
    error: str = ""


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

    # --- Docker Swarm ------------------------------------------------------------------------------------------------

    def swarm_state(self) -> SwarmState:
        swarm = self.info().get("Swarm") or {}
        return SwarmState(swarm.get("LocalNodeState", "inactive"), bool(swarm.get("ControlAvailable")),
                          swarm.get("NodeID", ""), swarm.get("Error", ""))

    def nodes(self) -> list[NodeInfo]:
        return sorted((node_info(n.attrs) for n in self.client.nodes.list()), key=lambda n: n.hostname)

    def stack_services(self, project: str) -> list[SwarmServiceInfo]:
        """The services `docker stack deploy` made for the stack, with their tasks."""
        hostnames = {n.id: n.hostname for n in self.nodes()}
        found = []
        for service in self.client.services.list(filters={"label": f"{NAMESPACE_LABEL}={project}"}):
            found.append(swarm_service_info(service.attrs, service.tasks(), hostnames, project))
        return sorted(found, key=lambda s: s.name)

    def task_containers(self, project: str, name: str) -> list[str]:
        """Ids of the running containers of service `name`'s tasks on this node."""
        found = self.client.containers.list(filters={"label": f"com.docker.swarm.service.name={project}_{name}"})
        return [c.id for c in found]

    def service_logs(self, project: str, name: str, tail: int = 30) -> str:
        try:
            service = self.client.services.get(f"{project}_{name}")
            data = b"".join(service.logs(stdout=True, stderr=True, tail=tail))
        except Exception as error:
            return f"(logs unavailable: {error})"
        return data.decode("utf-8", "replace")

    def _objects(self, kind: str, project: str) -> list:
        return getattr(self.client, kind).list(filters={"label": f"{NAMESPACE_LABEL}={project}"})

    def secret_names(self, project: str) -> list[str]:
        return sorted(s.name for s in self._objects("secrets", project))

    def config_names(self, project: str) -> list[str]:
        return sorted(c.name for c in self._objects("configs", project))

    def create_secret(self, name: str, value: str, labels: dict[str, str]) -> None:
        """A Swarm secret (stored encrypted in the managers' Raft log); the value travels only over the API."""
        import docker.errors

        try:
            self.client.secrets.create(name=name, data=value.encode(), labels=labels)
        except docker.errors.APIError as error:
            raise StackError(f"cannot create the Swarm secret {name}: {getattr(error, 'explanation', '') or error}",
                             details="'docker secret ls' lists the cluster's secrets") from None

    def objects_in_use(self, project: str) -> set[str]:
        """Names of the configs and secrets the stack's services refer to."""
        used = set()
        for service in self.client.services.list(filters={"label": f"{NAMESPACE_LABEL}={project}"}):
            container = ((service.attrs.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
            for ref in (container.get("Secrets") or []) + (container.get("Configs") or []):
                used.add(ref.get("SecretName") or ref.get("ConfigName"))
        return used

    def remove_object(self, kind: str, name: str) -> bool:
        """Remove a secret or config (kind "secrets" or "configs"); False when the engine refuses (still in use)."""
        import docker.errors

        try:
            getattr(self.client, kind).get(name).remove()
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False

    def stack_volumes(self, project: str) -> list[str]:
        """The stack's volumes on this node (docker stack deploy labels them with the stack's namespace)."""
        return sorted(v.name for v in self.client.volumes.list(filters={"label": f"{NAMESPACE_LABEL}={project}"}))

    def remove_volume(self, name: str) -> str:
        """Remove one volume; "" when done, else the engine's reason (in use by a container still stopping)."""
        import docker.errors

        try:
            self.client.volumes.get(name).remove()
            return ""
        except docker.errors.NotFound:
            return ""
        except docker.errors.APIError as error:
            return str(getattr(error, "explanation", "") or error)

    def stack_containers(self, project: str) -> int:
        """How many containers of the stack's tasks exist on this node."""
        return len(self.client.containers.list(all=True, filters={"label": f"{NAMESPACE_LABEL}={project}"}))

    def start_forwarder(self, image: str, network: str, script: str, ports: list[int], labels: dict[str, str]) -> str:
        """A container on `network` running `script` (sh -c), each of `ports` published on 127.0.0.1 of this
        engine's machine at a port the engine picks. Returns its id."""
        import docker.errors

        try:
            container = self.client.containers.run(
                image, entrypoint=["/bin/sh", "-c", script], network=network, detach=True,
                ports={f"{port}/tcp": ("127.0.0.1", None) for port in ports}, labels=labels)
        except docker.errors.ImageNotFound as error:
            raise StackError(f"cannot start a forwarder from {image}: {getattr(error, 'explanation', '') or error}",
                             details="swarm.forwarder_image names the image (one with busybox's nc)") from None
        except docker.errors.NotFound as error:
            raise StackError(f"cannot start a forwarder on {network}: {getattr(error, 'explanation', '') or error}",
                             details="Is the stack deployed? 'stackctl up' deploys it") from None
        except docker.errors.APIError as error:
            raise StackError(f"cannot start a forwarder from {image} on {network}: "
                             f"{getattr(error, 'explanation', '') or error}") from None
        return container.id

    def forwarder_ports(self, container_id: str) -> dict[int, int]:
        """Container port -> host port of a started forwarder (empty until the engine has published them)."""
        container = self.client.containers.get(container_id)
        published = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        return {int(key.split("/")[0]): int(bindings[0]["HostPort"])
                for key, bindings in published.items() if bindings}

    def exec_output(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        code, output = self.client.containers.get(container_id).exec_run(argv)
        return code, output.decode("utf-8", "replace")

    def container_state(self, container_id: str) -> tuple[str, str]:
        """(state, last log lines) of a container."""
        container = self.client.containers.get(container_id)
        return container.status, container.logs(tail=10).decode("utf-8", "replace")

    def remove_container(self, container_id: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(container_id).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

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
                # v: the anonymous volume an image's VOLUME (prom/prometheus: /prometheus) gets when the helper
                # mounts the service's volume elsewhere; named volumes are never removed by it
                container.remove(force=True, v=True)

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
                    container.remove(force=True, v=True)
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
