"""The service catalog: every service of the stack described once, as data.

Rendering, validation, status, doctor, rotation and `up` read this table instead of keeping their own lists, and
no code elsewhere branches on a service's name: what differs between services is a field here. Adding a service
means one ServiceSpec plus its templates: `compose/<key>.yaml.j2` (the service-specific part of its compose
definition) and `configs/<key>/` (its config files, rendered into the bundle's `configs/<key>/`).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.core.versions import Version


@dataclass(frozen=True)
class PortSpec:
    """A container port; `host` is the default host port it is published on (None: never published)."""

    name: str
    container: int
    host: int | None
    description: str
    scheme: str = "http"  # how `stackctl urls` shows it


@dataclass(frozen=True)
class Healthcheck:
    """A Docker healthcheck, run inside the container with tools the image really has."""

    test: tuple[str, ...]
    interval: str = "5s"
    timeout: str = "5s"
    retries: int = 24
    start_period: str = "20s"


@dataclass(frozen=True)
class ExternalProbe:
    """For images without a shell or HTTP client (the collector is FROM scratch): `up` and `status` probe this
    HTTP endpoint from the host through the published port instead of a Docker healthcheck."""

    port: str  # a PortSpec name; must be published
    path: str


@dataclass(frozen=True)
class Volume:
    name: str  # short name; see ServiceSpec.compose_volume for the names Compose and the engine use
    path: str  # mount point in the container


@dataclass(frozen=True)
class SecretUse:
    """A secret the service reads from /run/secrets/<name>; `generate` says how a missing value is made
    (None: supplied by the user)."""

    name: str
    generate: str | None = "password"  # "password" | "key32"
    when: str = ""  # only when this service (key) is enabled too
    # Why stackctl never rotates it ({path} becomes the secret's file), or "" when it can.
    not_rotated: str = ""


@dataclass(frozen=True)
class Account:
    """An account whose password a service keeps itself (in its data volume), besides the secret file."""

    secret: str  # the secret holding its password
    name: str = ""  # the account's name...
    name_setting: str = ""  # ...or the service setting that holds it (Grafana's admin_user)
    # The service takes the file's value only on its first start with an empty data volume (afterwards only its
    # API changes it), so changing the file alone would lock stackctl out.
    seeded_once: bool = False


@dataclass(frozen=True)
class AccountKeeper:
    """A service that keeps passwords itself and changes them through its API: rotation goes through it first.

    `api` names the client that changes them (stackctl.ops.rotate maps it to one); `admin_secret` is the password
    of the account that may change the others ("" or the account's own: it signs in with its old password)."""

    api: str
    accounts: tuple[Account, ...]
    admin_secret: str = ""
    sets_others: str = ""  # who sets the accounts that are not seeded once, e.g. a setup job on every start

    def account(self, secret: str) -> Account | None:
        return next((a for a in self.accounts if a.secret == secret), None)


@dataclass(frozen=True)
class FileValidator:
    """A real tool that checks rendered files of the service: `tool *args FILE...` must exit 0.

    `files` is a glob relative to the bundle. When it matches nothing the check fails if `required` (the stack
    always renders such a file), and is reported as skipped otherwise."""

    name: str
    tool: str
    args: tuple[str, ...]
    files: str
    required: bool = True


@dataclass(frozen=True)
class SysctlMinimum:
    """A kernel setting the service needs on the Docker host (doctor checks it)."""

    key: str  # e.g. vm.max_map_count
    minimum: int


@dataclass(frozen=True)
class MachineCaveat:
    """A known problem of the service on some CPU architectures, avoided by a value in one of its settings."""

    machines: tuple[str, ...]  # platform.machine() values, lower case
    setting: str  # the service setting that carries the workaround
    contains: str  # ...when it contains this
    problem: str
    fix: str


@dataclass(frozen=True)
class DataView:
    """After-up provisioning: a Kibana data view with a fixed id (created or replaced, so repeating it changes
    nothing), made as the Elasticsearch account whose password is the secret `secret`."""

    id: str
    title: str
    name: str
    time_field: str = "@timestamp"
    user: str = "elastic"
    secret: str = "elastic_password"


# --- what `stackctl verify` checks: declarations only; stackctl.ops.verify holds one implementation per type ------


@dataclass(frozen=True)
class Entry:
    """Where synthetic telemetry enters the stack the way an app sends it: a published port of a service, spoken to
    with `protocol` ("otlp": the OpenTelemetry SDK over OTLP/HTTP; "remote-write": Prometheus remote write 1.0;
    "json-lines": newline-terminated JSON over TCP)."""

    service: str  # key
    port: str  # PortSpec name; must be published
    path: str = ""
    protocol: str = "otlp"
    min_version: str = ""  # the first version of `service` that accepts it ("" any supported)


@dataclass(frozen=True)
class Auth:
    """Basic auth of a check's API calls: the password is the secret `secret`; the user is `user`, or the value of
    the service's setting `user_setting` (Grafana's admin_user)."""

    secret: str
    user: str = ""
    user_setting: str = ""


@dataclass(frozen=True)
class VerifyCheck:
    """One check `stackctl verify` runs for the service that declares it. `name` is `group:item` (`--only group`
    selects the whole group); `covers` are other services whose part it proves (shown as its components when they
    are enabled); without every service in `needs` it is skipped, saying which is off; `deep` checks run only
    with --deep. Path checks send through the first usable entry of `entries`, and are skipped when none is."""

    name: str
    covers: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    deep: bool = False
    entries: tuple[Entry, ...] = ()
    auth: Auth | None = None


@dataclass(frozen=True)
class Ready(VerifyCheck):
    """The service answers 2xx on its readiness endpoint, from this machine through its published `port`. Without
    a port (nothing published) its container's healthcheck, which calls the same endpoint inside, must say
    healthy."""

    port: str = ""
    path: str = ""


@dataclass(frozen=True)
class ScrapeTargets(VerifyCheck):
    """Every job stackctl configures is scraped and every scrape target is up."""


@dataclass(frozen=True)
class RuleFiles(VerifyCheck):
    """Every rule file of the bundle is loaded and no rule reports an evaluation error."""


@dataclass(frozen=True)
class AlertmanagerLink(VerifyCheck):
    """Prometheus has an active Alertmanager, and that Alertmanager is up (as of Prometheus' last scrape of it)."""


@dataclass(frozen=True)
class MetricsPath(VerifyCheck):
    """A uniquely labelled synthetic gauge, sent through the entry, is queryable in Prometheus."""


@dataclass(frozen=True)
class AlertRouting(VerifyCheck):
    """Synthetic alerts of each severity, silenced, reach the receivers stack.yaml's routing names for it."""


@dataclass(frozen=True)
class AlertDelivery(VerifyCheck):
    """A synthetic alert is delivered to the webhook verify listens on (the stackctl-verify route)."""


@dataclass(frozen=True)
class RulePath(VerifyCheck):
    """A synthetic series makes the verification rule fire in Prometheus, reach Alertmanager and be delivered."""


@dataclass(frozen=True)
class TracesPath(VerifyCheck):
    """A parent and a child span sent with the OpenTelemetry SDK come back from the trace store, linked."""


@dataclass(frozen=True)
class LogsPath(VerifyCheck):
    """A log line with a unique marker and a trace id, sent through the entry, is searchable with its trace id."""


@dataclass(frozen=True)
class GrafanaLogin(VerifyCheck):
    """The admin account signs in with the generated password."""


@dataclass(frozen=True)
class GrafanaDatasources(VerifyCheck):
    """Every provisioned datasource exists and passes Grafana's own health check."""


@dataclass(frozen=True)
class GrafanaDashboards(VerifyCheck):
    """Every dashboard of the bundle is provisioned in Grafana."""


@dataclass(frozen=True)
class GrafanaLinks(VerifyCheck):
    """Trace-to-logs queries and data links still hold their ${__...} variables as Grafana returns them."""


@dataclass(frozen=True)
class KibanaStatus(VerifyCheck):
    """Kibana's overall status is available."""


@dataclass(frozen=True)
class KibanaDataViews(VerifyCheck):
    """The data views after-up provisioning creates exist."""


# --- how `stackctl backup` captures a service: declarations only; stackctl.ops.backup holds one implementation per
# type ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupStrategy:
    """How a service's data is backed up and restored. `majors_forward`: how many major versions newer than the
    backed-up one the restored service may run (it converts older data); `refuse_older`: an older target is refused
    rather than warned about (it cannot read newer data); `auth`: the account its API calls use."""

    majors_forward: int = 0
    refuse_older: bool = False
    auth: Auth | None = None


@dataclass(frozen=True)
class TsdbSnapshot(BackupStrategy):
    """Prometheus: a TSDB snapshot through the admin API (hard links of the blocks under <volume>/snapshots, never
    the live directory), copied out of the container and deleted afterwards; restored as the whole data directory
    of a stopped Prometheus, owned by its user. Prometheus 3 reads the TSDB of Prometheus 2."""

    volume: str = "data"
    snapshots_dir: str = "snapshots"


@dataclass(frozen=True)
class ActiveSilences(BackupStrategy):
    """Alertmanager: its silences that are active or pending, read through API v2; restored by creating them again
    (new ids, same matchers, times, author and comment) and checking they are active."""


@dataclass(frozen=True)
class GrafanaContent(BackupStrategy):
    """Grafana: the folders and dashboards users made (not those from provisioning, which provisioning creates
    again), through its HTTP API, and its SQLite database copied while Grafana is stopped for that moment. Restored
    through the API (so a newer Grafana takes them); the database copy is for recovering everything else by hand."""

    volume: str = "data"
    database: str = "grafana.db"


@dataclass(frozen=True)
class SearchSnapshot(BackupStrategy):
    """Elasticsearch: a snapshot of `indices` (data streams included) through the snapshot API into an fs
    repository under path.repo (the `volume`), copied out of the container; restored through the restore API after
    the data streams and indices it holds are deleted (the operator agrees first). Global state and feature states
    (users, security) are never part of it."""

    volume: str = "snapshots"
    indices: tuple[str, ...] = ("logs-*",)


@dataclass(frozen=True)
class SavedObjects(BackupStrategy):
    """Kibana: saved objects of `types` exported as NDJSON through its API; restored with the import API
    (overwrite), onto the same or a newer Kibana."""

    types: tuple[str, ...] = ("config", "index-pattern", "search", "visualization", "lens", "dashboard")


@dataclass(frozen=True)
class NotKept(BackupStrategy):
    """The service's data is not backed up: `reason` says why, plainly, in every backup and restore report."""

    reason: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    key: str  # key in stack.yaml `services:` (a Python identifier)
    name: str  # compose service name and DNS name on the stack network
    title: str
    image: str  # upstream repository, pinned below by `version`
    version: str  # the tag of the default image
    supported: tuple[str, str]  # [min, max) versions this catalog renders configs for
    ports: tuple[PortSpec, ...] = ()
    healthcheck: Healthcheck | None = None
    probe: ExternalProbe | None = None
    volumes: tuple[Volume, ...] = ()
    memory: str = "256m"  # default memory limit
    disk: str = "1g"  # rough disk need (image plus a laptop's worth of data), for doctor
    user: str = ""  # uid[:gid] the image runs as: owner of its data and secret files
    requires: tuple[str, ...] = ()  # services that must be enabled too (keys)
    after: tuple[str, ...] = ()  # start after these when enabled (healthy), without requiring them
    secrets: tuple[SecretUse, ...] = ()
    keeps_accounts: AccountKeeper | None = None  # passwords it keeps itself, changed through its API
    same_major_as: str = ""  # runs only with the same major version as this service (key)
    metrics: tuple[str, str] | None = None  # (port name, path) Prometheus scrapes, if it exposes metrics
    # The resident memory of its main process, as (metric, the scrape job exposing it): compared with the
    # container's memory limit by ServiceMemoryNearLimit. Empty: nothing measures it (no cAdvisor in the stack).
    memory_series: tuple[str, str] = ()
    # (port name, path) the blackbox exporter probes over HTTP when the service exposes no metrics of its own:
    # probe_success says whether it is up.
    http_probe: tuple[str, str] | None = None
    produces: tuple[str, ...] = ()  # telemetry it emits: metrics, logs, traces
    consumes: tuple[str, ...] = ()  # telemetry it stores or routes
    oneshot: bool = False  # a setup job that runs to completion, not a long-running service
    per_node: bool = False  # describes the machine it runs on: on Swarm one task on every node (mode: global)
    part_of: str = ""  # for a oneshot: the service whose enablement it follows
    follows: tuple[str, ...] = ()  # a companion: on whenever all of these are, unless stack.yaml says `enabled`
    assets: tuple[str, ...] = ()  # top-level asset dirs rendered into the bundle with it, besides configs/<key>/
    version_notes: str = ""  # shown when a version is refused
    validators: tuple[FileValidator, ...] = ()  # real tools that check its rendered files
    host_needs: tuple[SysctlMinimum, ...] = ()  # kernel settings doctor checks on the Docker host
    caveats: tuple[MachineCaveat, ...] = ()  # architecture problems doctor warns about
    after_up: tuple[DataView, ...] = ()  # provisioning through its API once the stack is healthy
    shows_runbooks: bool = False  # runbooks are rendered as its dashboards, and alerts link there
    verify: tuple[VerifyCheck, ...] = ()  # what `stackctl verify` checks for it
    backup: BackupStrategy | None = None  # how `stackctl backup` captures its data (None: it keeps none)

    @property
    def default_image(self) -> str:
        return f"{self.image}:{self.version}"

    @property
    def keeps_data(self) -> bool:
        """Its data lives in volumes, which are local to one machine: on Swarm it is placed by a node label."""
        return bool(self.volumes)

    @property
    def primary_port(self) -> PortSpec | None:
        return self.ports[0] if self.ports else None

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0]) if self.user else 0

    @property
    def gid(self) -> int:
        parts = self.user.split(":")
        return int(parts[1]) if len(parts) > 1 else self.uid

    def compose_volume(self, volume: Volume) -> str:
        """The volume's name in the compose file (Compose prefixes the project: see docker_volume)."""
        return f"{self.key.replace('_', '-')}-{volume.name}"

    def docker_volume(self, project: str, volume: Volume) -> str:
        """The volume's name in the Docker engine."""
        return f"{project}_{self.compose_volume(volume)}"

    def port(self, name: str) -> PortSpec:
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(f"{self.key} has no port named {name}")

    def check_version(self, version: Version) -> str | None:
        """None when this version is supported, else the reason it is not."""
        low, high = (Version.parse(v) for v in self.supported)
        if version < low or not version < high:
            note = f" {self.version_notes}" if self.version_notes else ""
            return (f"{self.title} {version} is not supported: this stackctl renders configs for "
                    f"{self.supported[0]} up to (not including) {self.supported[1]}.{note}")
        return None


