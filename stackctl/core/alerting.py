"""The `rules:` and `alerting:` sections of stack.yaml: Prometheus rule packs, SLOs and Alertmanager routing.

Plain dataclasses loaded by stackctl.schema like the rest of the model; `__post_init__` checks raise SchemaError at
the offending key. The templates under configs/prometheus/rules/ and configs/alertmanager/ read these objects
(`config.rules`, `config.alerting`); the helpers here do the arithmetic so templates stay declarative.

Secrets of alert receivers (Slack webhook URL, PagerDuty routing key, SMTP password) are never written in
stack.yaml: the user says where each value comes from (`{from_file: PATH}` or `{from_env: VARIABLE}`), the value
reaches Alertmanager as /run/secrets/<name>, and alertmanager.yml only names that file (`*_file` settings).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from stackctl.core.schema import SchemaError, build, closest
from stackctl.core.units import check_duration, check_host_port, duration_seconds

SEVERITIES = ("critical", "warning", "info")
RECEIVER_TYPES = ("slack", "pagerduty", "email", "webhook")
SECRETS_DIR = "/run/secrets"  # where Alertmanager's container sees the secrets

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # receiver names: also part of secret names and env variable names
_SLO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# An SLO's service: a service.name (or job), optionally with its service.namespace in front ("shop/checkout").
_SERVICE = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.:-]*/)?[A-Za-z_][A-Za-z0-9_.:-]*")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+")
# A URL of RFC 3986 characters, without quotes, braces or $: it is written into rule annotations, which
# Prometheus expands as Go templates, inside single-quoted YAML.
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+")
# Alertmanager expands these receiver settings as Go templates: `{{` in them would fail every notification.
_TEMPLATED_FIELDS = ("channel", "to", "sender", "username")
# Names Alertmanager's config needs for itself.
RESERVED_RECEIVERS = ("default", "null", "heartbeat", "stackctl-verify")


# --- pure helpers ---------------------------------------------------------------------------------------------


def number(value: float) -> str:
    """A float as a short PromQL/YAML literal: 0.7 not 0.7000000000000001, 14.4 not 14.399999999999999."""
    return f"{value:.10g}"


def _check_percent(value: float, *path, low: float = 0.0, high: float = 100.0) -> None:
    if not low < value <= high:
        raise SchemaError(path, f"must be a percentage above {number(low)} and at most {number(high)} (got {number(value)})")


def _check_order(obj: Any, warning: str, critical: str, higher_is_worse: bool = True) -> None:
    low, high = getattr(obj, warning), getattr(obj, critical)
    if (higher_is_worse and low >= high) or (not higher_is_worse and low <= high):
        word = "below" if higher_is_worse else "above"
        raise SchemaError((warning,), f"must be {word} {critical} ({number(low)} vs {number(high)}): "
                                      "the warning fires first, the critical alert when it gets worse")


def _check_plain_url(url: Any) -> None:
    """A URL Alertmanager 0.25 can only read from alertmanager.yml itself (webhook receivers, the heartbeat)."""
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+\S*", url):
        raise SchemaError(("url",), "must be an http:// or https:// URL")
    if re.match(r"^https?://[^/@]*@", url):
        raise SchemaError(("url",), "must not contain a user name or password (user:password@host): the URL is "
                                    "written into alertmanager.yml as it is")


# --- rules: ---------------------------------------------------------------------------------------------------


class _Thresholds:
    """Formatting for templates: a percentage setting as a PromQL ratio literal, or as text."""

    def ratio(self, key: str) -> str:
        return number(getattr(self, key) / 100)

    def pct(self, key: str) -> str:
        return number(getattr(self, key)) + "%"

    def num(self, key: str) -> str:
        return number(getattr(self, key))


@dataclass
class StackRules:
    """Self-monitoring of the stack's own components."""

    enabled: bool = True
    target_down_for: str = "5m"  # how long a scrape target must be down before TargetDown fires

    def __post_init__(self) -> None:
        check_duration(self.target_down_for, "target_down_for")


