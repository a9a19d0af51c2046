"""`stackctl verify`, the pure part: which checks a stack has (each service declares its own in the catalog), which
of them run, the result of each, and the expectations checks compare against (receivers per severity, scrape
jobs, Grafana link variables). The checks themselves run in stackctl.ops.verify."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackctl.core import catalog
from stackctl.core.alerting import AlertingConfig
from stackctl.core.checks import FAILED, PASSED, SKIPPED  # noqa: F401  (one vocabulary of verdicts)
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.schema import closest
from stackctl.core.units import parse_time  # noqa: F401  (callers of verify read times with it)
from stackctl.core.versions import Version

# Labels every synthetic alert and series carries: the run id, and which probe made it. Alertmanager routes
# stackctl_verify_probe="delivery" only to verify's own webhook (configs/alertmanager/alertmanager.yml.gojinja).
RUN_LABEL = "stackctl_verify"
PROBE_LABEL = "stackctl_verify_probe"
DELIVERY = "delivery"
ROUTING = "routing"
ALERT_NAME = "StackctlVerify"
RULE_ALERT_NAME = "StackctlVerifyRule"  # configs/prometheus/rules/verify.rules.yml.gojinja
RULE_SERIES = "stackctl_verify_rule_probe"
METRIC_NAME = "stackctl_verify_probe"
RECEIVER = "stackctl-verify"  # the Alertmanager receiver of verify's webhook
SERVICE_NAME = "stackctl-verify"  # service.name of synthetic traces, logs and metrics


def logs_hint(service_name: str) -> str:
    return f"stackctl logs {service_name}"


@dataclass(frozen=True)
class PlannedCheck:
    """A check declared by an enabled service, as it applies to this stack."""

    decl: catalog.VerifyCheck
    service: str  # key of the service declaring it
    components: tuple[str, ...]  # compose names of the services it covers
    entry: catalog.Entry | None = None  # where path checks send
    skip: str = ""  # why it does not run ("" when it runs)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def kind(self) -> str:
        return type(self.decl).__name__


@dataclass(frozen=True)
class VerifyResult:
    name: str
    kind: str
    components: tuple[str, ...]
    status: str  # passed | failed | skipped
    detail: str  # what was seen, or why it was skipped
    duration: float = 0.0  # seconds
    look: str = ""  # where to look when it failed: a command (stackctl logs SERVICE) or a URL

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "components": list(self.components), "status": self.status,
                "detail": self.detail, "duration": round(self.duration, 3), "look": self.look}


@dataclass(frozen=True)
class VerifyReport:
    run_id: str
    deep: bool
    results: tuple[VerifyResult, ...]
    duration: float
    explicit: frozenset[str] = field(default_factory=frozenset)  # checks named one by one with --only

    @property
    def ok(self) -> bool:
        """Every check that ran passed, and every check named with --only ran."""
        return all(r.status == PASSED or (r.status == SKIPPED and r.name not in self.explicit) for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "run_id": self.run_id, "deep": self.deep, "duration": round(self.duration, 3),
                "checks": [r.to_json() for r in self.results]}


def _entry(stack: Stack, decl: catalog.VerifyCheck) -> tuple[catalog.Entry | None, str]:
    """The first entry of a path check this stack can send through, or why there is none."""
    missing = []
    for entry in decl.entries:
        svc = stack.services.get(entry.service)
        if svc is None:
            missing.append(f"{catalog.SERVICES[entry.service].title} is not enabled")
        elif entry.port not in svc.host_ports and not stack.on_swarm:  # on Swarm a forwarder reaches the rest
            missing.append(f"{svc.name} does not publish its {entry.port} port")
        elif entry.min_version and svc.version < Version.parse(entry.min_version):
            missing.append(f"{svc.spec.title} {svc.version} has no {entry.path} (needs {entry.min_version})")
        else:
            return entry, ""
    return None, "nowhere to send: " + "; ".join(dict.fromkeys(missing))


def plan(stack: Stack, deep: bool) -> list[PlannedCheck]:
    """Every check of every enabled service, in catalog order, with the reason it is skipped where it is."""
    planned = []
    for svc in stack.services.values():
        for decl in svc.spec.verify:
            entry, skip = _entry(stack, decl) if decl.entries else (None, "")
            off = [catalog.SERVICES[key].title for key in decl.needs if key not in stack.services]
            if off:
                skip = f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} not enabled"
            elif decl.deep and not deep:
                skip = "runs with --deep"
            names = [svc.name] + [stack.services[key].name for key in decl.covers if key in stack.services]
            if entry is not None:
                names.append(stack.services[entry.service].name)
            planned.append(PlannedCheck(decl, svc.key, tuple(dict.fromkeys(names)), entry, skip))
    return planned


def select(planned: list[PlannedCheck], only: list[str]) -> tuple[list[PlannedCheck], frozenset[str]]:
    """The checks `--only` names: a check's name, or a group (`scrape` selects scrape:targets, scrape:rules, ...).
    Also returns the checks named one by one (they must run). An unknown name is a StackError."""
    if not only:
        return planned, frozenset()
    names = [p.name for p in planned]
    groups = {n.split(":", 1)[0] for n in names}
    chosen: set[str] = set()
    explicit: set[str] = set()
    for wanted in only:
        if wanted in names:
            chosen.add(wanted)
            explicit.add(wanted)
        elif wanted in groups:
            chosen.update(n for n in names if n.split(":", 1)[0] == wanted)
        else:
            hint = closest(wanted, names + sorted(groups))
            raise StackError(f"no check named {wanted!r} in this stack" + (f" ({hint})" if hint else "")
                             + f"; checks: {', '.join(names)}")
    return [p for p in planned if p.name in chosen], frozenset(explicit)


def expected_receivers(alerting: AlertingConfig, severity: str) -> tuple[str, ...]:
    """The receivers stack.yaml's routing sends an alert of `severity` to (alertmanager.yml.gojinja): each receiver
    listing the severity, else `null` for info and `default` (no integrations) for the others."""
    named = tuple(r.name for r in alerting.receivers_for(severity))
    return named or (("null",) if severity == "info" else ("default",))


def expected_scrape_jobs(stack: Stack) -> dict[str, str]:
    """Scrape job -> the service (compose name) or app it scrapes: every enabled service exposing metrics, and
    the user's scrape_targets (prometheus.yml.j2)."""
    jobs = {svc.name: svc.name for svc in stack.services.values() if svc.spec.metrics}
    jobs.update({t.job: "" for t in stack.config.scrape_targets})
    return jobs


def link_variables(node: Any, path: tuple = ()) -> list[tuple[tuple, str]]:
    """(JSON path, value Grafana must return) of every provisioned string holding a `${__...}` variable.

    Grafana expands $VAR and ${VAR} in provisioning files and turns `$$` into `$`: `$${__span.traceId}` is the
    escaped form that survives, `${__span.traceId}` as written is expanded to nothing. Either way the intended
    value is the string with `$$` read as `$`; comparing Grafana's answer with it catches the eaten variable."""
    found: list[tuple[tuple, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += link_variables(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += link_variables(value, path + (i,))
    elif isinstance(node, str) and "${__" in node:
        found.append((path, node.replace("$$", "$")))
    return found


def at_path(node: Any, path: tuple) -> Any:
    """The value at a JSON path, or None where the path does not exist."""
    for part in path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