def _wget(url: str) -> tuple[str, ...]:
    return ("CMD", "wget", "-q", "--spider", url)


def _curl(url: str) -> tuple[str, ...]:
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", url)


KIBANA_KEY_NOT_ROTATED = (
    "stackctl does not rotate kibana_encryption_key. Kibana encrypts saved objects (alerting rules, connectors) "
    "with it and can read objects encrypted with an earlier key only while that key is listed in "
    "xpack.encryptedSavedObjects.keyRotation.decryptionOnlyKeys; stackctl keeps no old keys (they would be secrets "
    "rendered into kibana.yml), so a new key would make those objects unreadable and end every session. To replace "
    "it anyway, knowing encrypted saved objects are lost: stop Kibana, write a new value of at least 32 characters "
    "to {path} (mode 0600), then run 'stackctl up'."
)

# Where synthetic telemetry enters, as apps send it: the collector's OTLP/HTTP port first (apps point there).
_PROMETHEUS_OTLP = Entry("prometheus", "web", "/api/v1/otlp/v1/metrics", min_version="3.0.0")
_PROMETHEUS_REMOTE_WRITE = Entry("prometheus", "web", "/api/v1/write", "remote-write")
_ELASTIC = Auth("elastic_password", "elastic")
_GRAFANA_ADMIN = Auth("grafana_admin_password", user_setting="admin_user")


