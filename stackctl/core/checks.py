"""Checks of a rendered bundle that need no tool (pure): the collector's pipelines, references to enabled
services only, and no secret value in any file. The real validators are run by stackctl.ops.validate."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable

from stackctl.core import swarm, yamltext
from stackctl.core.config import Stack
from stackctl.core.render import COMPOSE_FILE

PASSED, FAILED, MISSING, SKIPPED = "passed", "failed", "missing", "skipped"
MIN_SECRET_LENGTH = 8  # shorter values cannot be told apart from a coincidence in a file


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # passed | failed | missing (tool not installed) | skipped (nothing to check)
    tool: str = ""  # tool and version that ran the check
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _yaml(plan: dict[str, bytes], path: str) -> dict:
    return yamltext.load(plan[path]) or {}


def check_collector(stack: Stack, plan: dict[str, bytes], secrets: dict[str, bytes]) -> list[str]:
    """Every pipeline names receivers, processors and exporters that are defined, and every defined one is used."""
    path = "configs/collector/config.yaml"
    if path not in plan:
        return []
    doc = _yaml(plan, path)
    problems = []
    used: dict[str, set] = {"receivers": set(), "processors": set(), "exporters": set()}
    pipelines = (doc.get("service") or {}).get("pipelines") or {}
    if not pipelines:
        problems.append(f"{path}: no pipelines")
    for name, pipeline in pipelines.items():
        for kind in used:
            for component in pipeline.get(kind) or []:
                used[kind].add(component)
                if component not in (doc.get(kind) or {}):
                    problems.append(f"{path}: pipeline {name} uses {kind[:-1]} {component!r}, which is not defined")
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problems.append(f"{path}: pipeline {name} needs receivers and exporters")
    for kind, names in used.items():
        for component in sorted(set(doc.get(kind) or {}) - names):
            problems.append(f"{path}: {kind[:-1]} {component!r} is defined but no pipeline uses it")
    for extension in (doc.get("service") or {}).get("extensions") or []:
        if extension not in (doc.get("extensions") or {}):
            problems.append(f"{path}: extension {extension!r} is enabled but not defined")
    return problems


def _host(url: str) -> str:
    match = re.match(r"[a-z]+://([^/:]+)", url)
    return match.group(1) if match else url.split(":")[0]


def check_references(stack: Stack, plan: dict[str, bytes], secrets: dict[str, bytes]) -> list[str]:
    """Datasources, scrape jobs, exporters and dependencies point only at services that are enabled."""
    names = {svc.name for svc in stack.services.values()}
    problems = []
    ds_path = "grafana/provisioning/datasources/datasources.yaml"
    if ds_path in plan:
        for ds in _yaml(plan, ds_path).get("datasources") or []:
            if _host(ds["url"]) not in names:
                problems.append(f"{ds_path}: datasource {ds['name']} points at {ds['url']}, which is not enabled")
    prom_path = "configs/prometheus/prometheus.yml"
    user_jobs = {t.job for t in stack.config.scrape_targets}
    if prom_path in plan:
        doc = _yaml(plan, prom_path)
        for job in doc.get("scrape_configs") or []:
            if job["job_name"] in user_jobs:
                continue
            for target in _discovered(job):
                host = _host(target)  # host:port, a URL the blackbox exporter probes, or a service found by DNS
                if host != "localhost" and host not in names:
                    problems.append(f"{prom_path}: job {job['job_name']} scrapes {target}, which is not enabled")
        for am in (doc.get("alerting") or {}).get("alertmanagers") or []:
            for target in _discovered(am):
                if target.split(":")[0] not in names:
                    problems.append(f"{prom_path}: alerts go to {target}, which is not enabled")
    col_path = "configs/collector/config.yaml"
    if col_path in plan:
        for name, exporter in (_yaml(plan, col_path).get("exporters") or {}).items():
            for url in [exporter.get("endpoint")] + list(exporter.get("endpoints") or []):
                if url and _host(url) not in names:
                    problems.append(f"{col_path}: exporter {name} sends to {url}, which is not enabled")
    compose = _yaml(plan, COMPOSE_FILE)
    declared_secrets = set(compose.get("secrets") or {})
    for name, service in (compose.get("services") or {}).items():
        for dependency in service.get("depends_on") or {}:
            if dependency not in compose["services"]:
                problems.append(f"{COMPOSE_FILE}: {name} depends on {dependency}, which is not in the stack")
        for secret in service.get("secrets") or []:
            if secret["source"] not in declared_secrets:
                problems.append(f"{COMPOSE_FILE}: {name} uses secret {secret['source']}, which is not declared")
    return problems


def _discovered(job: dict) -> list[str]:
    """The services a scrape job or Alertmanager entry reaches: static targets, and the `tasks.<service>` names of
    DNS discovery on Swarm."""
    static = [t for group in job.get("static_configs") or [] for t in group.get("targets") or []]
    dns = [name.removeprefix("tasks.") for group in job.get("dns_sd_configs") or [] for name in group.get("names") or []]
    return static + dns


def check_swarm(stack: Stack, plan: dict[str, bytes], secrets: dict[str, bytes]) -> list[str]:
    """Every config the Swarm stack file declares is a bundle file Swarm can hold."""
    return swarm.check_stack_file(stack, plan, _yaml(plan, COMPOSE_FILE))


def check_no_secret_values(stack: Stack, plan: dict[str, bytes], secrets: dict[str, bytes]) -> list[str]:
    """No secret value appears in any rendered file (they travel only as /run/secrets files)."""
    problems = []
    for name, value in sorted(secrets.items()):
        if len(value) < MIN_SECRET_LENGTH:
            continue
        for path, data in plan.items():
            if value in data:
                problems.append(f"{path}: contains the value of secret {name}")
    return problems


# Each takes the stack, the plan and the secret values known now, and returns problems, one line each.
STRUCTURAL_CHECKS: tuple[tuple[str, Callable[[Stack, dict, dict], list[str]]], ...] = (
    ("collector pipelines", check_collector),
    ("references to enabled services", check_references),
    ("no secret values in files", check_no_secret_values),
)
SWARM_CHECKS = (("swarm configs", check_swarm),)  # with target: swarm only


def structural_checks(stack: Stack, plan: dict[str, bytes], secrets: dict[str, bytes]) -> list[CheckResult]:
    results = []
    for name, check in STRUCTURAL_CHECKS + (SWARM_CHECKS if stack.on_swarm else ()):
        problems = check(stack, plan, secrets)
        results.append(CheckResult(name, FAILED if problems else PASSED, "stackctl", "\n".join(problems)))
    return results