@dataclass
class HostRules(_Thresholds):
    """node-exporter: the host the stack runs on. Percentages are of the whole (70 = 70%)."""

    enabled: bool = True
    cpu_warning: float = 70.0
    cpu_critical: float = 85.0
    memory_warning: float = 75.0
    memory_critical: float = 90.0
    disk_free_critical: float = 10.0  # critical when a filesystem has less than this much free
    disk_fill_hours: int = 24  # warning when the last 6h trend fills a filesystem within this many hours
    load_per_core_warning: float = 2.0  # 15-minute load average per CPU core
    inodes_free_critical: float = 5.0  # critical when a filesystem has less than this share of its inodes free
    # Absolute rates whose normal level depends on the host's disks and workload (the node-mixin's defaults):
    major_page_faults_warning: float = 500.0  # major page faults per second (memory pages read back from disk)
    disk_io_queue_warning: float = 10.0  # average I/O requests in flight on one disk (iostat's aqu-sz)

    def __post_init__(self) -> None:
        for key in ("cpu_warning", "cpu_critical", "memory_warning", "memory_critical", "disk_free_critical",
                    "inodes_free_critical"):
            _check_percent(getattr(self, key), key)
        for key in ("disk_free_critical", "inodes_free_critical"):
            if getattr(self, key) >= 100:
                raise SchemaError((key,), "must be below 100")
        _check_order(self, "cpu_warning", "cpu_critical")
        _check_order(self, "memory_warning", "memory_critical")
        if not 1 <= self.disk_fill_hours <= 24 * 30:
            raise SchemaError(("disk_fill_hours",), f"must be between 1 and 720 hours (got {self.disk_fill_hours})")
        for key in ("load_per_core_warning", "major_page_faults_warning", "disk_io_queue_warning"):
            if getattr(self, key) <= 0:
                raise SchemaError((key,), "must be above 0")

    @property
    def disk_fill_seconds(self) -> int:
        return self.disk_fill_hours * 3600


@dataclass
class HttpRules(_Thresholds):
    """RED alerts on the standard http_requests_total / http_request_duration_seconds metrics of any job."""

    enabled: bool = True
    error_ratio_warning: float = 1.0  # percent of requests answered 5xx
    error_ratio_critical: float = 5.0
    latency_p95_warning: str = "200ms"
    latency_p95_critical: str = "500ms"
    latency_p99_warning: str = "1s"
    latency_p99_critical: str = "2500ms"
    traffic_drop_percent: float = 50.0  # warn when traffic is below this share of the same time yesterday
    min_request_rate: float = 0.1  # requests/s: below this a job is too quiet for ratio and drop alerts

    def __post_init__(self) -> None:
        _check_percent(self.error_ratio_warning, "error_ratio_warning")
        _check_percent(self.error_ratio_critical, "error_ratio_critical")
        _check_order(self, "error_ratio_warning", "error_ratio_critical")
        for q in ("p95", "p99"):
            for key in (f"latency_{q}_warning", f"latency_{q}_critical"):
                check_duration(getattr(self, key), key)
                if duration_seconds(getattr(self, key)) <= 0:
                    raise SchemaError((key,), "must be above 0")
            if duration_seconds(getattr(self, f"latency_{q}_warning")) >= \
                    duration_seconds(getattr(self, f"latency_{q}_critical")):
                raise SchemaError((f"latency_{q}_warning",), f"must be below latency_{q}_critical: the warning "
                                                             "fires first")
        if not 0 < self.traffic_drop_percent < 100:
            raise SchemaError(("traffic_drop_percent",), f"must be between 0 and 100 (got {number(self.traffic_drop_percent)})")
        if self.min_request_rate < 0:
            raise SchemaError(("min_request_rate",), "must be 0 or more requests per second")

    def seconds(self, key: str) -> str:
        """A latency setting (e.g. latency_p99_warning) as seconds, a PromQL literal."""
        return number(duration_seconds(getattr(self, key)))


@dataclass(frozen=True)
class BurnAlert:
    """One multi-window burn-rate condition: error ratio above factor x budget over both windows."""

    severity: str  # critical (page) | warning (ticket)
    long_window: str  # recording-rule suffix, e.g. 1h
    short_window: str
    factor: float  # burn rate: multiples of the error ratio that spends the budget exactly over the SLO window
    threshold: str  # factor x error budget, as a PromQL literal

    @property
    def rate(self) -> str:
        return number(round(self.factor, 2))


