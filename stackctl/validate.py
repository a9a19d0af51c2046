"""Validation of a rendered bundle: stackctl's own structural checks (pure) and the real tools where installed.

Every check reports whether it ran, passed, failed or was skipped because its tool is missing, and which version
of the tool checked (it may be older than the image that will run the file).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from stackctl import runner
from stackctl.compose import Compose, find_compose, parse_tool_version
from stackctl.config import Stack
from stackctl.errors import StackError
from stackctl.render import COMPOSE_FILE
from stackctl.secrets import SecretStore, read_user_secret, required_secrets, user_supplied


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # passed | failed | missing (tool not installed) | skipped (nothing to check)
    tool: str = ""  # tool and version that ran the check
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


# --- structural checks: pure functions over the plan ----------------------------------------------------------


def _yaml(plan: dict[str, bytes], path: str) -> dict:
    return yaml.safe_load(plan[path]) or {}


def check_collector(stack: Stack, plan: dict[str, bytes]) -> list[str]:
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
    match = re.match(r"^[a-z]+://([^/:]+)", url)
    return match.group(1) if match else url.split(":")[0]


def check_references(stack: Stack, plan: dict[str, bytes]) -> list[str]:
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
            for group in job.get("static_configs") or []:
                for target in group.get("targets") or []:
                    host = target.split(":")[0]
                    if host != "localhost" and host not in names:
                        problems.append(f"{prom_path}: job {job['job_name']} scrapes {target}, which is not enabled")
        for am in (doc.get("alerting") or {}).get("alertmanagers") or []:
            for group in am.get("static_configs") or []:
                for target in group.get("targets") or []:
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


def _known_secret_values(stack: Stack) -> dict[str, bytes]:
    """The values stackctl can see now: generated ones in the state dir, user-supplied ones that are readable."""
    store = SecretStore.for_stack(stack)
    supplied = user_supplied(stack)
    values = {}
    for name in required_secrets(stack):
        try:
            if name in supplied:
                values[name] = read_user_secret(stack, supplied[name]).encode()
            elif store.exists(name):
                values[name] = store.read(name).encode()
        except StackError:  # not readable yet: `up` reports that; nothing to compare here
            continue
    return values


def check_no_secret_values(stack: Stack, plan: dict[str, bytes]) -> list[str]:
    """No secret value appears in any rendered file (they travel only as /run/secrets files)."""
    problems = []
    for name, value in _known_secret_values(stack).items():
        if len(value) < 8:  # too short to tell a leak from a coincidence
            continue
        for path, data in plan.items():
            if value in data:
                problems.append(f"{path}: contains the value of secret {name}")
    return problems


# Each takes the stack and the plan and returns problems, one line each.
STRUCTURAL_CHECKS = (
    ("collector pipelines", check_collector),
    ("references to enabled services", check_references),
    ("no secret values in files", check_no_secret_values),
)


def structural_checks(stack: Stack, plan: dict[str, bytes]) -> list[CheckResult]:
    results = []
    for name, check in STRUCTURAL_CHECKS:
        problems = check(stack, plan)
        results.append(CheckResult(name, "failed" if problems else "passed", "stackctl", "\n".join(problems)))
    return results


# --- the real tools -------------------------------------------------------------------------------------------


def _tool_version(tool: str) -> str:
    result = runner.run([tool, "--version"], timeout=30)
    return f"{tool} {parse_tool_version(result.output)}"


def _run_tool(name: str, tool: str, argv: list[str], image_note: str) -> CheckResult:
    if not runner.which(tool):
        return CheckResult(name, "missing", tool, f"{tool} is not on PATH; this check did not run")
    version = _tool_version(tool) + image_note
    result = runner.run(argv, timeout=120)
    if result.ok:
        return CheckResult(name, "passed", version, result.output.splitlines()[-1] if result.output else "")
    return CheckResult(name, "failed", version, result.output)


def tool_checks(stack: Stack, bundle: Path, compose_env: dict[str, str]) -> list[CheckResult]:
    results = []
    try:
        tool = find_compose()
        compose = Compose(bundle, stack.config.project, env=compose_env, tool=tool)
        outcome = compose.check_config()
        results.append(CheckResult("docker compose config", "passed" if outcome.ok else "failed",
                                   f"{' '.join(tool.argv)} {tool.version}", outcome.output))
    except StackError as error:
        results.append(CheckResult("docker compose config", "missing", "docker compose", error.message))
    if stack.enabled("prometheus"):
        note = f" (image {stack.get('prometheus').version})"
        prom_config = bundle / "configs/prometheus/prometheus.yml"
        results.append(_run_tool("promtool check config", "promtool",
                                 ["promtool", "check", "config", str(prom_config)], note))
        rules = sorted((bundle / "configs/prometheus/rules").glob("*.yml"))
        if rules:
            results.append(_run_tool("promtool check rules", "promtool",
                                     ["promtool", "check", "rules", *map(str, rules)], note))
        else:
            results.append(CheckResult("promtool check rules", "skipped", "promtool", "no rule files in the bundle"))
    if stack.enabled("alertmanager"):
        note = f" (image {stack.get('alertmanager').version})"
        results.append(_run_tool("amtool check-config", "amtool",
                                 ["amtool", "check-config", str(bundle / "configs/alertmanager/alertmanager.yml")], note))
    return results


def placeholder_compose_env(stack: Stack) -> dict[str, str]:
    """Stand-in secret values so `docker compose config` can run before any secret exists."""
    from stackctl.secrets import env_name

    return {env_name(name): "placeholder" for name in required_secrets(stack)}


def validate_plan(stack: Stack, plan: dict[str, bytes], bundle: Path | None = None) -> list[CheckResult]:
    """All checks over a plan. Without a written bundle, the plan is written to a temporary directory for the tools."""
    results = structural_checks(stack, plan)
    env = placeholder_compose_env(stack)
    if bundle is not None:
        return results + tool_checks(stack, bundle, env)
    with tempfile.TemporaryDirectory(prefix="stackctl-validate-") as tmp:
        for rel, data in plan.items():
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return results + tool_checks(stack, Path(tmp), env)
