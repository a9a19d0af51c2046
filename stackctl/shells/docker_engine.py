"""The Docker SDK shell: container state, health, logs, images and engine facts. Nothing else talks to the engine.

Lifecycle (up/down/logs) goes through the Compose CLI (stackctl.compose); inspection comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from stackctl.core.errors import StackError
from stackctl.core.readiness import ContainerInfo

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


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