# The SRE workbook's alerting windows, as the share of the error budget spent in the long window.
# For a 30d SLO window these are the familiar burn rates 14.4, 6, 3 and 1.
BURN_WINDOWS = (
    ("critical", "1h", "5m", 0.02),
    ("critical", "6h", "30m", 0.05),
    ("warning", "1d", "2h", 0.10),
    ("warning", "3d", "6h", 0.10),
)
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass
class SLO:
    """An availability SLO on a service's HTTP requests (either naming convention): errors are 5xx answers."""

    name: str
    # The service as users know it: its service.name. It matches the Prometheus `job` of that name, and the jobs
    # the OpenTelemetry conventions make of it with a namespace in front ("checkout" matches "shop/checkout").
    # With a namespace ("shop/checkout") it matches that job only.
    service: str
    objective: float  # percent (99.9) or ratio (0.999)
    window: str = "30d"

    def __post_init__(self) -> None:
        if not _SLO_NAME.fullmatch(self.name):
            raise SchemaError(("name",), f"must be letters, digits, '.', '_' and '-' (got {self.name!r})")
        if not _SERVICE.fullmatch(self.service):
            raise SchemaError(("service",), f"must be a service name or job, optionally namespace/name "
                                            f"(got {self.service!r})")
        if not (50 <= self.objective <= 99.999 or 0.5 <= self.objective <= 0.99999):
            raise SchemaError(("objective",), f"must be a percentage between 50 and 99.999 (e.g. 99.9) or a ratio "
                                              f"between 0.5 and 0.99999 (e.g. 0.999); got {number(self.objective)}")
        check_duration(self.window, "window")
        if duration_seconds(self.window) < 3 * 86400:
            raise SchemaError(("window",), f"must be at least 3d, the longest alerting window (got {self.window})")

    @property
    def job_regex(self) -> str:
        """RE2 for the jobs of this service: the job itself or any namespace/job; dots are literal."""
        name = self.service.replace(".", "\\.")  # the only regex character a service name may hold
        return name if "/" in self.service else f"(.+/)?{name}"

    @property
    def job_matcher(self) -> str:
        """The PromQL label matcher selecting this service's jobs, e.g. job=~"(.+/)?checkout"."""
        return "job=~" + json.dumps(self.job_regex)

    @property
    def objective_ratio(self) -> float:
        return self.objective / 100 if self.objective > 1 else self.objective

    @property
    def objective_literal(self) -> str:
        return number(self.objective_ratio)

    @property
    def error_budget(self) -> str:
        return number(1 - self.objective_ratio)

    @property
    def objective_percent(self) -> str:
        return number(self.objective_ratio * 100)

    @property
    def burn_alerts(self) -> list[BurnAlert]:
        """The four SRE-workbook conditions, with burn rates scaled to this SLO's window."""
        window_hours = duration_seconds(self.window) / 3600
        alerts = []
        for severity, long_window, short_window, budget_share in BURN_WINDOWS:
            factor = budget_share * window_hours / (duration_seconds(long_window) / 3600)
            alerts.append(BurnAlert(severity, long_window, short_window, round(factor, 6),
                                    number(factor * (1 - self.objective_ratio))))
        return alerts

    def burn(self, severity: str) -> list[BurnAlert]:
        return [a for a in self.burn_alerts if a.severity == severity]


@dataclass
class RulesConfig:
    runbook_base_url: str = ""  # where runbook links point; empty: the runbooks copied into the bundle
    stack: StackRules = field(default_factory=StackRules)
    host: HostRules = field(default_factory=HostRules)
    http: HttpRules = field(default_factory=HttpRules)
    slos: list[SLO] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.runbook_base_url and not _URL.fullmatch(self.runbook_base_url):
            raise SchemaError(("runbook_base_url",), f"must be a URL like https://wiki.example.com/runbooks "
                                                     f"(got {self.runbook_base_url!r})")
        names = [slo.name for slo in self.slos]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SchemaError(("slos", i, "name"), f"SLO name {name!r} is used twice")


# --- alerting: ------------------------------------------------------------------------------------------------


@dataclass
class SecretRef:
    """Where a secret's value comes from: exactly one of a file or an environment variable."""

    from_file: str | None = None
    from_env: str | None = None

    def __post_init__(self) -> None:
        if (self.from_file is None) == (self.from_env is None):
            raise SchemaError((), "needs exactly one of from_file: PATH or from_env: VARIABLE")
        if self.from_file is not None and not self.from_file.strip():
            raise SchemaError(("from_file",), "must be a file path")
        if self.from_env is not None and not _ENV_VAR.fullmatch(self.from_env):
            # Not repeated: a malformed name here is often the secret itself, pasted in the wrong place.
            raise SchemaError(("from_env",), "must be the NAME of an environment variable (letters, digits and _), "
                                             "not its value")