def _otlp(signal: str) -> Entry:
    return Entry("collector", "otlp_http", f"/v1/{signal}")


CATALOG: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        key="prometheus",
        name="prometheus",
        title="Prometheus",
        image="prom/prometheus",
        version="v3.14.0",
        supported=("2.33.0", "4.0.0"),
        version_notes="2.33 is the first with the remote-write receiver the collector writes to.",
        ports=(PortSpec("web", 9090, 9090, "UI and API"),),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:9090/-/ready")),
        volumes=(Volume("data", "/prometheus"),),
        memory="1g",
        disk="4g",
        user="65534:65534",
        after=("alertmanager",),
        assets=("runbooks",),
        metrics=("web", "/metrics"),
        memory_series=("process_resident_memory_bytes", "prometheus"),
        produces=("metrics",),
        consumes=("metrics",),
        validators=(
            FileValidator("promtool check config", "promtool", ("check", "config"),
                          "configs/prometheus/prometheus.yml"),
            FileValidator("promtool check rules", "promtool", ("check", "rules"), "configs/prometheus/rules/*.yml"),
        ),
        verify=(
            Ready("ready:prometheus", port="web", path="/-/ready"),
            ScrapeTargets("scrape:targets"),
            RuleFiles("scrape:rules"),
            AlertmanagerLink("scrape:alertmanager", covers=("alertmanager",), needs=("alertmanager",)),
            MetricsPath("metrics:path", entries=(_otlp("metrics"), _PROMETHEUS_OTLP, _PROMETHEUS_REMOTE_WRITE)),
            RulePath("alerts:rule-path", covers=("alertmanager",), needs=("alertmanager",), deep=True,
                     entries=(_PROMETHEUS_REMOTE_WRITE,)),
        ),
        backup=TsdbSnapshot(majors_forward=1),
    ),
    ServiceSpec(
        key="alertmanager",
        name="alertmanager",
        title="Alertmanager",
        image="prom/alertmanager",
        version="v0.34.0",
        supported=("0.25.0", "1.0.0"),
        ports=(PortSpec("web", 9093, 9093, "UI and API"),),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:9093/-/ready")),
        volumes=(Volume("data", "/alertmanager"),),
        memory="256m",
        user="65534:65534",
        metrics=("web", "/metrics"),
        memory_series=("process_resident_memory_bytes", "alertmanager"),
        produces=("metrics",),
        consumes=("alerts",),
        validators=(
            FileValidator("amtool check-config", "amtool", ("check-config",),
                          "configs/alertmanager/alertmanager.yml"),
        ),
        verify=(
            Ready("ready:alertmanager", port="web", path="/-/ready"),
            AlertRouting("alerts:routing"),
            AlertDelivery("alerts:delivery", deep=True),
        ),
        backup=ActiveSilences(majors_forward=1),
    ),
    ServiceSpec(
        key="grafana",
        name="grafana",
        title="Grafana",
        image="grafana/grafana",
        version="12.4.10",
        supported=("10.0.0", "14.0.0"),
        ports=(PortSpec("web", 3000, 3000, "UI"),),
        healthcheck=Healthcheck(_curl("http://127.0.0.1:3000/api/health")),
        volumes=(Volume("data", "/var/lib/grafana"),),
        memory="512m",
        user="472:0",
        assets=("grafana",),
        shows_runbooks=True,
        after=("prometheus", "elasticsearch", "jaeger"),
        secrets=(SecretUse("grafana_admin_password"), SecretUse("grafana_reader_password", when="elasticsearch")),
        # Grafana reads its admin password only on the first start with an empty data volume.
        keeps_accounts=AccountKeeper("grafana-users", (
            Account("grafana_admin_password", name_setting="admin_user", seeded_once=True),)),
        metrics=("web", "/metrics"),
        memory_series=("process_resident_memory_bytes", "grafana"),
        produces=("metrics",),
        verify=(
            Ready("ready:grafana", port="web", path="/api/health"),
            GrafanaLogin("grafana:login", auth=_GRAFANA_ADMIN),
            GrafanaDatasources("grafana:datasources", covers=("prometheus", "alertmanager", "elasticsearch", "jaeger"),
                               auth=_GRAFANA_ADMIN),
            GrafanaDashboards("grafana:dashboards", auth=_GRAFANA_ADMIN),
            GrafanaLinks("grafana:links", covers=("jaeger", "elasticsearch"), needs=("jaeger", "elasticsearch"),
                         auth=_GRAFANA_ADMIN),
        ),
        # Grafana migrates older dashboards forward; an older Grafana may not read newer ones.
        backup=GrafanaContent(majors_forward=2, refuse_older=True, auth=_GRAFANA_ADMIN),
    ),
    ServiceSpec(
        key="elasticsearch",
        name="elasticsearch",
        title="Elasticsearch",
        image="docker.elastic.co/elasticsearch/elasticsearch",
        version="9.5.1",
        supported=("8.0.0", "10.0.0"),
        ports=(PortSpec("http", 9200, 9200, "REST API"),),
        # Security is on, so health needs credentials: read from the secret file inside the container and handed to
        # curl as a config on stdin, so the password is not on a command line either.
        healthcheck=Healthcheck(
            ("CMD-SHELL", "printf 'user = \"elastic:%s\"\\n' \"$(cat /run/secrets/elastic_password)\" | "
             "curl -fsS -o /dev/null -K - 'http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=5s'"),
            retries=60, start_period="60s",
        ),
        volumes=(Volume("data", "/usr/share/elasticsearch/data"),
                 # path.repo: the snapshot repository `stackctl backup` writes into (compose/elasticsearch.yaml.j2).
                 Volume("snapshots", "/usr/share/elasticsearch/snapshots")),
        memory="1536m",
        disk="6g",
        user="1000:0",
        secrets=(SecretUse("elastic_password"),),
        # `elastic` is seeded from its file only on the first start with an empty data volume; the other users are
        # (re)set from their files by the setup job on every run.
        keeps_accounts=AccountKeeper("elasticsearch-security", (
            Account("elastic_password", "elastic", seeded_once=True),
            Account("kibana_system_password", "kibana_system"),
            Account("logstash_writer_password", "logstash_writer"),
            Account("collector_writer_password", "collector_writer"),
            Account("grafana_reader_password", "grafana_reader"),
            Account("elasticsearch_exporter_password", "elasticsearch_exporter"),
        ), admin_secret="elastic_password",
            sets_others="the setup job (elasticsearch-setup) sets it from its file whenever the stack starts"),
        consumes=("logs",),
        # Read through the Elasticsearch exporter (its nodes collector).
        memory_series=("elasticsearch_process_mem_resident_size_bytes", "elasticsearch-exporter"),
        host_needs=(SysctlMinimum("vm.max_map_count", 262144),),
        caveats=(MachineCaveat(
            ("arm64", "aarch64"), "extra_java_opts", "UseSVE=0",
            "Elasticsearch's JVM crashes on some Apple chips",
            'set services.elasticsearch.extra_java_opts: "-XX:UseSVE=0" if it exits with SIGILL'),),
        verify=(
            Ready("ready:elasticsearch", port="http", path="/_cluster/health?wait_for_status=yellow&timeout=5s",
                  auth=_ELASTIC),
            LogsPath("logs:otlp", entries=(_otlp("logs"),), auth=_ELASTIC),
            LogsPath("logs:logstash", entries=(Entry("logstash", "json", protocol="json-lines"),), auth=_ELASTIC),
        ),
        # Elasticsearch restores snapshots of its own and the previous major version, never of a newer one.
        backup=SearchSnapshot(majors_forward=1, refuse_older=True, auth=_ELASTIC),
    ),
    ServiceSpec(
        key="elasticsearch_setup",
        name="elasticsearch-setup",
        title="Elasticsearch setup",
        image="docker.elastic.co/elasticsearch/elasticsearch",
        version="9.5.1",
        supported=("8.0.0", "10.0.0"),
        memory="256m",
        user="1000:0",
        requires=("elasticsearch",),
        secrets=(
            SecretUse("elastic_password"),
            SecretUse("kibana_system_password", when="kibana"),
            SecretUse("logstash_writer_password", when="logstash"),
            SecretUse("collector_writer_password", when="collector"),
            SecretUse("grafana_reader_password", when="grafana"),
            SecretUse("elasticsearch_exporter_password", when="elasticsearch_exporter"),
        ),
        oneshot=True,
        part_of="elasticsearch",
    ),
    ServiceSpec(
        key="elasticsearch_exporter",
        name="elasticsearch-exporter",
        title="Elasticsearch exporter",
        image="quay.io/prometheuscommunity/elasticsearch-exporter",
        version="v1.9.0",
        supported=("1.3.0", "2.0.0"),
        version_notes="1.3 is the first that reads credentials from ES_USERNAME/ES_PASSWORD.",
        ports=(PortSpec("metrics", 9114, None, "Elasticsearch metrics (scraped on the stack network)"),),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:9114/healthz"), start_period="5s"),
        memory="64m",
        disk="64m",
        user="65534:65534",
        requires=("elasticsearch",),
        follows=("elasticsearch", "prometheus"),  # useful only when Prometheus scrapes it
        after=("elasticsearch_setup",),
        secrets=(SecretUse("elasticsearch_exporter_password"),),
        metrics=("metrics", "/metrics"),
        memory_series=("process_resident_memory_bytes", "elasticsearch-exporter"),
        produces=("metrics",),
        verify=(Ready("ready:elasticsearch-exporter"),),
    ),
    ServiceSpec(
        key="logstash",
        name="logstash",
        title="Logstash",
        image="docker.elastic.co/logstash/logstash",
        version="9.5.1",
        supported=("8.0.0", "10.0.0"),
        ports=(
            PortSpec("api", 9600, 9600, "monitoring API"),
            PortSpec("beats", 5044, 5044, "Beats input", scheme="tcp"),
            PortSpec("json", 5000, 5000, "JSON lines over TCP (trace_id/span_id aware)", scheme="tcp"),
        ),
        healthcheck=Healthcheck(_curl("http://127.0.0.1:9600/_node/pipelines/main"), start_period="60s"),
        http_probe=("api", "/"),
        memory="768m",
        disk="2g",
        user="1000:0",
        requires=("elasticsearch",),
        after=("elasticsearch",),
        same_major_as="elasticsearch",
        secrets=(SecretUse("logstash_writer_password"),),
        produces=("logs",),
        consumes=("logs",),
        verify=(Ready("ready:logstash", port="api", path="/_node/pipelines/main"),),
    ),
    ServiceSpec(
        key="kibana",
        name="kibana",
        title="Kibana",
        image="docker.elastic.co/kibana/kibana",
        version="9.5.1",
        supported=("8.0.0", "10.0.0"),
        ports=(PortSpec("web", 5601, 5601, "UI"),),
        healthcheck=Healthcheck(_curl("http://127.0.0.1:5601/api/status"), retries=60, start_period="90s"),
        http_probe=("web", "/api/status"),
        volumes=(Volume("data", "/usr/share/kibana/data"),),
        memory="1g",
        disk="2g",
        user="1000:0",
        requires=("elasticsearch",),
        after=("elasticsearch",),
        same_major_as="elasticsearch",
        secrets=(SecretUse("kibana_system_password"),
                 SecretUse("kibana_encryption_key", generate="key32", not_rotated=KIBANA_KEY_NOT_ROTATED)),
        # Kibana is up only after the setup job ran, so the log data view is made once the stack is healthy.
        after_up=(DataView(id="stackctl-logs", title="logs-*", name="stackctl logs"),),
        verify=(
            Ready("ready:kibana", port="web", path="/api/status"),
            KibanaStatus("kibana:status", auth=_ELASTIC),
            KibanaDataViews("kibana:data-views", auth=_ELASTIC),
        ),
        # Kibana imports saved objects of the same or an older version (up to the previous major), never newer.
        backup=SavedObjects(majors_forward=1, refuse_older=True, auth=_ELASTIC),
    ),
    ServiceSpec(
        key="jaeger",
        name="jaeger",
        title="Jaeger",
        image="jaegertracing/jaeger",
        version="2.20.0",
        supported=("2.0.0", "3.0.0"),
        version_notes="Jaeger v1 reached end of life at the end of 2025; use a 2.x image (jaegertracing/jaeger).",
        ports=(
            PortSpec("ui", 16686, 16686, "UI and query API"),
            PortSpec("otlp_grpc", 4317, None, "OTLP gRPC (stack-internal: the collector sends here)"),
            PortSpec("health", 13133, None, "health"),
            PortSpec("metrics", 8888, None, "own metrics"),
        ),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:13133/status")),
        memory="512m",
        user="10001",
        metrics=("metrics", "/metrics"),
        memory_series=("otelcol_process_memory_rss", "jaeger"),
        produces=("metrics",),
        consumes=("traces",),
        # Its health port (13133) is not published: its container healthcheck calls /status inside.
        verify=(
            Ready("ready:jaeger"),
            TracesPath("traces:path", entries=(_otlp("traces"),)),
        ),
        backup=NotKept(reason="Jaeger keeps traces in memory (services.jaeger.max_traces of them): a backup does "
                              "not hold them, and they are gone whenever Jaeger restarts"),
    ),
    ServiceSpec(
        key="collector",
        name="otel-collector",
        title="OpenTelemetry collector",
        image="otel/opentelemetry-collector-contrib",
        version="0.155.0",
        supported=("0.110.0", "1.0.0"),
        version_notes="0.110 is the first with the debug exporter and 0.0.0.0-aware defaults this config uses.",
        ports=(
            PortSpec("otlp_grpc", 4317, 4317, "OTLP gRPC: point apps here", scheme="grpc"),
            PortSpec("otlp_http", 4318, 4318, "OTLP HTTP: point apps here"),
            PortSpec("health", 13133, 13133, "health_check extension"),
            PortSpec("metrics", 8888, None, "own metrics"),
        ),
        # The image is FROM scratch: no shell, no wget. Probed from the host instead.
        probe=ExternalProbe("health", "/"),
        memory="512m",
        user="10001",
        after=("jaeger", "prometheus", "elasticsearch_setup"),
        secrets=(SecretUse("collector_writer_password", when="elasticsearch"),),
        metrics=("metrics", "/metrics"),
        memory_series=("otelcol_process_memory_rss", "otel-collector"),
        produces=("metrics",),
        consumes=("traces", "metrics", "logs"),
        verify=(Ready("ready:otel-collector", port="health", path="/"),),
    ),
    ServiceSpec(
        key="node_exporter",
        name="node-exporter",
        title="node-exporter",
        image="prom/node-exporter",
        version="v1.10.2",
        supported=("1.0.0", "2.0.0"),
        ports=(PortSpec("metrics", 9100, None, "host metrics (scraped on the stack network)"),),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:9100/metrics"), start_period="5s"),
        memory="128m",
        user="65534:65534",
        per_node=True,
        metrics=("metrics", "/metrics"),
        memory_series=("process_resident_memory_bytes", "node-exporter"),
        produces=("metrics",),
        verify=(Ready("ready:node-exporter"),),
    ),
    ServiceSpec(
        key="blackbox_exporter",
        name="blackbox-exporter",
        title="Blackbox exporter",
        image="prom/blackbox-exporter",
        version="v0.28.0",
        supported=("0.23.0", "1.0.0"),
        version_notes="0.23 is the oldest the stack is tested with (Debian 12's).",
        ports=(PortSpec("metrics", 9115, None, "HTTP probes of Logstash and Kibana (scraped on the stack network)"),),
        healthcheck=Healthcheck(_wget("http://127.0.0.1:9115/-/healthy"), start_period="5s"),
        memory="64m",
        disk="64m",
        user="65534:65534",
        follows=("elasticsearch", "prometheus"),  # Logstash and Kibana, which it probes, need Elasticsearch
        metrics=("metrics", "/metrics"),
        memory_series=("process_resident_memory_bytes", "blackbox-exporter"),
        produces=("metrics",),
        verify=(Ready("ready:blackbox-exporter"),),
    ),
)

