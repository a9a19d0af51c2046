"""Rendering: the stack -> a bundle plan (relative path -> bytes).

The plan is pure and deterministic (same stack, byte-identical files); it reads templates and writes nothing.
stackctl.ops.bundle validates it in a staging directory before stackctl.shells.fs applies it to the bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from stackctl.core import catalog
from stackctl.core.config import ResolvedService, Stack
from stackctl.core.errors import StackError
from stackctl.core import yamltext
from stackctl.core.secrets import env_name

COMPOSE_FILE = "compose.yaml"
TEMPLATE_SUFFIX = ".j2"
# Files full of Go templates (Prometheus rules, Alertmanager message templates) keep {{ }} for Go: they are
# rendered with [[ ]] / [% %] / [# #] as Jinja delimiters instead. One documented escape, no {% raw %} blocks.
GO_TEMPLATE_SUFFIX = ".gojinja"

# Files that are not rendered carry no header (JSON has no comments; shell scripts keep their shebang first).
_COMMENT = {".yml": "#", ".yaml": "#", ".conf": "#", ".sh": "#", ".tmpl": None, ".json": None}


def asset_root() -> Path:
    """Where compose/, configs/, grafana/ are: inside the installed package, or the source checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_assets"
    if (packaged / "compose").is_dir():
        return packaged
    checkout = package.parent
    if (checkout / "compose").is_dir():
        return checkout
    raise StackError("stackctl's templates are missing from this installation (no compose/ directory found)")


def template_env(root: Path, go_safe: bool = False, bytecode_cache: Any = None) -> jinja2.Environment:
    delimiters = dict(
        block_start_string="[%", block_end_string="%]", variable_start_string="[[", variable_end_string="]]",
        comment_start_string="[#", comment_end_string="#]",
    ) if go_safe else {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        **delimiters,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=bytecode_cache,
    )
    env.filters["json"] = to_json
    return env


def to_json(value: Any) -> str:
    """A value as JSON, which is also a YAML flow scalar: non-ASCII characters written as themselves (YAML, unlike
    JSON, has no surrogate-pair escapes, so an emoji escaped the JSON way breaks Go's YAML parser)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(**context)
    except jinja2.UndefinedError as error:
        raise StackError(f"template {name}: {error.message} (a bug in the template or a missing setting)") from None
    except jinja2.TemplateSyntaxError as error:
        raise StackError(f"template {error.filename or name}:{error.lineno}: {error.message}") from None


def _header(source: str, suffix: str) -> str:
    mark = _COMMENT.get(suffix, "#")
    if mark is None:
        return ""
    return f"{mark} Rendered by stackctl from {source}. Do not edit: change stack.yaml and run 'stackctl render'.\n"


def _with_header(text: str, source: str, out_name: str) -> str:
    header = _header(source, Path(out_name).suffix)
    if not header:
        return text
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        return f"{first}\n{header}{rest}"
    return header + text


def template_context(stack: Stack) -> dict[str, Any]:
    services = stack.services

    def enabled(key: str) -> bool:
        return key in services

    def address(key: str, port: str) -> str:
        """host:port of a service on the stack network."""
        spec = catalog.SERVICES[key]
        return f"{spec.name}:{spec.port(port).container}"

    return {
        "stack": stack,
        "config": stack.config,
        "project": stack.config.project,
        "services": services,
        "enabled": enabled,
        "address": address,
        "catalog": catalog.SERVICES,
        "scrape_targets": stack.config.scrape_targets,
        "runbook_base_url": runbook_base_url(stack),
    }


# Rule templates write runbook links as `<runbook_base_url>/<Alert>.md`. Without a configured base the link must
# open where the stack runs (not a path of the machine that rendered it): the runbooks become Grafana dashboards
# and each link is rewritten to its dashboard (see link_runbooks_to_grafana).
RUNBOOK_PLACEHOLDER = "stackctl-runbook:"
_RUNBOOK_LINK = re.compile(re.escape(RUNBOOK_PLACEHOLDER) + r"/([A-Za-z0-9_]+)\.md")
RUNBOOK_DASHBOARDS = "grafana/dashboards/runbooks/"


def runbook_base_url(stack: Stack) -> str:
    """Where alerts' runbook links point: rules.runbook_base_url, else a placeholder resolved after rendering."""
    return stack.config.rules.runbook_base_url.rstrip("/") or RUNBOOK_PLACEHOLDER