def secret_ref(value: Any, key: str, reader: str = "Alertmanager") -> SecretRef:
    """Build a SecretRef from the raw YAML value, refusing the secret itself (without echoing it)."""
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, dict):
        kind = "text" if isinstance(value, str) else "a plain value"
        raise SchemaError((key,), f"is {kind}, but secrets are never written in stack.yaml: say where the value "
                                  "comes from with {from_file: PATH} or {from_env: VARIABLE}",
                          f"stackctl hands the value to {reader} as a file under /run/secrets")
    try:
        return build(SecretRef, value)
    except SchemaError as error:
        hint = error.hint or ("a secret is given as {from_file: PATH} or {from_env: VARIABLE}"
                              if error.problem == "unknown key" else "")
        raise SchemaError((key,) + error.path, error.problem, hint) from None


# Settings each receiver type takes (besides name, type, severities, send_resolved), and which of them are secrets.
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "slack": ("api_url", "channel"),
    "pagerduty": ("routing_key",),
    "email": ("to", "sender", "smarthost", "username", "password", "require_tls"),
    "webhook": ("url",),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "slack": ("api_url",),
    "pagerduty": ("routing_key",),
    "email": ("to", "sender", "smarthost"),
    "webhook": ("url",),
}
_SECRET_FIELDS = ("api_url", "routing_key", "password")
_DEFAULT_SEVERITIES = {"pagerduty": ["critical"]}


@dataclass
class Receiver:
    """One place alerts go. Which keys apply depends on `type`:

    slack: api_url (secret: the incoming-webhook URL), channel
    pagerduty: routing_key (secret: Events API v2 integration key)
    email: to, from, smarthost (host:port), username, password (secret), require_tls
    webhook: url (NOT a secret: written into alertmanager.yml as is, because Alertmanager 0.25 has no url_file)
    """

    name: str
    type: Literal["slack", "pagerduty", "email", "webhook"]
    severities: list[str] | None = None  # default: pagerduty [critical]; the others [critical, warning]
    send_resolved: bool = True
    api_url: Any = None
    channel: str | None = None
    routing_key: Any = None
    to: str | None = None
    sender: str | None = field(default=None, metadata={"key": "from"})
    smarthost: str | None = None
    username: str | None = None
    password: Any = None
    require_tls: bool | None = None
    url: Any = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise SchemaError(("name",), f"must be lowercase letters, digits, - and _ (got {self.name!r})")
        if self.name in RESERVED_RECEIVERS:
            raise SchemaError(("name",), f"{self.name!r} is reserved for stackctl's built-in receivers; pick another name")
        allowed = _TYPE_FIELDS[self.type]
        for key in sorted(set(_TYPE_FIELDS_ALL) - set(allowed)):
            if getattr(self, key) is not None:
                shown = "from" if key == "sender" else key
                raise SchemaError((shown,), f"is not a setting of a {self.type} receiver "
                                            f"(it takes {', '.join('from' if k == 'sender' else k for k in allowed)})")
        for key in _REQUIRED[self.type]:
            if getattr(self, key) is None:
                shown = "from" if key == "sender" else key
                raise SchemaError((shown,), f"is required for a {self.type} receiver")
        for key in _SECRET_FIELDS:
            if key in allowed and getattr(self, key) is not None:
                setattr(self, key, secret_ref(getattr(self, key), key))
        for key in _TEMPLATED_FIELDS:
            value = getattr(self, key)
            if isinstance(value, str) and ("{{" in value or "}}" in value):
                shown = "from" if key == "sender" else key
                raise SchemaError((shown,), "must not contain {{ or }}: Alertmanager reads it as a Go template")
        if self.severities is None:
            self.severities = list(_DEFAULT_SEVERITIES.get(self.type, ["critical", "warning"]))
        if not self.severities:
            raise SchemaError(("severities",), "needs at least one of critical, warning, info (or remove the receiver)")
        for i, severity in enumerate(self.severities):
            if severity not in SEVERITIES:
                raise SchemaError(("severities", i), f"must be one of {', '.join(SEVERITIES)} (got {severity!r})",
                                  closest(severity, SEVERITIES))
        if len(set(self.severities)) != len(self.severities):
            raise SchemaError(("severities",), "lists a severity twice")
        if self.type == "webhook":
            self._check_webhook()
        if self.type == "email":
            self._check_email()
        if self.type == "slack" and self.channel is not None and not re.fullmatch(r"[#@]?[^\s]+", self.channel):
            raise SchemaError(("channel",), f"must be a channel like #alerts (got {self.channel!r})")

    def _check_webhook(self) -> None:
        if isinstance(self.url, dict):
            raise SchemaError(("url",), "a webhook URL is written into alertmanager.yml as it is: Alertmanager 0.25 "
                                        "cannot read it from a file (url_file needs 0.26), so it is not treated as a "
                                        "secret; give the URL itself and keep credentials out of it")
        _check_plain_url(self.url)

    def _check_email(self) -> None:
        addresses = [a.strip() for a in (self.to or "").split(",")]
        if not all(_EMAIL.fullmatch(a) for a in addresses):
            raise SchemaError(("to",), f"must be an e-mail address, or several separated by commas (got {self.to!r})")
        if not _EMAIL.fullmatch(self.sender or ""):
            raise SchemaError(("from",), f"must be an e-mail address (got {self.sender!r})")
        check_host_port(self.smarthost or "", "smarthost",
                        what="host:port of the SMTP server, e.g. smtp.example.com:587")
        if self.password is not None and not self.username:
            raise SchemaError(("username",), "is required when a password is given")

    @property
    def secret_fields(self) -> dict[str, SecretRef]:
        """Secret settings of this receiver, by key."""
        return {key: getattr(self, key) for key in _SECRET_FIELDS
                if key in _TYPE_FIELDS[self.type] and getattr(self, key) is not None}

    def secret_name(self, key: str) -> str:
        """Name of the Docker secret holding `key`: alertmanager_<receiver>_<key>, safe for files and env names."""
        return f"alertmanager_{self.name.replace('-', '_')}_{key}"

    def secret_file(self, key: str) -> str:
        """Path Alertmanager reads the secret from."""
        return f"{SECRETS_DIR}/{self.secret_name(key)}"


