"""The stack file model: a typed, validated view of stack.yaml with defaults, presets and environment overrides.

Override order, applied here and nowhere else: catalog/model defaults -> stack.yaml -> STACKCTL_* environment
variables -> command-line options (passed in by the CLI).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackctl.core import catalog, yamltext
from stackctl.core.alerting import AlertingConfig, RulesConfig, secret_ref
from stackctl.core.user_secrets import user_secrets
from stackctl.core.errors import ConfigError, StackError
from stackctl.core.schema import SchemaError, build, closest, format_path
from stackctl.core.units import check_duration, check_es_duration, check_heap, check_memory, check_port, \
    check_host_port, check_retention_size, heap_bytes, memory_bytes
from stackctl.core.versions import MIRROR, ImageRef, Version, with_mirror

MAX_VALUES = 100_000  # a stack file holds a few hundred; aliases must not make it millions

SCHEMA_VERSION = 1
DEFAULT_FILE = "stack.yaml"
ENV_PREFIX = "STACKCTL_"
# STACKCTL_* variables that are options of the CLI, not config overrides. REQUIRE_ALL and DEV_CACHE belong to the
# test tooling (.ci/run exports STACKCTL_REQUIRE_ALL=1; tests/support/debian.py reads STACKCTL_DEV_CACHE).
ENV_RESERVED = {"FILE", "DEBUG", "NO_COLOR", "REQUIRE_ALL", "DEV_CACHE"}

_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LOGIN = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_PLUGIN = re.compile(r"[a-z0-9][a-z0-9._-]*(@[0-9A-Za-z.+-]+)?")
_HTTP_URL = re.compile(r"https?://[^\s/'\"{}$]+[^\s'\"{}$]*")
_REMOTE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A Swarm node label as `key=value`: the key a dotted name (stackctl.data), the value a plain word.
_NODE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}=[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TARGETS = ("compose", "swarm")
ENDPOINT_MODES = ("vip", "dnsrr")
MAX_TRACES = 10_000_000  # in-memory storage; far beyond what a laptop holds


def check_ip(value: str, *path) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SchemaError(path, f"must be an IP address like 127.0.0.1 or ::1 (got {value!r})") from None


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
            try:
                ref = ImageRef.parse(self.image)
            except ValueError as error:
                raise SchemaError(("image",), str(error)) from None
            if not ref.tag:
                raise SchemaError(("image",), f"image override {self.image!r} has no tag",
                                  "add the version tag, e.g. prom/prometheus:v3.14.0: the version decides the flags rendered")


@dataclass
class BasicAuth:
    """Credentials for a remote-write endpoint: the password comes from a file or variable, never stack.yaml."""

    username: str
    password: Any

    def __post_init__(self) -> None:
        if not _LOGIN.fullmatch(self.username):
            raise SchemaError(("username",), "must be a user name: letters, digits, '.', '_', '-' or '@', at most "
                                             "64 characters")
        self.password = secret_ref(self.password, "password", reader="Prometheus")


@dataclass
class RemoteWriteQueue:
    """Prometheus' queue_config for one remote-write endpoint (unset: Prometheus' defaults)."""

    capacity: int | None = None
    min_shards: int | None = None
    max_shards: int | None = None
    max_samples_per_send: int | None = None
    batch_send_deadline: str | None = None
    min_backoff: str | None = None
    max_backoff: str | None = None

    def __post_init__(self) -> None:
        for key in ("capacity", "min_shards", "max_shards", "max_samples_per_send"):
            value = getattr(self, key)
            if value is not None and not 1 <= value <= 1_000_000:
                raise SchemaError((key,), f"must be between 1 and 1000000 (got {value})")
        if self.min_shards and self.max_shards and self.min_shards > self.max_shards:
            raise SchemaError(("min_shards",), "must not be above max_shards")
        for key in ("batch_send_deadline", "min_backoff", "max_backoff"):
            if getattr(self, key) is not None:
                check_duration(getattr(self, key), key, minimum=0.001)

    def as_prometheus(self) -> dict:
        return {key: value for key, value in vars(self).items() if value is not None}


# Headers Prometheus sets itself and refuses in remote_write.headers (config/config.go, reservedHeaders).
RESERVED_HEADERS = {"authorization", "host", "content-encoding", "content-length", "content-type", "user-agent",
                    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "www-authenticate",
                    "retry-after", "x-prometheus-remote-write-version"}


@dataclass
class RemoteWrite:
    """One scalable backend Prometheus sends its samples to (Mimir, Thanos Receive, VictoriaMetrics, ...)."""

    url: str
    name: str = ""  # shown in Prometheus' metrics and messages; default remote-<n>
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = field(default_factory=dict)  # e.g. X-Scope-OrgID for Mimir tenants
    queue: RemoteWriteQueue = field(default_factory=RemoteWriteQueue)

    def __post_init__(self) -> None:
        if not _HTTP_URL.fullmatch(self.url):
            raise SchemaError(("url",), "must be an http:// or https:// URL without spaces, quotes or braces")
        if re.match(r"https?://[^/@]*@", self.url):
            raise SchemaError(("url",), "must not contain a user name or password (user:password@host): give them "
                                        "as basic_auth, whose password stackctl hands over as a file")
        if self.name and not _REMOTE_NAME.fullmatch(self.name):
            raise SchemaError(("name",), "must be lowercase letters, digits, - and _")
        for header in self.headers:
            if not _HEADER.fullmatch(header):
                raise SchemaError(("headers", header), "is not an HTTP header name")
            if header.lower() in RESERVED_HEADERS:
                raise SchemaError(("headers", header), "is set by Prometheus itself; use basic_auth for "
                                                       "credentials")

    @property
    def secret_name(self) -> str:
        """The Docker secret holding the basic-auth password (set once the name is known: see PrometheusConfig)."""
        return f"prometheus_remote_write_{self.name.replace('-', '_')}_password"

    @property
    def password_file(self) -> str:
        return f"/run/secrets/{self.secret_name}"


@dataclass
class PrometheusConfig(ServiceConfig):
    retention: str = "15d"
    retention_size: str = ""  # e.g. 10GB; empty: no size limit
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    remote_write: list[RemoteWrite] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("retention", "scrape_interval", "evaluation_interval"):
            check_duration(getattr(self, key), key)
        if self.retention_size:
            check_retention_size(self.retention_size, "retention_size")
        seen: set[str] = set()
        for i, target in enumerate(self.remote_write):
            target.name = target.name or f"remote-{i + 1}"
            key = target.name.replace("-", "_")
            if key in seen:
                raise SchemaError(("remote_write", i, "name"), f"{target.name!r} is already used (- and _ count as "
                                                               "the same)")
            seen.add(key)


@dataclass
class AlertmanagerConfig(ServiceConfig):
    pass


@dataclass
class GrafanaConfig(ServiceConfig):
    admin_user: str = "admin"
    plugins: list[str] = field(default_factory=list)  # installed on start (needs network to grafana.com)
    anonymous_viewer: bool = False  # let anyone who can reach the port view dashboards

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _LOGIN.fullmatch(self.admin_user):
            raise SchemaError(("admin_user",), "must be a login name: letters, digits, '.', '_', '-' or '@', "
                                               "at most 64 characters")
        for i, plugin in enumerate(self.plugins):
            if not _PLUGIN.fullmatch(plugin):
                raise SchemaError(("plugins", i), f"must be a Grafana plugin id like grafana-clock-panel, "
                                                  f"optionally @version (got {plugin!r})")


@dataclass
class ElasticsearchConfig(ServiceConfig):
    heap: str = "512m"  # JVM heap; keep it about half of `memory`
    cluster_name: str = "stackctl"
    extra_java_opts: str = ""  # appended to ES_JAVA_OPTS, e.g. -XX:UseSVE=0 on some Apple arm64 chips
    log_retention: str = "7d"  # logs-stackctl-* data is deleted after this (Elasticsearch time units: d, h, m, s)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heap(self.heap, "heap")
        if not _CLUSTER_NAME.fullmatch(self.cluster_name):
            raise SchemaError(("cluster_name",), "must be letters, digits, '.', '_' and '-', starting with a letter "
                                                 "or digit")
        if not re.fullmatch(r"[A-Za-z0-9_:=.+/ -]*", self.extra_java_opts):
            raise SchemaError(("extra_java_opts",), "may hold only JVM options like -XX:UseSVE=0 (no quotes or $)")
        check_es_duration(self.log_retention, "log_retention")


@dataclass
class ElasticsearchExporterConfig(ServiceConfig):
    """On whenever Elasticsearch and Prometheus are (its cluster-health metrics feed the stack's alerts)."""


@dataclass
class BlackboxExporterConfig(ServiceConfig):
    """On whenever Elasticsearch and Prometheus are: probes Logstash and Kibana, which expose no metrics."""


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
        if not 1 <= self.max_traces <= MAX_TRACES:
            raise SchemaError(("max_traces",), f"must be between 1 and {MAX_TRACES}")


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
    blackbox_exporter: BlackboxExporterConfig = field(default_factory=BlackboxExporterConfig)

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
            heap = getattr(settings, "heap", None)  # JVM services: the heap lives inside the container's limit
            if heap is not None and heap_bytes(heap) >= memory_bytes(settings.memory):
                raise SchemaError((key, "heap"), f"{heap} does not fit in the memory limit {settings.memory}: the JVM "
                                                 "needs room beside its heap", f"keep the heap about half of memory")

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
            check_host_port(target, "targets", i)
        if self.scheme not in ("http", "https"):
            raise SchemaError(("scheme",), f"must be http or https, got {self.scheme!r}")
        if not self.metrics_path.startswith("/"):
            raise SchemaError(("metrics_path",), "must start with /")
        if self.scrape_interval is not None:
            check_duration(self.scrape_interval, "scrape_interval")
        for name in self.labels:
            if not _LABEL.fullmatch(name):
                raise SchemaError(("labels", name), "is not a valid Prometheus label name")
            if name.startswith("__") or name in ("job", "instance"):
                raise SchemaError(("labels", name), "is reserved: Prometheus sets it (names starting with __ are "
                                                    "internal; job and instance come from the job and the target)")


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
        if self.webhook_address:
            check_ip(self.webhook_address, "webhook_address")


@dataclass
class SwarmConfig:
    """`target: swarm`: how the stack is laid out on a Docker Swarm cluster (stackctl.core.swarm renders it)."""

    # Services whose ports Swarm publishes (stack.yaml keys). Nothing else is reachable from outside the cluster.
    publish: list[str] = field(default_factory=list)
    # Node label placing the services that keep data in volumes (a local volume lives on one node).
    data_label: str = "stackctl.data=true"
    placement: dict[str, str] = field(default_factory=dict)  # service key -> node label, instead of data_label
    # vip: Swarm's routing mesh (IPVS): published ports open on every node. dnsrr: services find each other by DNS
    # and ports open only on the node running the task; for kernels without IPVS.
    endpoint_mode: str = "vip"
    # Image of the short-lived forwarder that reaches services which are not published (busybox's nc); empty: the
    # official busybox image (through registry_mirror).
    forwarder_image: str = ""

    def __post_init__(self) -> None:
        for i, key in enumerate(self.publish):
            if key not in catalog.USER_SERVICES:
                raise SchemaError(("publish", i), f"{key!r} is not a service", closest(key, catalog.USER_SERVICES))
            if key in self.publish[:i]:
                raise SchemaError(("publish", i), f"{key} is listed twice")
        labels = [("data_label",)] + [("placement", key) for key in self.placement]
        for path in labels:
            value = self.data_label if path == ("data_label",) else self.placement[path[1]]
            if not _NODE_LABEL.fullmatch(value):
                raise SchemaError(path, f"must be a node label as key=value, e.g. stackctl.data=true (got {value!r})")
        for key in self.placement:
            if key not in catalog.USER_SERVICES:
                raise SchemaError(("placement", key), "is not a service", closest(key, catalog.USER_SERVICES))
        if self.endpoint_mode not in ENDPOINT_MODES:
            raise SchemaError(("endpoint_mode",), f"must be one of {', '.join(ENDPOINT_MODES)} "
                                                  f"(got {self.endpoint_mode!r})")
        if self.forwarder_image:
            try:
                ref = ImageRef.parse(self.forwarder_image)
            except ValueError as error:
                raise SchemaError(("forwarder_image",), str(error)) from None
            if not ref.tag:
                raise SchemaError(("forwarder_image",), f"image {self.forwarder_image!r} has no tag")


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
    target: str = "compose"  # compose: this machine's Docker; swarm: a Docker Swarm cluster (docker stack deploy)
    swarm: SwarmConfig = field(default_factory=SwarmConfig)
    services: Services = field(default_factory=Services)
    scrape_targets: list[ScrapeTarget] = field(default_factory=list)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)

    def __post_init__(self) -> None:
        if not self.state_dir.strip():
            raise SchemaError(("state_dir",), "must name a directory for stackctl's secrets, e.g. .stackctl")
        if self.version != SCHEMA_VERSION:
            raise SchemaError(("version",), f"this stackctl reads stack file version {SCHEMA_VERSION}, got {self.version}")
        if not _PROJECT.fullmatch(self.project):
            raise SchemaError(("project",), f"must be lowercase letters, digits, - and _ (got {self.project!r})")
        if self.preset not in catalog.PRESETS:
            raise SchemaError(("preset",), f"must be one of {', '.join(catalog.PRESETS)} (got {self.preset!r})",
                              closest(self.preset, catalog.PRESETS))
        check_ip(self.bind_address, "bind_address")
        if self.target not in TARGETS:
            raise SchemaError(("target",), f"must be one of {', '.join(TARGETS)} (got {self.target!r})",
                              closest(self.target, TARGETS))
        if self.registry_mirror and not MIRROR.fullmatch(self.registry_mirror):
            raise SchemaError(("registry_mirror",), "must be a registry host, host:port or host:port/path, without a "
                                                    f"scheme (got {self.registry_mirror!r})")
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
    def memory_bytes(self) -> int:
        """The container's memory limit in bytes."""
        return memory_bytes(self.memory)

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
        """Absolute, with . and .. resolved as text: a symbolic link stays visible as what it is."""
        return normalized(self.file.parent / Path(self.config.state_dir).expanduser())

    @property
    def on_swarm(self) -> bool:
        return self.config.target == "swarm"

    def enabled(self, key: str) -> bool:
        return key in self.services

    def get(self, key: str) -> ResolvedService:
        return self.services[key]