def runbook_uid(alert: str) -> str:
    """The Grafana dashboard uid of an alert's runbook (Grafana allows at most 40 characters)."""
    return "runbook-" + hashlib.sha1(alert.encode()).hexdigest()[:16]


def runbook_viewer_url(stack: Stack) -> str | None:
    """The service that shows runbooks (the catalog's `shows_runbooks`, Grafana) as a browser on the machine
    running the stack reaches it; None when none is enabled and published."""
    for svc in stack.services.values():
        port = svc.spec.primary_port
        if svc.spec.shows_runbooks and port is not None and port.name in svc.host_ports:
            host = stack.config.bind_address
            host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1", "::1") else host
            host = f"[{host}]" if ":" in host else host
            return f"{port.scheme}://{host}:{svc.host_ports[port.name]}"
    return None


def runbook_dashboard(alert: str, markdown: bytes) -> bytes:
    """A runbook as a Grafana dashboard: one markdown text panel, in the folder `runbooks`."""
    dashboard = {
        "uid": runbook_uid(alert), "title": f"Runbook: {alert}", "tags": ["runbook"], "editable": False,
        "schemaVersion": 39, "time": {"from": "now-1h", "to": "now"},
        "panels": [{"id": 1, "type": "text", "title": "", "gridPos": {"h": 40, "w": 24, "x": 0, "y": 0},
                    "options": {"mode": "markdown", "content": markdown.decode()}}],
    }
    return (json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def link_runbooks_to_grafana(stack: Stack, files: dict[str, bytes]) -> dict[str, bytes]:
    """Resolve placeholder runbook links: to each runbook's Grafana dashboard when Grafana is published (the
    runbooks are added as dashboards), else to the runbook's path in the bundle."""
    base = runbook_viewer_url(stack)
    alerts = [p[len("runbooks/"):-len(".md")] for p in files if p.startswith("runbooks/") and p.endswith(".md")
              and p != "runbooks/README.md"]

    def link(match: re.Match) -> str:
        alert = match.group(1)
        return f"{base}/d/{runbook_uid(alert)}/{alert.lower()}" if base else f"runbooks/{alert}.md"

    linked = {path: (_RUNBOOK_LINK.sub(link, data.decode()).encode()
                     if RUNBOOK_PLACEHOLDER.encode() in data else data) for path, data in files.items()}
    if base and any(RUNBOOK_PLACEHOLDER.encode() in data for data in files.values()):
        for alert in alerts:
            linked[f"{RUNBOOK_DASHBOARDS}{alert}.json"] = runbook_dashboard(alert, files[f"runbooks/{alert}.md"])
    return linked


def _asset_dirs(spec: catalog.ServiceSpec) -> tuple[str, ...]:
    """Bundle directories holding a service's files: configs/<key>/ plus its catalog `assets`."""
    return (f"configs/{spec.key}",) + spec.assets


def _service_assets(root: Path, spec: catalog.ServiceSpec) -> list[tuple[Path, str]]:
    """(source file, bundle path) for every config file of a service."""
    pairs = []
    for rel_dir in _asset_dirs(spec):
        base = root / rel_dir
        if not base.is_dir():
            continue
        for source in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            pairs.append((source, f"{rel_dir}/{source.relative_to(base).as_posix()}"))
    return pairs


def render_service_files(stack: Stack, root: Path, env: jinja2.Environment, context: dict) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    go_env = template_env(root, go_safe=True, bytecode_cache=env.bytecode_cache)
    for svc in stack.services.values():
        for source, dest in _service_assets(root, svc.spec):
            rel_source = source.relative_to(root).as_posix()
            for suffix, suffix_env in ((TEMPLATE_SUFFIX, env), (GO_TEMPLATE_SUFFIX, go_env)):
                if source.name.endswith(suffix):
                    out = dest[: -len(suffix)]
                    text = render_template(suffix_env, rel_source, {**context, "svc": svc})
                    if text.strip():  # a template may render to nothing when its feature is off
                        files[out] = _with_header(text, rel_source, out).encode()
                    break
            else:
                files[dest] = source.read_bytes()
    return files


DATASOURCES_FILE = "grafana/provisioning/datasources/datasources.yaml"


BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --"}


def _datasource_uids(node: Any) -> set[str]:
    """Datasource uids a panel (or any JSON node) queries: every `"datasource": {"uid": ...}` inside it."""
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and isinstance(ds.get("uid"), str) and not ds["uid"].startswith("$"):
            found.add(ds["uid"])
        for value in node.values():
            found |= _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _datasource_uids(value)
    return found - BUILTIN_DATASOURCES


def _keep_panels(panels: list, provisioned: set[str]) -> list:
    kept = []
    for panel in panels:
        if panel.get("type") == "row":
            panel = {**panel, "panels": _keep_panels(panel.get("panels") or [], provisioned)}
            kept.append(panel)
        elif _datasource_uids(panel) <= provisioned:
            kept.append(panel)
    return kept


def drop_dashboards_without_datasources(files: dict[str, bytes], services: set[str]) -> dict[str, bytes]:
    """No dangling datasource: panels querying a datasource this stack does not provision are left out, and a
    dashboard left with no panel at all is left out. Untouched dashboards are copied byte for byte."""
    if DATASOURCES_FILE not in files:
        return files
    provisioned = {ds["uid"] for ds in (yamltext.load(files[DATASOURCES_FILE]).get("datasources") or [])}
    kept = {}
    for path, data in files.items():
        if path.startswith("grafana/dashboards/") and path.endswith(".json"):
            dashboard = json.loads(data)
            # A dashboard about one service says so with a tag "requires:<service>"; it goes when that one is off.
            required = {t.split(":", 1)[1] for t in dashboard.get("tags") or [] if t.startswith("requires:")}
            if not required <= services:
                continue
            if not _datasource_uids(dashboard) <= provisioned:
                panels = _keep_panels(dashboard.get("panels") or [], provisioned)
                if not any(p.get("type") != "row" for p in panels) and not any(p.get("panels") for p in panels):
                    continue
                # Templating variables may query a missing datasource too: drop those.
                templating = dashboard.get("templating") or {}
                variables = [v for v in templating.get("list") or [] if _datasource_uids(v) <= provisioned]
                dashboard = {**dashboard, "panels": panels, "templating": {**templating, "list": variables}}
                # ... and so may annotations (e.g. firing alerts from Prometheus): drop those.
                if dashboard.get("annotations"):
                    annotations = dashboard["annotations"]
                    queries = [a for a in annotations.get("list") or [] if _datasource_uids(a) <= provisioned]
                    dashboard["annotations"] = {**annotations, "list": queries}
                data = (json.dumps(dashboard, indent=2, sort_keys=True) + "\n").encode()
        kept[path] = data
    return kept


RULES_DIR = "configs/prometheus/rules/"


def keep_runbooks_of_rendered_alerts(files: dict[str, bytes]) -> dict[str, bytes]:
    """The bundle carries the runbooks of the alerts it renders (and the index), not those of disabled services."""
    alerts = {
        rule["alert"]
        for path, data in files.items() if path.startswith(RULES_DIR) and path.endswith(".yml")
        for group in (yamltext.load(data) or {}).get("groups") or []
        for rule in group.get("rules") or [] if "alert" in rule
    }
    return {path: data for path, data in files.items()
            if not (path.startswith("runbooks/") and path.endswith(".md") and path != "runbooks/README.md")
            or path[len("runbooks/"):-len(".md")] in alerts}


def _config_hash(files: dict[str, bytes], key: str) -> str:
    """Hash of a service's rendered config files: a compose label, so changing them recreates the service."""
    digest = hashlib.sha256()
    prefixes = tuple(f"{d}/" for d in _asset_dirs(catalog.SERVICES[key]))
    for path in sorted(p for p in files if p.startswith(prefixes)):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()[:16]


# Compose keys decided from the catalog for every service, whether or not a given service has them: a template may
# add labels and volumes (merged in) and its own keys (command, environment, ...), never these.
CATALOG_OWNED = frozenset({"image", "restart", "mem_limit", "logging", "ports", "healthcheck", "depends_on",
                           "secrets", "user", "container_name"})


def compose_service(stack: Stack, svc: ResolvedService, fragment: dict, config_hash: str) -> dict:
    """The compose definition of one service: catalog facts, then its template fragment's own keys."""
    spec = svc.spec
    bind = stack.config.bind_address
    service: dict[str, Any] = {
        "image": svc.image,
        "restart": "no" if spec.oneshot else "unless-stopped",
        "mem_limit": svc.memory,
        "labels": {
            "org.stackctl.service": spec.key,
            "org.stackctl.config-hash": config_hash,
        },
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
    }
    # No `user:` here: every image already runs as spec.user, and an explicit numeric "uid:gid" makes Docker 20.10
    # fail to inject secret files ("getent unable to find entry"). spec.user still owns the secrets below.
    ports = [f"{bind}:{svc.host_ports[p.name]}:{p.container}" for p in spec.ports if p.name in svc.host_ports]
    if ports:
        service["ports"] = ports
    if spec.healthcheck:
        hc = spec.healthcheck
        service["healthcheck"] = {
            "test": list(hc.test), "interval": hc.interval, "timeout": hc.timeout,
            "retries": hc.retries, "start_period": hc.start_period,
        }
    volumes = [f"{spec.compose_volume(v)}:{v.path}" for v in spec.volumes]
    volumes += fragment.pop("volumes", [])
    if volumes:
        service["volumes"] = volumes
    depends: dict[str, dict] = {}
    for key in spec.requires + spec.after:
        if key in stack.services and key != spec.key:
            other = stack.services[key].spec
            condition = "service_completed_successfully" if other.oneshot else (
                "service_healthy" if other.healthcheck else "service_started")
            depends[other.name] = {"condition": condition}
    if depends:
        service["depends_on"] = depends
    if svc.secrets:
        service["secrets"] = [
            {"source": use.name, "target": use.name, "uid": str(spec.uid), "gid": str(spec.gid), "mode": 0o400}
            for use in svc.secrets
        ]
    for key, value in fragment.items():
        if key in CATALOG_OWNED:
            raise StackError(f"compose/{spec.key}.yaml.j2 sets {key!r}, which the catalog owns")
        if key == "labels":
            service["labels"].update(value)
        else:
            service[key] = value
    return service


def render_compose(stack: Stack, root: Path, env: jinja2.Environment, context: dict,
                   files: dict[str, bytes]) -> bytes:
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secret_names: set[str] = set()
    for svc in stack.services.values():
        template = f"compose/{svc.key}.yaml{TEMPLATE_SUFFIX}"
        fragment: dict = {}
        if (root / template).exists():
            text = render_template(env, template, {**context, "svc": svc})
            try:
                fragment = yamltext.load(text) or {}
            except yaml.YAMLError as error:
                raise StackError(f"{template} rendered invalid YAML: {error}") from None
        services[svc.name] = compose_service(stack, svc, fragment, _config_hash(files, svc.key))
        for volume in svc.spec.volumes:
            volumes[svc.spec.compose_volume(volume)] = {}
        secret_names.update(use.name for use in svc.secrets)
    document: dict[str, Any] = {"name": stack.config.project, "services": services}
    if volumes:
        document["volumes"] = volumes
    if secret_names:
        # Values come from the environment of the compose process only; see stackctl.secrets.
        document["secrets"] = {name: {"environment": env_name(name)} for name in sorted(secret_names)}
    header = ("# Rendered by stackctl from stack.yaml and compose/. Do not edit: change stack.yaml and run "
              "'stackctl render'.\n# Secrets are injected by 'stackctl up' from the state directory; they are not in this file.\n"
              "# Every $ is written $$: Compose would otherwise fill in ${...} from its environment, which holds them.\n")
    return (header + yamltext.dump(escape_for_compose(document))).encode()


def escape_for_compose(value: Any) -> Any:
    """Every string as Compose must read it to pass it on unchanged: `$` doubled, so no value (a setting, an
    image, a command) can pull a variable of Compose's environment into the file. Templates and the catalog write
    what the container sees."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {escape_for_compose(k): escape_for_compose(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_for_compose(v) for v in value]
    return value


def render_bundle(stack: Stack, template_cache: Any = None) -> dict[str, bytes]:
    """The whole bundle as {relative path: bytes}. Pure: reads templates, writes nothing. Relocatable: the same
    stack gives the same bytes wherever it is rendered or written. `template_cache` (a Jinja bytecode cache) only
    saves compiling the templates again.
    """
    root = asset_root()
    env = template_env(root, bytecode_cache=template_cache)
    context = template_context(stack)
    files = link_runbooks_to_grafana(stack, keep_runbooks_of_rendered_alerts(drop_dashboards_without_datasources(
        render_service_files(stack, root, env, context), {svc.name for svc in stack.services.values()})))
    files[COMPOSE_FILE] = render_compose(stack, root, env, context, files)
    return dict(sorted(files.items()))
