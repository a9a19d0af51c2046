"""`stackctl verify`: runs the checks every enabled service declares in the catalog (stackctl.core.verify plans
them), concurrently, under one deadline, and reports each with what it saw and where to look when it failed.

Each kind of check is one function here, looked up by the declaration's type (IMPLEMENTATIONS); none knows a
service by name. Synthetic data carries one run id (label `stackctl_verify`) and is removed by the check that made
it (alerts resolved, silences expired, series and log lines deleted); what cannot be removed (traces in Jaeger's
memory) ages out."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import urlsplit

from stackctl.clients.alertmanager import Alertmanager, timestamp
from stackctl.clients.elasticsearch import Elasticsearch
from stackctl.clients.grafana import Grafana
from stackctl.clients.http import ApiError
from stackctl.clients.http import probe as http_probe
from stackctl.clients.jaeger import Jaeger
from stackctl.clients.kibana import Kibana
from stackctl.clients.prometheus import STALE_NAN, Prometheus
from stackctl.core import catalog, yamltext
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.readiness import READY
from stackctl.core.render import DATASOURCES_FILE, RULES_DIR
from stackctl.core.units import duration_seconds
from stackctl.core.verify import (ALERT_NAME, DELIVERY, FAILED, METRIC_NAME, PASSED, PROBE_LABEL, RECEIVER,
                                  ROUTING, RULE_ALERT_NAME, RULE_SERIES, RUN_LABEL, SERVICE_NAME, SKIPPED,
                                  PlannedCheck, VerifyReport, VerifyResult, at_path, expected_receivers,
                                  expected_scrape_jobs, link_variables, logs_hint, parse_time, plan, select)
from stackctl.ops import swarm
from stackctl.ops.context import Runtime
from stackctl.ops.lifecycle import statuses
from stackctl.ops.reach import Reach, reach

POLL = 0.25  # seconds between two looks while waiting for something to arrive
CLEANUP_GRACE = 10.0  # seconds a check may run past the deadline to remove what it made
SEVERITIES = ("critical", "warning", "info")
DASHBOARDS_DIR = "grafana/dashboards"

Progress = Callable[[list[VerifyResult], list[str], float], None]


class Failed(Exception):
    """A check saw something wrong: `detail` says what, `look` where to look (default: the first component's logs)."""

    def __init__(self, detail: str, look: str = ""):
        super().__init__(detail)
        self.detail, self.look = detail, look


class Skipped(Exception):
    """A check found nothing to check in this stack."""


@dataclass
class Deadline:
    seconds: float
    clock: Callable[[], float]
    start: float = 0.0

    def __post_init__(self) -> None:
        self.start = self.clock()

    def remaining(self) -> float:
        return max(0.0, self.start + self.seconds - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed(self) -> float:
        return self.clock() - self.start


@dataclass
class Probe:
    """What every check works with: the stack, the shells, the bundle it was started from, the run id, the
    deadline and (with --deep) the webhook inbox."""

    stack: Stack
    runtime: Runtime
    bundle: Path
    run_id: str
    deadline: Deadline
    inbox: Any = None  # a started clients.webhook.WebhookInbox, or the reason there is none (str)
    where: Reach | None = None  # how this machine reaches the services (default: their published host ports)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _statuses: list | None = None

    def timeout(self, cap: float = 10.0) -> float:
        """Seconds one HTTP call may take: what is left of the deadline, at least 1 and at most `cap`."""
        return max(1.0, min(cap, self.deadline.remaining()))

    def url(self, key: str, port: str | None = None) -> str:
        return (self.where or Reach(self.stack)).url(key, port)

    def credentials(self, check: PlannedCheck) -> tuple[str, str] | None:
        auth = check.decl.auth
        if auth is None:
            return None
        svc = self.stack.services[check.service]
        user = getattr(svc.settings, auth.user_setting) if auth.user_setting else auth.user
        return user, self.runtime.store(self.stack).read(auth.secret)

    def api(self, cls, key: str, check: PlannedCheck | None = None, port: str | None = None):
        """A client of service `key`'s API: no retries (checks poll instead), the check's credentials."""
        kwargs = {"auth": self.credentials(check)} if check is not None and check.decl.auth else {}
        return cls(self.url(key, port), retries=0, timeout=10.0, **kwargs)

    def poll(self, look: Callable[[], Any], interval: float = POLL) -> Any:
        """look() until it returns something truthy or the deadline passes (then its last value)."""
        while True:
            value = look()
            if value or self.deadline.expired:
                return value
            self.runtime.sleep(min(interval, self.deadline.remaining()))

    def resource(self) -> dict[str, str]:
        """OpenTelemetry resource of every synthetic signal: service.name and the run as its instance."""
        return {"service.name": SERVICE_NAME, "service.instance.id": self.run_id}

    def statuses(self):
        """Every service's container status (asked once per run)."""
        with self._lock:
            if self._statuses is None:
                self._statuses = statuses(self.stack, self.runtime)
            return self._statuses

    def bundle_file(self, relative: str) -> Path:
        path = self.bundle / relative
        if not path.is_file():
            raise Failed(f"{relative} is not in the bundle {self.bundle}: run 'stackctl up' first",
                         look="stackctl up")
        return path


def _service_of_host(stack: Stack, url: str) -> str:
    """The compose name of the stack service a URL on the stack network points at, or ""."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    return host if any(svc.name == host for svc in stack.services.values()) else ""


# --- readiness ---------------------------------------------------------------------------------------------------


def _ready(p: Probe, check: PlannedCheck) -> str:
    decl = check.decl
    svc = p.stack.services[check.service]
    if decl.port:
        url = p.url(svc.key, decl.port) + decl.path
        ok, reason = http_probe(url, timeout=p.timeout(5.0), auth=p.credentials(check))
        if not ok:
            raise Failed(reason)
        return f"GET {decl.path} answered 2xx"
    status = next((s for s in p.statuses() if s.service == svc.name), None)
    if status is None or status.phase != READY:
        seen = f"container {status.state}, {status.health}" if status else "no container"
        raise Failed(seen + (f": {status.detail}" if status and status.detail else ""))
    return f"container healthcheck says {status.health} (its readiness endpoint is not published)"


# --- Prometheus ----------------------------------------------------------------------------------------------------


def _settled_targets(p: Probe, prom: Prometheus) -> tuple[list[dict], list[dict]]:
    """(targets, down ones) once every target was scraped since verify started or is up, or at the deadline.
    A target down before verify started may have been scraped before it was ready: its next scrape decides."""
    while True:
        targets = prom.targets(timeout=p.timeout())
        down = [t for t in targets if t.get("health") == "down"]
        waiting = [t for t in targets if t.get("health") == "unknown"
                   or (t in down and (parse_time(t.get("lastScrape")) or p.started) < p.started)]
        if not waiting or p.deadline.expired:
            return targets, down + [t for t in waiting if t not in down]
        p.runtime.sleep(min(POLL * 2, p.deadline.remaining()))


def _job_look(p: Probe, job: str) -> str:
    service = next((s.name for s in p.stack.services.values() if s.name == job), "")
    return logs_hint(service) if service else f"{p.url('prometheus')}/targets"


def _scrape_targets(p: Probe, check: PlannedCheck) -> str:
    prom = p.api(Prometheus, "prometheus")
    expected = expected_scrape_jobs(p.stack)

    def settled() -> tuple:
        """Targets once every job has one: discovery through DNS (Swarm) finds a task a refresh after it runs."""
        targets, bad = _settled_targets(p, prom)
        jobs = {t.get("labels", {}).get("job") or t.get("scrapePool") for t in targets}
        return (targets, bad, jobs) if set(expected) <= jobs or p.deadline.expired else None

    targets, bad, jobs = p.poll(settled, interval=POLL * 4)
    missing = sorted(set(expected) - jobs)
    if missing:
        raise Failed(f"not scraped: {', '.join(missing)} (Prometheus runs another config than the bundle's?)",
                     look=f"{p.url('prometheus')}/config")
    if bad:
        def job(t: dict) -> str:
            return t.get("labels", {}).get("job") or t.get("scrapePool") or "?"

        raise Failed("; ".join(f"{job(t)} ({t.get('scrapeUrl')}) {t.get('health')}"
                               + (f": {t['lastError']}" if t.get("lastError") else "") for t in bad),
                     look=_job_look(p, job(bad[0])))
    return f"{len(targets)} targets up ({', '.join(sorted(jobs))})"


def _bundle_rule_files(p: Probe) -> list[str]:
    directory = p.bundle / RULES_DIR
    if not directory.is_dir():
        raise Failed(f"no rule files in {directory}: run 'stackctl up' first", look="stackctl up")
    return sorted(f.name for f in directory.glob("*.yml") if (yamltext.load(f.read_bytes()) or {}).get("groups"))


def _rule_files(p: Probe, check: PlannedCheck) -> str:
    prom = p.api(Prometheus, "prometheus")
    expected = _bundle_rule_files(p)
    while True:
        groups = prom.rule_groups(timeout=p.timeout())
        loaded = {PurePosixPath(g.get("file", "")).name for g in groups}
        missing = [name for name in expected if name not in loaded]
        if missing:
            raise Failed(f"not loaded: {', '.join(missing)} (Prometheus runs another config than the bundle's?)",
                         look=logs_hint("prometheus"))
        rules = [(g, r) for g in groups for r in g.get("rules") or []]
        errors = [(g, r) for g, r in rules if r.get("health") == "err"]
        if errors:
            raise Failed("; ".join(f"{r.get('name')} (group {g.get('name')}, {PurePosixPath(g.get('file', '')).name})"
                                   f": {r.get('lastError', 'evaluation failed')}" for g, r in errors),
                         look=f"{p.url('prometheus')}/rules")
        unknown = [r.get("name") for g, r in rules if r.get("health") not in ("ok", "err")]
        if not unknown:
            return f"{len(loaded)} files, {len(groups)} groups, {len(rules)} rules evaluated without error"
        if p.deadline.expired:
            raise Failed(f"{len(unknown)} rules not evaluated yet ({', '.join(unknown[:3])}...): raise --timeout "
                         "above the evaluation interval", look=f"{p.url('prometheus')}/rules")
        p.runtime.sleep(min(POLL * 4, p.deadline.remaining()))


def _alertmanager_link(p: Probe, check: PlannedCheck) -> str:
    prom = p.api(Prometheus, "prometheus")
    # Found through DNS on Swarm: one refresh after the Alertmanager task runs.
    data = p.poll(lambda: (lambda d: d if d.get("activeAlertmanagers") else None)(
        prom.alertmanagers(timeout=p.timeout()))) or prom.alertmanagers(timeout=p.timeout())
    active = [a.get("url", "") for a in data.get("activeAlertmanagers") or []]
    if not active:
        dropped = [a.get("url", "") for a in data.get("droppedAlertmanagers") or []]
        raise Failed("Prometheus has no active Alertmanager" + (f" (dropped: {', '.join(dropped)})" if dropped else ""),
                     look=f"{p.url('prometheus')}/status")
    targets, _ = _settled_targets(p, prom)
    for url in active:
        address = urlsplit(url).netloc
        target = next((t for t in targets if address in (t.get("labels", {}).get("instance"),
                                                         t.get("discoveredLabels", {}).get("__address__"))), None)
        if target is not None and target.get("health") != "up":
            raise Failed(f"Prometheus sends alerts to {url}, which does not answer: {target.get('lastError') or 'down'}",
                         look=logs_hint(_service_of_host(p.stack, url) or "alertmanager"))
    return f"alerts go to {', '.join(active)}"


def _send_metric(p: Probe, check: PlannedCheck, name: str, labels: dict[str, str], value: float) -> str:
    """Send one gauge sample through the check's entry; returns how it went (for the detail line)."""
    from stackctl.clients.otlp import send_gauge

    entry = check.entry
    endpoint = p.url(entry.service, entry.port) + entry.path
    try:
        send_gauge(endpoint, entry.protocol, p.resource(), name, value, labels, p.timeout())
    except ApiError as error:
        raise Failed(error.message, look=logs_hint(p.stack.services[entry.service].name)) from None
    return f"{entry.protocol} to {p.stack.services[entry.service].name} {entry.path}"


def _metrics_path(p: Probe, check: PlannedCheck) -> str:
    prom = p.api(Prometheus, "prometheus")
    selector = f'{METRIC_NAME}{{{RUN_LABEL}="{p.run_id}"}}'
    sent = p.deadline.elapsed()
    how = _send_metric(p, check, METRIC_NAME, {RUN_LABEL: p.run_id}, 1.0)
    try:
        found = p.poll(lambda: prom.query(selector, timeout=p.timeout()))
    finally:
        _quietly(lambda: prom.delete_series(selector, timeout=p.timeout(3.0)))
    if not found:
        raise Failed(f"sent over {how}; after {p.deadline.elapsed() - sent:.0f}s Prometheus has no {selector}",
                     look=logs_hint(p.stack.services[check.entry.service].name))
    return f"sent over {how}; {selector} = {found[0]['value'][1]} in Prometheus after {p.deadline.elapsed() - sent:.1f}s"


def _quietly(action: Callable[[], Any]) -> None:
    """Cleanup that must not turn a result around: a failure to remove synthetic data is left to expiry."""
    try:
        action()
    except (StackError, Failed):
        pass


# --- Alertmanager ------------------------------------------------------------------------------------------------


def _alert(labels: dict[str, str], starts: datetime, ends: datetime) -> dict:
    return {"labels": labels, "startsAt": timestamp(starts), "endsAt": timestamp(ends),
            "annotations": {"summary": "stackctl verify probe: not a real alert"}}


def _resolve(am: Alertmanager, alerts: list[dict], p: Probe) -> None:
    now = datetime.now(timezone.utc)
    _quietly(lambda: am.post_alerts([_alert(a["labels"], now - timedelta(minutes=1), now) for a in alerts],
                                    timeout=p.timeout(3.0)))


def _alert_routing(p: Probe, check: PlannedCheck) -> str:
    am = p.api(Alertmanager, check.service)
    now = datetime.now(timezone.utc)
    probe = {RUN_LABEL: p.run_id, PROBE_LABEL: ROUTING}
    # Silenced before they exist: Alertmanager still routes them (and says to whom) but notifies nobody.
    silence = am.create_silence(probe, now, now + timedelta(minutes=10), "stackctl verify",
                                "stackctl verify's routing probe: silenced so that it pages nobody",
                                timeout=p.timeout())
    alerts = [_alert({"alertname": ALERT_NAME, **probe, "severity": s}, now, now + timedelta(minutes=5))
              for s in SEVERITIES]
    try:
        am.post_alerts(alerts, timeout=p.timeout())

        def routed() -> dict[str, dict]:
            got = am.alerts([f'{RUN_LABEL}="{p.run_id}"', f'{PROBE_LABEL}="{ROUTING}"'], timeout=p.timeout())
            by_severity = {a["labels"].get("severity"): a for a in got}
            return by_severity if set(SEVERITIES) <= set(by_severity) else {}

        got = p.poll(routed)
    finally:
        _resolve(am, alerts, p)
        _quietly(lambda: am.expire_silence(silence, timeout=p.timeout(3.0)))
    if not got:
        raise Failed("posted one alert per severity; Alertmanager does not list them")
    seen, wrong = [], []
    for severity in SEVERITIES:
        receivers = tuple(sorted(r.get("name", "") for r in got[severity].get("receivers") or []))
        expected = tuple(sorted(expected_receivers(p.stack.config.alerting, severity)))
        seen.append(f"{severity} -> {', '.join(receivers) or 'nobody'}")
        if receivers != expected:
            wrong.append(f"{severity} alerts reach {', '.join(receivers) or 'no receiver'}, stack.yaml routes them "
                         f"to {', '.join(expected)}")
        if silence not in (got[severity].get("status") or {}).get("silencedBy", []):
            wrong.append(f"the {severity} probe was not silenced: it may have notified {', '.join(receivers)}")
    if wrong:
        raise Failed("; ".join(wrong), look=f"{p.url(check.service)}/#/status")
    return "; ".join(seen) + " (silenced, resolved)"


def _webhook(p: Probe):
    if isinstance(p.inbox, str) or p.inbox is None:
        raise Failed(p.inbox or "verify's webhook is not listening", look="stack.yaml verify.webhook_port")
    return p.inbox


def _delivered(p: Probe, alertname: str) -> tuple[dict, dict] | None:
    return _webhook(p).wait_for(lambda payload, alert: alert.get("labels", {}).get(RUN_LABEL) == p.run_id
                                and alert.get("labels", {}).get("alertname") == alertname,
                                timeout=p.deadline.remaining())


def _check_payload(payload: dict, alert: dict) -> list[str]:
    problems = []
    if payload.get("version") != "4":
        problems.append(f"webhook payload version {payload.get('version')!r}, not \"4\"")
    if payload.get("receiver") != RECEIVER:
        problems.append(f"delivered by receiver {payload.get('receiver')!r}, not {RECEIVER}")
    if alert.get("status") != "firing":
        problems.append(f"the alert arrived {alert.get('status')}, not firing")
    return problems


def _alert_delivery(p: Probe, check: PlannedCheck) -> str:
    inbox = _webhook(p)
    am = p.api(Alertmanager, check.service)
    now = datetime.now(timezone.utc)
    alerts = [_alert({"alertname": ALERT_NAME, RUN_LABEL: p.run_id, PROBE_LABEL: DELIVERY, "severity": "info"},
                     now, now + timedelta(minutes=5))]
    sent = p.deadline.elapsed()
    try:
        am.post_alerts(alerts, timeout=p.timeout())
        arrived = _delivered(p, ALERT_NAME)
    finally:
        _resolve(am, alerts, p)
    if arrived is None:
        raise Failed(f"Alertmanager accepted the alert but did not deliver it to {inbox.address}:{inbox.port} within "
                     f"{p.deadline.elapsed() - sent:.0f}s")
    problems = _check_payload(*arrived)
    if problems:
        raise Failed("; ".join(problems))
    return (f"delivered to verify's webhook ({inbox.address}:{inbox.port}) after {p.deadline.elapsed() - sent:.1f}s, "
            f"receiver {RECEIVER}, payload version 4")


def _rule_path(p: Probe, check: PlannedCheck) -> str:
    _webhook(p)
    prom = p.api(Prometheus, "prometheus")
    am = p.api(Alertmanager, "alertmanager")
    rules = {r.get("name") for g in prom.rule_groups(timeout=p.timeout()) for r in g.get("rules") or []}
    if RULE_ALERT_NAME not in rules:
        raise Failed(f"Prometheus has no rule {RULE_ALERT_NAME} (verify.rules.yml): run 'stackctl up' to render it",
                     look="stackctl up")
    labels = {"__name__": RULE_SERIES, RUN_LABEL: p.run_id}
    selector = f'{RULE_SERIES}{{{RUN_LABEL}="{p.run_id}"}}'
    written = int(time.time() * 1000)
    sent = p.deadline.elapsed()
    steps = []
    try:
        prom.remote_write([(labels, 1.0, written)], timeout=p.timeout())

        def firing() -> bool:
            return any(a.get("labels", {}).get(RUN_LABEL) == p.run_id and a.get("state") == "firing"
                       for a in prom.alerts(timeout=p.timeout()))

        if not p.poll(firing, interval=0.5):
            raise Failed(f"wrote {selector}; {RULE_ALERT_NAME} did not fire within {p.deadline.elapsed() - sent:.0f}s",
                         look=f"{p.url('prometheus')}/alerts")
        steps.append(f"fired in Prometheus after {p.deadline.elapsed() - sent:.1f}s")
        matchers = [f'alertname="{RULE_ALERT_NAME}"', f'{RUN_LABEL}="{p.run_id}"']
        if not p.poll(lambda: am.alerts(matchers, timeout=p.timeout()), interval=0.5):
            raise Failed(f"{RULE_ALERT_NAME} fired in Prometheus but did not reach Alertmanager", look=logs_hint("prometheus"))
        steps.append(f"reached Alertmanager after {p.deadline.elapsed() - sent:.1f}s")
        arrived = _delivered(p, RULE_ALERT_NAME)
        if arrived is None:
            raise Failed(f"{RULE_ALERT_NAME} reached Alertmanager but was not delivered to verify's webhook",
                         look=logs_hint("alertmanager"))
        problems = _check_payload(*arrived)
        if problems:
            raise Failed("; ".join(problems))
        steps.append(f"delivered to verify's webhook after {p.deadline.elapsed() - sent:.1f}s")
    finally:
        # A staleness marker ends the series at once: the alert resolves at the next evaluation, and Prometheus
        # sends it resolved to Alertmanager. Wait for that (one evaluation interval), so nothing is left firing.
        ended = max(int(time.time() * 1000), written + 1)
        _quietly(lambda: prom.remote_write([(labels, STALE_NAN, ended)], timeout=p.timeout(3.0)))
        _quietly(lambda: _wait_resolved(p, prom))
        _quietly(lambda: prom.delete_series(selector, timeout=p.timeout(3.0)))
    return "; ".join(steps) + "; resolved"


def _wait_resolved(p: Probe, prom: Prometheus) -> None:
    end = p.deadline.clock() + min(CLEANUP_GRACE, p.deadline.remaining() + CLEANUP_GRACE / 2)
    while any(a.get("labels", {}).get(RUN_LABEL) == p.run_id for a in prom.alerts(timeout=p.timeout(3.0))):
        if p.deadline.clock() >= end:
            return
        p.runtime.sleep(0.5)


# --- traces and logs -----------------------------------------------------------------------------------------------


def _traces_path(p: Probe, check: PlannedCheck) -> str:
    from stackctl.clients.otlp import send_trace

    entry = check.entry
    endpoint = p.url(entry.service, entry.port) + entry.path
    via = p.stack.services[entry.service].name
    try:
        sent_trace = send_trace(endpoint, p.resource(), {RUN_LABEL: p.run_id}, p.timeout())
    except ApiError as error:
        raise Failed(error.message, look=logs_hint(via)) from None
    jaeger = p.api(Jaeger, check.service)
    sent = p.deadline.elapsed()
    spans = p.poll(lambda: (lambda found: found if found and len(found) >= 2 else None)(
        jaeger.trace(sent_trace.trace_id, timeout=p.timeout())))
    look = f"{p.url(check.service)}/trace/{sent_trace.trace_id}"
    if not spans:
        partial = jaeger.trace(sent_trace.trace_id, timeout=p.timeout())
        raise Failed(f"sent trace {sent_trace.trace_id} to {via}; after {p.deadline.elapsed() - sent:.0f}s Jaeger has "
                     + (f"{len(partial)} of its 2 spans" if partial else "no such trace"), look=look)
    by_id = {s.get("spanId"): s for s in spans}
    child, parent = by_id.get(sent_trace.child_span_id), by_id.get(sent_trace.parent_span_id)
    problems = []
    if len(spans) != 2 or child is None or parent is None:
        problems.append(f"{len(spans)} spans ({', '.join(by_id)}), expected the parent and the child")
    services = {s.get("service") for s in spans}
    if services != {SERVICE_NAME}:
        problems.append(f"service {', '.join(map(str, services))}, expected {SERVICE_NAME}")
    if child is not None and child.get("parentSpanId") != sent_trace.parent_span_id:
        problems.append(f"the child's parentSpanId is {child.get('parentSpanId')!r}, not the parent's span id")
    if problems:
        raise Failed("; ".join(problems), look=look)
    return (f"trace {sent_trace.trace_id} sent to {via}, found in Jaeger after {p.deadline.elapsed() - sent:.1f}s: "
            f"service {SERVICE_NAME}, 2 spans, child linked to parent")


def _send_log_otlp(p: Probe, check: PlannedCheck, document: dict) -> None:
    from stackctl.clients.otlp import send_log

    entry = check.entry
    send_log(p.url(entry.service, entry.port) + entry.path, p.resource(), document["message"], document["trace_id"],
             document["span_id"], {RUN_LABEL: p.run_id}, p.timeout())


def _send_log_json_line(p: Probe, check: PlannedCheck, document: dict) -> None:
    from stackctl.clients.logstash import send_json_lines

    address = urlsplit(p.url(check.entry.service, check.entry.port))
    send_json_lines(address.hostname, address.port, [document], p.timeout())


LOG_SENDERS: dict[str, Callable[[Probe, PlannedCheck, dict], None]] = {
    "otlp": _send_log_otlp,
    "json-lines": _send_log_json_line,
}


def _logs_path(p: Probe, check: PlannedCheck) -> str:
    entry = check.entry
    via = p.stack.services[entry.service].name
    marker = f"stackctl-verify-{p.run_id}-{check.name.split(':', 1)[-1]}"
    document = {"@timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"{marker} stackctl verify log probe", "log": {"level": "info"},
                "service": {"name": SERVICE_NAME}, "trace_id": secrets.token_hex(16), "span_id": secrets.token_hex(8),
                RUN_LABEL: p.run_id}
    try:
        LOG_SENDERS[entry.protocol](p, check, document)
    except ApiError as error:
        raise Failed(error.message, look=logs_hint(via)) from None
    es = p.api(Elasticsearch, check.service, check)
    query = {"multi_match": {"query": marker, "type": "phrase", "fields": ["message", "body.text"]}}
    sent = p.deadline.elapsed()
    try:
        hits = p.poll(lambda: es.search("logs-*", {"query": query, "size": 5}, timeout=p.timeout()), interval=0.5)
    finally:
        _quietly(lambda: es.delete_by_query("logs-*", query, timeout=p.timeout(3.0)))
    if not hits:
        raise Failed(f"sent a log line marked {marker} to {via}; after {p.deadline.elapsed() - sent:.0f}s "
                     "Elasticsearch finds nothing in logs-*", look=logs_hint(via))
    source = hits[0].get("_source") or {}
    if source.get("trace_id") != document["trace_id"]:
        raise Failed(f"found the log line in {hits[0].get('_index')}, but its trace_id is "
                     f"{source.get('trace_id')!r}, not {document['trace_id']}", look=logs_hint(via))
    return (f"sent to {via}, found in {hits[0].get('_index')} after {p.deadline.elapsed() - sent:.1f}s "
            f"with trace_id {document['trace_id']} (then deleted)")


# --- Grafana -----------------------------------------------------------------------------------------------------


def _provisioned_datasources(p: Probe) -> list[dict]:
    return list((yamltext.load(p.bundle_file(DATASOURCES_FILE).read_bytes()) or {}).get("datasources") or [])


def _grafana_login(p: Probe, check: PlannedCheck) -> str:
    user, password = p.credentials(check)
    try:
        me = p.api(Grafana, check.service).current_user(user, password, timeout=p.timeout())
    except ApiError as error:
        if error.status == 401:
            raise Failed(f"Grafana refuses {user} with the generated password ({check.decl.auth.secret}): was it "
                         "changed in Grafana? 'stackctl secrets rotate' changes it in both places") from None
        raise
    return f"{me.get('login', user)} signs in with the generated password"


def _grafana_datasources(p: Probe, check: PlannedCheck) -> str:
    grafana = p.api(Grafana, check.service, check)
    seen, problems, look = [], [], ""
    for ds in _provisioned_datasources(p):
        status, body = grafana.datasource_health(ds["uid"], timeout=p.timeout())
        if status == 200 and body.get("status") == "OK":
            seen.append(f"{ds['name']} OK")
        elif status == 404 and grafana.datasource(ds["uid"], timeout=p.timeout()) is not None:
            seen.append(f"{ds['name']} present (Grafana has no health check for {ds.get('type')} datasources)")
        else:
            message = body.get("message") or f"HTTP {status}"
            problems.append(f"{ds['name']}: {message}" if status != 500 else f"{ds['name']} is not provisioned: {message}")
            behind = _service_of_host(p.stack, ds.get("url", ""))
            look = look or (logs_hint(behind) if behind and status == 400 else logs_hint("grafana"))
    if problems:
        raise Failed("; ".join(problems), look=look)
    return "; ".join(seen)


def _grafana_dashboards(p: Probe, check: PlannedCheck) -> str:
    grafana = p.api(Grafana, check.service, check)
    directory = p.bundle / DASHBOARDS_DIR
    files = sorted(directory.rglob("*.json")) if directory.is_dir() else []
    if not files:
        raise Skipped("the bundle provisions no dashboard")
    problems = []
    for path in files:
        uid = json.loads(path.read_text()).get("uid")
        found = grafana.dashboard(uid, timeout=p.timeout())
        if found is None:
            problems.append(f"{uid} ({path.relative_to(directory)}) is missing")
        elif not (found.get("meta") or {}).get("provisionedExternalId"):
            problems.append(f"{uid} exists but is not the provisioned one (saved over in the UI?)")
    if problems:
        raise Failed("; ".join(problems), look=logs_hint(p.stack.services[check.service].name))
    return f"{len(files)} dashboards provisioned"


def _grafana_links(p: Probe, check: PlannedCheck) -> str:
    grafana = p.api(Grafana, check.service, check)
    checked, problems = [], []
    for ds in _provisioned_datasources(p):
        expectations = link_variables(ds.get("jsonData") or {})
        if not expectations:
            continue
        held = (grafana.datasource(ds["uid"], timeout=p.timeout()) or {}).get("jsonData") or {}
        for path, expected in expectations:
            got = at_path(held, path)
            where = f"{ds['name']} jsonData.{'.'.join(map(str, path))}"
            checked.append(where)
            if got != expected:
                problems.append(f"{where} is {got!r} in Grafana, provisioned as {expected!r}: provisioning expanded "
                                "its ${__...} variable (Grafana needs $${__...} in the provisioning file)")
    if not checked:
        raise Skipped("no provisioned datasource holds a ${__...} variable")
    if problems:
        raise Failed("; ".join(problems), look=f"{DATASOURCES_FILE} in the bundle")
    return f"{len(checked)} links keep their variables ({', '.join(checked)})"


# --- Kibana --------------------------------------------------------------------------------------------------------


def _kibana_status(p: Probe, check: PlannedCheck) -> str:
    body = p.api(Kibana, check.service, check).status(timeout=p.timeout())
    status = body.get("status") or {}
    overall = status.get("overall") or {}
    if overall.get("level") != "available":
        core = "; ".join(f"{name} {s.get('level')}: {s.get('summary', '')}"
                         for name, s in (status.get("core") or {}).items() if s.get("level") != "available")
        raise Failed(f"overall {overall.get('level')}: {overall.get('summary', '')}" + (f" ({core})" if core else ""))
    version = (body.get("version") or {}).get("number")
    return "overall available" + (f" (Kibana {version})" if version else "")


def _kibana_data_views(p: Probe, check: PlannedCheck) -> str:
    kibana = p.api(Kibana, check.service, check)
    views = [step for step in p.stack.services[check.service].spec.after_up if isinstance(step, catalog.DataView)]
    if not views:
        raise Skipped("no data view is provisioned")
    for view in views:
        found = kibana.data_view(view.id, timeout=p.timeout())
        if found is None:
            raise Failed(f"data view {view.id} ({view.title}) is missing: 'stackctl up' creates it once Kibana is "
                         "healthy", look="stackctl up")
        if found.get("title") != view.title:
            raise Failed(f"data view {view.id} is for {found.get('title')!r}, not {view.title}")
    return ", ".join(f"{v.id} ({v.title})" for v in views) + " present"


IMPLEMENTATIONS: dict[type, Callable[[Probe, PlannedCheck], str]] = {
    catalog.Ready: _ready,
    catalog.ScrapeTargets: _scrape_targets,
    catalog.RuleFiles: _rule_files,
    catalog.AlertmanagerLink: _alertmanager_link,
    catalog.MetricsPath: _metrics_path,
    catalog.AlertRouting: _alert_routing,
    catalog.AlertDelivery: _alert_delivery,
    catalog.RulePath: _rule_path,
    catalog.TracesPath: _traces_path,
    catalog.LogsPath: _logs_path,
    catalog.GrafanaLogin: _grafana_login,
    catalog.GrafanaDatasources: _grafana_datasources,
    catalog.GrafanaDashboards: _grafana_dashboards,
    catalog.GrafanaLinks: _grafana_links,
    catalog.KibanaStatus: _kibana_status,
    catalog.KibanaDataViews: _kibana_data_views,
}
NEEDS_WEBHOOK = (catalog.AlertDelivery, catalog.RulePath)


# --- running -------------------------------------------------------------------------------------------------------


def run_check(p: Probe, check: PlannedCheck) -> VerifyResult:
    """One check, timed; whatever it raises becomes its failure (a bug too: named, not hidden)."""
    start = p.deadline.clock()
    look = ""
    try:
        detail, status = IMPLEMENTATIONS[type(check.decl)](p, check), PASSED
    except Failed as failure:
        detail, status, look = failure.detail, FAILED, failure.look
    except Skipped as skip:
        detail, status = str(skip), SKIPPED
    except StackError as error:
        detail, status = error.message, FAILED
    except Exception as error:  # a bug in a check must not hide the other results
        detail, status = f"internal error: {type(error).__name__}: {error}", FAILED
    if status == FAILED and not look:
        look = logs_hint(check.components[0])
    return VerifyResult(check.name, check.kind, check.components, status, detail, p.deadline.clock() - start, look)


def _open_inbox(stack: Stack, runtime: Runtime):
    """verify's webhook, listening where host.docker.internal leads: a started WebhookInbox, or why not (str)."""
    from stackctl.clients.webhook import WebhookInbox

    settings = stack.config.verify
    address = settings.webhook_address
    if not address:
        try:
            address = runtime.engine.host_gateway() or "127.0.0.1"
        except StackError:
            address = "127.0.0.1"
    try:
        return WebhookInbox(address, settings.webhook_port).start()
    except StackError as error:
        if settings.webhook_address or address == "127.0.0.1":
            return error.message
    try:  # the bridge's address is not on this machine (Docker Desktop forwards to loopback)
        return WebhookInbox("127.0.0.1", settings.webhook_port).start()
    except StackError as error:
        return error.message


def verify(stack: Stack, runtime: Runtime, bundle: Path, *, only: list[str] = (), deep: bool = False,
           timeout: float | None = None, on_update: Progress | None = None) -> VerifyReport:
    """Run the selected checks concurrently under one deadline (`timeout` seconds, else stack.yaml's
    verify.timeout); on_update(results so far, names still running, elapsed) is called while they run."""
    checks, explicit = select(plan(stack, deep), list(only))
    seconds = timeout if timeout is not None else duration_seconds(stack.config.verify.timeout)
    if seconds <= 0:
        raise StackError(f"--timeout must be above 0 (got {seconds:g})")
    runnable = [c for c in checks if not c.skip]
    if stack.on_swarm:
        swarm.require_manager(runtime)
    with reach(stack, runtime) as where:
        deadline = Deadline(seconds, runtime.clock)
        inbox = _open_inbox(stack, runtime) if any(isinstance(c.decl, NEEDS_WEBHOOK) for c in runnable) else None
        probe = Probe(stack, runtime, bundle, secrets.token_hex(6), deadline, inbox, where=where)
        return _run_checks(probe, checks, runnable, seconds, explicit, deep, on_update)


def _run_checks(probe: Probe, checks: list[PlannedCheck], runnable: list[PlannedCheck], seconds: float,
                explicit: frozenset[str], deep: bool, on_update: Progress | None) -> VerifyReport:
    deadline, inbox = probe.deadline, probe.inbox
    results: dict[str, VerifyResult] = {c.name: VerifyResult(c.name, c.kind, c.components, SKIPPED, c.skip)
                                        for c in checks if c.skip}
    lock = threading.Lock()

    def work(check: PlannedCheck) -> None:
        result = run_check(probe, check)
        with lock:
            results[check.name] = result

    threads = {c.name: threading.Thread(target=work, args=(c,), daemon=True, name=f"verify {c.name}")
               for c in runnable}
    for thread in threads.values():
        thread.start()
    try:
        while True:
            with lock:
                running = [name for name in threads if name not in results]
                done = [results[c.name] for c in checks if c.name in results]
            if on_update is not None:
                on_update(done, running, deadline.elapsed())
            if not running or deadline.elapsed() > seconds + CLEANUP_GRACE:
                break
            time.sleep(0.1)
    finally:
        if inbox is not None and not isinstance(inbox, str):
            inbox.stop()
    with lock:
        for check in runnable:
            results.setdefault(check.name, VerifyResult(
                check.name, check.kind, check.components, FAILED,
                f"did not finish within the deadline ({seconds:g}s)", deadline.elapsed(), logs_hint(check.components[0])))
        ordered = tuple(results[c.name] for c in checks)
    return VerifyReport(probe.run_id, deep, ordered, deadline.elapsed(), explicit)