def normalized(path: Path) -> Path:
    """`path` made absolute-looking with '.' and '..' removed textually (no filesystem access)."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return Path(*parts)


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
            raise ConfigError(f"environment variable {name}", "", "names no setting: an empty key between "
                              "separators", hint="STACKCTL_ plus the key path with __ between keys, e.g. "
                                                 "STACKCTL_SERVICES__GRAFANA__PORT")
        found.append((name, path, parse_value(environ[name])))
    return found


def parse_value(text: str) -> Any:
    """An override's value parsed as YAML (`false`, `3001`, `[a, b]` get their types); text that is not YAML, or
    whose aliases expand too far, stays the text it is."""
    loader = yamltext.Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_VALUES:
            return text
        return loader.construct_document(node)
    except yaml.YAMLError:
        return text
    finally:
        loader.dispose()


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
    given: list[str] = []  # text given as overrides: never repeated in messages (it may be a misplaced secret)
    for name, path, value in env_overrides(dict(environ or {})):
        _apply_override(data, path, value, f"environment variable {name}")
        origins[path] = f"environment variable {name}"
        given += [value] if isinstance(value, str) else []
    for item in sets or []:
        key, sep, raw = item.partition("=")
        path = tuple(key.split("."))
        if not sep or not all(path):
            # The argument is not echoed: it may be a secret given where a key was expected.
            raise StackError("--set takes KEY=VALUE with a dotted key, e.g. services.grafana.port=3001"
                             + (f" (got the key {key!r})" if sep else " (got an argument without '=')"))
        origin = f"--set {key}=..."
        value = parse_value(raw) if raw else ""
        _apply_override(data, path, value, origin)
        origins[path] = origin
        given += [value] if isinstance(value, str) else []
    if origins_out is not None:
        origins_out.update(origins)
    try:
        return build(StackConfig, data)
    except SchemaError as error:
        origin = _origin_for(origins, error.path)
        raise ConfigError(origin or source, format_path(error.path), _without(error.problem, given),
                          line=None if origin else _line_for(lines, error.path), hint=_without(error.hint, given)) \
            from None


def _without(text: str, values: list[str]) -> str:
    """`text` with every override value of 4 characters or more replaced by '...'."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "...")
    return text


