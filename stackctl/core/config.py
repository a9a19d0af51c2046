"""The stack file model: a typed, validated view of stack.yaml with defaults, presets and environment overrides.

Override order, applied here and nowhere else: catalog/model defaults -> stack.yaml -> STACKCTL_* environment
variables -> command-line options (passed in by the CLI).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackctl.core import catalog, yamltext
from stackctl.core.alerting import AlertingConfig, RulesConfig, user_secrets
from stackctl.core.errors import ConfigError, StackError
from stackctl.core.schema import SchemaError, build, closest, format_path
from stackctl.core.units import check_duration, check_es_duration, check_heap, check_memory, check_port, \
    check_retention_size
from stackctl.core.versions import ImageRef, Version, with_mirror

MAX_VALUES = 100_000  # a stack file holds a few hundred; aliases must not make it millions

SCHEMA_VERSION = 1
DEFAULT_FILE = "stack.yaml"
ENV_PREFIX = "STACKCTL_"
# STACKCTL_* variables that are options of the CLI, not config overrides. REQUIRE_ALL and DEV_CACHE belong to the
# test tooling (.ci/run exports STACKCTL_REQUIRE_ALL=1; tests/support/debian.py reads STACKCTL_DEV_CACHE).
ENV_RESERVED = {"FILE", "DEBUG", "NO_COLOR", "REQUIRE_ALL", "DEV_CACHE"}

_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_IP = re.compile(r"(\d{1,3}\.){3}\d{1,3}|[0-9a-fA-F:]+")


@dataclass
class ServiceConfig:
    """Settings every service has. `enabled: null` means: as the preset says."""

    enabled: bool | None = None
    port: int | None = None  # host port of the service's main port (catalog default when unset)
    ports: dict[str, int] = field(default_factory=dict)  # host ports of its other published ports, by name
    image: str | None = None  # full image reference with tag; overrides catalog image and mirror
    memory: str | None = None  # memory limit, e.g. 512m (catalog default when unset)

    def __post_init__(self) -> None:
        check_port(self.port, "port")
        for name, value in self.ports.items():
            check_port(value, "ports", name)
        if self.memory is not None:
            check_memory(self.memory, "memory")
        if self.image is not None:
            ref = ImageRef.parse(self.image)
            if not ref.tag:
                raise SchemaError(("image",), f"image override {self.image!r} has no tag",
                                  "add the version tag, e.g. prom/prometheus:v3.14.0: the version decides the flags rendered")


@dataclass
class PrometheusConfig(ServiceConfig):
    retention: str = "15d"
    retention_size: str = ""  # e.g. 10GB; empty: no size limit
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("retention", "scrape_interval", "evaluation_interval"):
            check_duration(getattr(self, key), key)
        if self.retention_size:
            check_retention_size(self.retention_size, "retention_size")


@dataclass
class AlertmanagerConfig(ServiceConfig):
    pass


@dataclass
class GrafanaConfig(ServiceConfig):
    admin_user: str = "admin"
    plugins: list[str] = field(default_factory=list)  # installed on start (needs network to grafana.com)
    anonymous_viewer: bool = False  # let anyone who can reach the port view dashboards


@dataclass
class ElasticsearchConfig(ServiceConfig):
    heap: str = "512m"  # JVM heap; keep it about half of `memory`
    cluster_name: str = "stackctl"
    extra_java_opts: str = ""  # appended to ES_JAVA_OPTS, e.g. -XX:UseSVE=0 on some Apple arm64 chips
    log_retention: str = "7d"  # logs-stackctl-* data is deleted after this (Elasticsearch time units: d, h, m, s)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heap(self.heap, "heap")
        if not re.fullmatch(r"[A-Za-z0-9_:=.+/ -]*", self.extra_java_opts):
            raise SchemaError(("extra_java_opts",), "may hold only JVM options like -XX:UseSVE=0 (no quotes or $)")
        check_es_duration(self.log_retention, "log_retention")


@dataclass
class ElasticsearchExporterConfig(ServiceConfig):
    """On whenever Elasticsearch and Prometheus are (its cluster-health metrics feed the stack's alerts)."""


@dataclass
class LogstashConfig(ServiceConfig):
    heap: str = "256m"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heap(self.heap, "heap")


@dataclass
class KibanaConfig(ServiceConfig):
    pass


@dataclass
class JaegerConfig(ServiceConfig):
    max_traces: int = 100000  # in-memory storage: traces kept before the oldest are dropped

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_traces < 1:
            raise SchemaError(("max_traces",), "must be at least 1")


@dataclass
class CollectorConfig(ServiceConfig):
    memory_limit_percent: int = 80  # memory_limiter processor, of the container limit

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 10 <= self.memory_limit_percent <= 95:
            raise SchemaError(("memory_limit_percent",), "must be between 10 and 95")


@dataclass
class NodeExporterConfig(ServiceConfig):
    host_root: bool = True  # mount the host's / read-only so filesystem metrics describe the host


@dataclass
class Services:
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    grafana: GrafanaConfig = field(default_factory=GrafanaConfig)
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    elasticsearch_exporter: ElasticsearchExporterConfig = field(default_factory=ElasticsearchExporterConfig)
    logstash: LogstashConfig = field(default_factory=LogstashConfig)
    kibana: KibanaConfig = field(default_factory=KibanaConfig)
    jaeger: JaegerConfig = field(default_factory=JaegerConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    node_exporter: NodeExporterConfig = field(default_factory=NodeExporterConfig)

    def __post_init__(self) -> None:
        # The catalog's defaults, made explicit: an empty stack file loads like the one `stackctl init` writes.
        for key in catalog.USER_SERVICES:
            spec, settings = catalog.SERVICES[key], self.get(key)
            published = [p for p in spec.ports if p.host is not None]
            if settings.port is None and published and published[0] is spec.primary_port:
                settings.port = spec.primary_port.host
            settings.ports = {**{p.name: p.host for p in published if p is not spec.primary_port}, **settings.ports}
            if settings.memory is None:
                settings.memory = spec.memory

    def get(self, key: str) -> ServiceConfig:
        return getattr(self, key)


@dataclass
class ScrapeTarget:
    """One of the user's own apps for Prometheus to scrape."""

    job: str
    targets: list[str]
    metrics_path: str = "/metrics"
    scheme: str = "http"
    scrape_interval: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _LABEL.fullmatch(self.job.replace("-", "_")):
            raise SchemaError(("job",), f"must be a simple name (letters, digits, _ and -), got {self.job!r}")
        if not self.targets:
            raise SchemaError(("targets",), "needs at least one host:port")
        for i, target in enumerate(self.targets):
            if not re.fullmatch(r"[A-Za-z0-9._-]+:\d{1,5}", target):
                raise SchemaError(("targets", i), f"must be host:port, got {target!r}")
        if self.scheme not in ("http", "https"):
            raise SchemaError(("scheme",), f"must be http or https, got {self.scheme!r}")
        if not self.metrics_path.startswith("/"):
            raise SchemaError(("metrics_path",), "must start with /")
        if self.scrape_interval is not None:
            check_duration(self.scrape_interval, "scrape_interval")
        for name in self.labels:
            if not _LABEL.fullmatch(name):
                raise SchemaError(("labels", name), "is not a valid Prometheus label name")


@dataclass
class VerifyConfig:
    """`stackctl verify`: its deadline, and the webhook it listens on with --deep for Alertmanager's delivery (the
    rendered alertmanager.yml sends verify's own synthetic alerts, and only those, to host.docker.internal:PORT)."""

    timeout: str = "60s"  # overall deadline of one run (--timeout overrides)
    webhook_port: int = 19093
    # Address the webhook listens on. Empty: the Docker bridge's gateway, which host.docker.internal reaches on
    # Linux (or loopback where that address is not on this machine, as with Docker Desktop).
    webhook_address: str = ""

    def __post_init__(self) -> None:
        check_duration(self.timeout, "timeout", minimum=1)
        check_port(self.webhook_port, "webhook_port")
        if self.webhook_address and not _IP.fullmatch(self.webhook_address):
            raise SchemaError(("webhook_address",), f"must be an IP address (got {self.webhook_address!r})")


@dataclass
class BackupConfig:
    """`stackctl backup`: where archives go, and how they are encrypted unless the command line says otherwise
    (paths relative to the stack file; at most one of the two)."""

    directory: str = "backups"
    passphrase_file: str = ""  # a file holding the passphrase (first line)
    key_file: str = ""  # an age identity file (AGE-SECRET-KEY-1...) or recipients file (age1...)

    def __post_init__(self) -> None:
        if not self.directory.strip():
            raise SchemaError(("directory",), "must name a directory")
        if self.passphrase_file and self.key_file:
            raise SchemaError(("key_file",), "set passphrase_file or key_file, not both")


@dataclass
class StackConfig:
    version: int = SCHEMA_VERSION
    project: str = "stackctl"  # Compose project name: prefixes containers, volumes and networks
    preset: str = "full"  # which services are on unless `enabled` says otherwise: metrics, logs, traces, full
    bind_address: str = "127.0.0.1"  # host address every published port binds to
    registry_mirror: str = ""  # e.g. mirror.example.com:5000: replaces the registry host of every default image
    state_dir: str = ".stackctl"  # generated-once values (secrets), relative to the stack file
    services: Services = field(default_factory=Services)
    scrape_targets: list[ScrapeTarget] = field(default_factory=list)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)

    def __post_init__(self) -> None:
        if self.version != SCHEMA_VERSION:
            raise SchemaError(("version",), f"this stackctl reads stack file version {SCHEMA_VERSION}, got {self.version}")
        if not _PROJECT.fullmatch(self.project):
            raise SchemaError(("project",), f"must be lowercase letters, digits, - and _ (got {self.project!r})")
        if self.preset not in catalog.PRESETS:
            raise SchemaError(("preset",), f"must be one of {', '.join(catalog.PRESETS)} (got {self.preset!r})",
                              closest(self.preset, catalog.PRESETS))
        if not _IP.fullmatch(self.bind_address):
            raise SchemaError(("bind_address",), f"must be an IP address (got {self.bind_address!r})")
        if self.registry_mirror and ("://" in self.registry_mirror or " " in self.registry_mirror):
            raise SchemaError(("registry_mirror",), "must be a registry host, host:port or host:port/path, without a scheme")
        jobs = [t.job for t in self.scrape_targets]
        for i, job in enumerate(jobs):
            if job in jobs[:i] or job in {s.key for s in catalog.CATALOG} | {s.name for s in catalog.CATALOG}:
                raise SchemaError(("scrape_targets", i, "job"), f"job name {job!r} is already used")


@dataclass(frozen=True)
class ResolvedService:
    """A service as it will run: catalog facts plus the user's settings, everything decided."""

    spec: catalog.ServiceSpec
    settings: ServiceConfig
    image: str
    version: Version
    host_ports: dict[str, int]  # published ports by PortSpec name
    memory: str
    secrets: tuple[catalog.SecretUse, ...] = ()  # the secrets it uses in this stack

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Stack:
    """The loaded, resolved stack: what rendering and every command work from."""

    config: StackConfig
    file: Path  # the stack file (may not exist when built from defaults)
    services: dict[str, ResolvedService]  # enabled services (and setup jobs) by key, catalog order
    warnings: tuple[str, ...] = ()

    @property
    def state_dir(self) -> Path:
        return (self.file.parent / self.config.state_dir).resolve()

    def enabled(self, key: str) -> bool:
        return key in self.services

    def get(self, key: str) -> ResolvedService:
        return self.services[key]


# --- loading -------------------------------------------------------------------------------------------------


def _yaml_lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line number."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (key_node.value,)
            out[child] = key_node.start_mark.line + 1
            _yaml_lines(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_lines(item, path + (i,), out)
    return out


def _line_for(lines: dict[tuple, int], path: tuple) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node stands for once aliases are expanded (each distinct node is sized once)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def parse_yaml(text: str, source: str) -> tuple[dict, dict[tuple, int]]:
    """The stack file's data and the line of every key path. One parse (libyaml's where installed); documents
    whose aliases expand to more than MAX_VALUES values are refused before anything walks them."""
    loader = yamltext.Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise ConfigError(source, "", f"expands to more than {MAX_VALUES} values (YAML anchors and aliases "
                                          "repeating each other?); a stack file is far smaller", line=1)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, "", f"not valid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", "the stack file must be a mapping of settings at the top level", line=1)
    # Duplicate keys are legal YAML that silently drops a value: refuse them.
    _reject_duplicate_keys(node, source)
    return data, _yaml_lines(node)


def _reject_duplicate_keys(node: yaml.Node, source: str, path: tuple = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise ConfigError(source, format_path(path + (key_node.value,)), "is set twice",
                                  line=key_node.start_mark.line + 1)
            seen.add(key_node.value)
            _reject_duplicate_keys(value_node, source, path + (key_node.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _reject_duplicate_keys(item, source, path + (i,))


def env_overrides(environ: dict[str, str]) -> list[tuple[str, tuple, Any]]:
    """STACKCTL_SERVICES__GRAFANA__PORT=3001 -> ("STACKCTL_...", ("services", "grafana", "port"), 3001).

    Values are parsed as YAML (so `false`, `3001`, `[a, b]` have their types); keys are lower-cased.
    """
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX):] in ENV_RESERVED:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        if not all(path):
            continue
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError:
            value = environ[name]
        found.append((name, path, value))
    return found


def _apply_override(data: dict, path: tuple, value: Any, origin: str) -> None:
    fields = {f.name for f in dataclasses.fields(StackConfig)}
    if path[0] not in fields:
        hint = closest(path[0], fields)
        raise ConfigError(origin, format_path(path), "unknown setting", hint=hint)
    target = data
    for part in path[:-1]:
        existing = target.get(part)
        if existing is None:
            existing = target[part] = {}
        if not isinstance(existing, dict):
            raise ConfigError(origin, format_path(path), f"cannot set inside {part!r}, which is not a mapping")
        target = existing
    target[path[-1]] = value


def load_config(data: dict, source: str, lines: dict[tuple, int] | None = None,
                environ: dict[str, str] | None = None, sets: list[str] | None = None,
                origins_out: dict[tuple, str] | None = None) -> StackConfig:
    """Merge environment and --set overrides into the parsed file data and build the typed config.

    `origins_out`, when given, receives the key paths set by overrides and where each came from."""
    lines = lines or {}
    origins: dict[tuple, str] = {}
    for name, path, value in env_overrides(dict(environ or {})):
        _apply_override(data, path, value, f"environment variable {name}")
        origins[path] = f"environment variable {name}"
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise StackError(f"--set takes KEY=VALUE with a dotted key, e.g. services.grafana.port=3001 (got {item!r})")
        path = tuple(key.split("."))
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _apply_override(data, path, value, f"--set {item}")
        origins[path] = f"--set {item}"
    if origins_out is not None:
        origins_out.update(origins)
    try:
        return build(StackConfig, data)
    except SchemaError as error:
        origin = _origin_for(origins, error.path)
        raise ConfigError(origin or source, format_path(error.path), error.problem,
                          line=None if origin else _line_for(lines, error.path), hint=error.hint) from None


def _origin_for(origins: dict[tuple, str], path: tuple) -> str | None:
    """The environment variable or --set option that set `path`, a mapping around it or a key inside it."""
    for set_path, origin in reversed(list(origins.items())):
        if path[: len(set_path)] == set_path or set_path[: len(path)] == path:
            return origin
    return None


def resolve(config: StackConfig, file: Path, lines: dict[tuple, int] | None = None,
            origins: dict[tuple, str] | None = None) -> Stack:
    """Decide everything the catalog leaves open: which services run, images, versions, host ports."""
    source = str(file)
    lines = lines or {}
    origins = origins or {}

    def fail(path: tuple, problem: str, hint: str = "") -> ConfigError:
        origin = _origin_for(origins, path)
        return ConfigError(origin or source, format_path(path), problem,
                           line=None if origin else _line_for(lines, path), hint=hint)

    def user_set(path: tuple) -> bool:
        return path in lines or _origin_for(origins, path) is not None

    preset = set(catalog.PRESETS[config.preset])

    def wanted(key: str) -> bool:
        explicit = config.services.get(key).enabled
        if explicit is not None:
            return explicit
        follows = catalog.SERVICES[key].follows
        return all(wanted(other) for other in follows) if follows else key in preset

    enabled = {key for key in catalog.USER_SERVICES if wanted(key)}
    for key in sorted(enabled):
        for needed in catalog.SERVICES[key].requires:
            if needed not in enabled:
                # Point at what the user wrote: the dependent's `enabled`, else the switch that turned `needed` off.
                blame = key if config.services.get(key).enabled is not None else needed
                raise fail(("services", blame, "enabled"), f"{key} needs {needed}, which is disabled",
                           f"enable services.{needed} or disable services.{key}")
    warnings: list[str] = []
    resolved: dict[str, ResolvedService] = {}
    used_ports: dict[int, tuple[str, tuple]] = {}
    for spec in catalog.CATALOG:
        parent = spec.part_of or spec.key
        if parent not in enabled:
            continue
        settings = config.services.get(parent)
        own = not spec.oneshot
        path = ("services", parent)
        if settings.image and own:
            image = settings.image
        elif settings.image and spec.image == catalog.SERVICES[parent].image:
            image = settings.image  # a setup job running in its parent's image follows its override
        else:
            image = with_mirror(spec.image, config.registry_mirror) + ":" + spec.version
        ref = ImageRef.parse(image)
        version = ref.version
        if version is None:
            version = Version.parse(spec.version)
            warnings.append(f"{spec.title}: tag {ref.tag!r} of {image} is not a version; rendering for {spec.version}")
        problem = spec.check_version(version)
        if problem:
            raise fail(path + ("image",), problem)
        host_ports: dict[str, int] = {}
        if own:
            if settings.port is not None and not (spec.primary_port and spec.primary_port.host):
                raise fail(path + ("port",), f"{spec.key} publishes no port on the host")
            names = {p.name for p in spec.ports if p.host is not None}
            for name in settings.ports:
                if name not in names or (spec.primary_port and name == spec.primary_port.name):
                    allowed = sorted(names - {spec.primary_port.name}) if spec.primary_port else []
                    raise fail(path + ("ports", name), "unknown port name" + (
                        f"; {spec.key} publishes {', '.join(allowed)} (its main port is set with `port`)" if allowed
                        else f"; {spec.key} has no other published ports (its main port is set with `port`)"),
                        closest(name, allowed))
            for port in spec.ports:
                if port.host is None:
                    continue
                is_primary = port is spec.primary_port
                host = settings.port if is_primary else settings.ports[port.name]  # defaults filled by Services
                key_path = path + (("port",) if is_primary else ("ports", port.name))
                if host in used_ports:
                    other, other_path = used_ports[host]
                    if not user_set(key_path) and user_set(other_path):  # blame the port the user chose
                        raise fail(other_path, f"host port {host} is already used by {spec.key} ({port.name})",
                                   "give one of them another port")
                    raise fail(key_path, f"host port {host} is already used by {other}",
                               "give one of them another port")
                used_ports[host] = (f"{spec.key} ({port.name})", key_path)
                host_ports[port.name] = host
        resolved[spec.key] = ResolvedService(
            spec=spec, settings=settings, image=image, version=version, host_ports=host_ports,
            memory=settings.memory if own else spec.memory,
        )
    for key, svc in resolved.items():
        secrets = tuple(use for use in svc.spec.secrets if not use.when or use.when in resolved)
        if svc.spec.takes_user_secrets:  # receivers' credentials, supplied by the user from a file or variable
            secrets += tuple(catalog.SecretUse(name, generate=None) for name in user_secrets(config))
        resolved[key] = dataclasses.replace(svc, secrets=secrets)
    # Some services talk to another only with the same major version (Kibana and Logstash to Elasticsearch).
    for key, svc in resolved.items():
        partner = resolved.get(svc.spec.same_major_as)
        if partner is not None and svc.version.major != partner.version.major:
            raise fail(("services", key, "image"),
                       f"{key} {svc.version} does not work with {partner.spec.title} {partner.version}",
                       f"use the same major version for {partner.spec.title} and {svc.spec.title}")
    return Stack(config=config, file=file, services=resolved, warnings=tuple(warnings))