_TYPE_FIELDS_ALL = sorted({key for keys in _TYPE_FIELDS.values() for key in keys})


@dataclass
class Heartbeat:
    """The dead man's switch: the always-firing Heartbeat alert is sent to `url` every `interval`, so an external
    heartbeat service (healthchecks.io, Dead Man's Snitch, a cron monitor...) raises the alarm when the pings stop:
    Prometheus, Alertmanager or the path between them is down. Without a url it goes nowhere."""

    url: str = ""  # written into alertmanager.yml as is, like a webhook receiver's (Alertmanager 0.25: no url_file)
    interval: str = "5m"  # how often the ping is sent; set the external service's period a bit longer

    def __post_init__(self) -> None:
        check_duration(self.interval, "interval")
        if duration_seconds(self.interval) < 60:
            raise SchemaError(("interval",), f"must be at least 1m (got {self.interval})")
        if self.url:
            _check_plain_url(self.url)


@dataclass
class AlertingConfig:
    """Alertmanager routing: critical pages (short repeat), warning to the warnings channel, info nowhere; the
    Heartbeat alert only to heartbeat.url."""

    group_wait: str = "30s"
    group_interval: str = "5m"
    critical_repeat_interval: str = "1h"
    warning_repeat_interval: str = "12h"
    receivers: list[Receiver] = field(default_factory=list)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)

    def __post_init__(self) -> None:
        for key in ("group_wait", "group_interval", "critical_repeat_interval", "warning_repeat_interval"):
            check_duration(getattr(self, key), key)
        seen: dict[str, int] = {}
        for i, receiver in enumerate(self.receivers):
            # Secret and env names are derived from the receiver name with - turned into _: keep those unique too.
            key = receiver.name.replace("-", "_")
            if key in seen:
                other = self.receivers[seen[key]].name
                raise SchemaError(("receivers", i, "name"), f"receiver name {receiver.name!r} is already used"
                                  + (f" (as {other!r}: - and _ count as the same)" if other != receiver.name else ""))
            seen[key] = i

    def receivers_for(self, severity: str) -> list[Receiver]:
        return [r for r in self.receivers if severity in (r.severities or [])]