def _origin_for(origins: dict[tuple, str], path: tuple) -> str | None:
    """The environment variable or --set option that set `path`, a mapping around it or a key inside it."""
    for set_path, origin in reversed(list(origins.items())):
        if path[: len(set_path)] == set_path or set_path[: len(path)] == path:
            return origin
    return None


def resolve(config: StackConfig, file: Path, lines: dict[tuple, int] | None = None,
            origins: dict[tuple, str] | None = None, source: str | None = None) -> Stack:
    """Decide everything the catalog leaves open: which services run, images, versions, host ports. `source` names
    the stack file in messages as the user gave it (default: `file`)."""
    source = source or str(file)
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
    swarm = config.swarm if config.target == "swarm" else None
    for i, key in enumerate(swarm.publish if swarm else ()):
        spec = catalog.SERVICES[key]
        if key not in enabled:
            raise fail(("swarm", "publish", i), f"{key} is not enabled", f"enable services.{key} or remove it here")
        if not any(p.host is not None for p in spec.ports):
            raise fail(("swarm", "publish", i), f"{key} has no port to publish (it is reached on the stack's network)")
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
        # On Swarm only the services listed in swarm.publish publish their ports.
        published = swarm is None or parent in swarm.publish
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
                if port.host is None or not published:
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
    if swarm is not None and user_set(("bind_address",)):
        warnings.append(f"bind_address {config.bind_address} has no effect with target: swarm: Swarm publishes the "
                        "ports listed in swarm.publish on every interface and ignores a host address")
    for key, svc in resolved.items():
        secrets = tuple(use for use in svc.spec.secrets if not use.when or use.when in resolved)
        # Credentials the user supplies from a file or variable (alert receivers', remote-write passwords).
        secrets += tuple(catalog.SecretUse(name, generate=None) for name, secret in user_secrets(config).items()
                         if secret.service == key)
        resolved[key] = dataclasses.replace(svc, secrets=secrets)
    # Some services talk to another only with the same major version (Kibana and Logstash to Elasticsearch).
    for key, svc in resolved.items():
        partner = resolved.get(svc.spec.same_major_as)
        if partner is not None and svc.version.major != partner.version.major:
            raise fail(("services", key, "image"),
                       f"{key} {svc.version} does not work with {partner.spec.title} {partner.version}",
                       f"use the same major version for {partner.spec.title} and {svc.spec.title}")
    return Stack(config=config, file=file, services=resolved, warnings=tuple(warnings))