SERVICES: dict[str, ServiceSpec] = {spec.key: spec for spec in CATALOG}
BY_NAME: dict[str, ServiceSpec] = {spec.name: spec for spec in CATALOG}

# Services a user configures in stack.yaml (setup jobs follow their parent service).
USER_SERVICES: tuple[str, ...] = tuple(spec.key for spec in CATALOG if not spec.oneshot)

PRESETS: dict[str, tuple[str, ...]] = {
    "metrics": ("prometheus", "alertmanager", "grafana", "node_exporter"),
    "logs": ("elasticsearch", "logstash", "kibana", "collector", "grafana"),
    "traces": ("jaeger", "collector", "grafana"),
    "full": USER_SERVICES,
}


def spec_for(name: str) -> ServiceSpec:
    """Look a service up by stack.yaml key or compose name."""
    spec = SERVICES.get(name) or BY_NAME.get(name) or SERVICES.get(name.replace("-", "_"))
    if spec is None:
        raise KeyError(name)
    return spec


def keeper_of(secret: str) -> tuple[ServiceSpec, Account] | None:
    """The service keeping its own copy of `secret` (as an account's password), and that account."""
    for spec in CATALOG:
        account = spec.keeps_accounts.account(secret) if spec.keeps_accounts else None
        if account is not None:
            return spec, account
    return None


def secret_use(name: str) -> SecretUse | None:
    """How the catalog declares the secret `name` (the first service using it)."""
    return next((use for spec in CATALOG for use in spec.secrets if use.name == name), None)


def generated_secrets() -> tuple[str, ...]:
    """Every secret stackctl generates for some service, in catalog order."""
    return tuple(dict.fromkeys(use.name for spec in CATALOG for use in spec.secrets if use.generate))
