"""Provisioned Grafana dashboards (grafana/dashboards/<folder>/<name>.json): structure, datasources, variables and
PromQL.

Every PromQL expression (panel targets, Prometheus query variables, annotations) is parsed by the real promtool
(Debian's prometheus package, see tests/support/promql.py), and every metric it names must be one the stack
produces, a standard application metric name, or one of the recording rules the rule packs define.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.promql import check_promql, substitute_variables, template_variables

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.rglob("*.json"))

# Datasource uid -> type, as the datasource provisioning fixes them.
DATASOURCES = {
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "elasticsearch-logs": "elasticsearch",
    "jaeger": "jaeger",
}
GRAFANA_BUILTIN_DATASOURCE = {"type": "grafana", "uid": "-- Grafana --"}

REQUIRED_DASHBOARDS = {
    "stack/stack-overview.json": "stackctl-stack-overview",
    "services/service-red.json": "stackctl-service-red",
    "slo/slo.json": "stackctl-slo",
    "host/host.json": "stackctl-host",
    "alerts/alerts-overview.json": "stackctl-alerts",
}
OPTIONAL_DASHBOARDS = {"logs/logs.json": "stackctl-logs"}

# Recording rules the rule packs define (exact names).
RECORDING_RULES = {
    "job_code:http_requests:rate5m",
    "job_le:http_request_duration_seconds_bucket:rate5m",
    "job:http_requests:rate5m",
    "job:http_requests_errors:rate5m",
    "job:http_requests_error_ratio:rate5m",
    "job:http_request_duration_seconds:p50_5m",
    "job:http_request_duration_seconds:p95_5m",
    "job:http_request_duration_seconds:p99_5m",
    "slo:sli_error:ratio_rate5m",
    "slo:sli_error:ratio_rate30m",
    "slo:sli_error:ratio_rate1h",
    "slo:sli_error:ratio_rate2h",
    "slo:sli_error:ratio_rate6h",
    "slo:sli_error:ratio_rate1d",
    "slo:sli_error:ratio_rate3d",
    "slo:objective:ratio",
    "slo:error_budget_remaining:ratio",
    "instance:node_cpu_utilisation:rate5m",
    "instance:node_memory_utilisation:ratio",
    "instance:node_filesystem_avail:ratio",
}
# Metrics of the stack's own components, by prefix: node-exporter, Prometheus (incl. its per-target scrape_*
# series), Alertmanager, the OpenTelemetry collector, Grafana, Jaeger, and the usual process/Go runtime metrics.
ALLOWED_METRIC_PREFIXES = (
    "node_",
    "prometheus_",
    "scrape_",
    "alertmanager_",
    "otelcol_",
    "grafana_",
    "jaeger_",
    "process_",
    "go_",
)
# Exact names: Prometheus' synthetic series and the standard application metrics.
ALLOWED_METRICS = {
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count",
    "http_server_request_duration_seconds_bucket",
    "http_server_request_duration_seconds_sum",
    "http_server_request_duration_seconds_count",
    "http_server_duration_milliseconds_bucket",
    "http_server_duration_milliseconds_sum",
    "http_server_duration_milliseconds_count",
} | RECORDING_RULES

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "start", "end",
}  # fmt: skip

UID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")


# --------------------------------------------------------------------------------------------------------------
# Walking a dashboard


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def rel(path: Path) -> str:
    return path.relative_to(DASHBOARD_DIR).as_posix()


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_datasource(panel: dict[str, Any]) -> dict[str, Any] | None:
    ds = panel.get("datasource")
    return ds if isinstance(ds, dict) else None


def iter_targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]]:
    """(panel, target, effective datasource) for every query target."""
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            ds = target.get("datasource") if isinstance(target.get("datasource"), dict) else panel_datasource(panel)
            yield panel, target, ds


def panel_label(path: Path, panel: dict[str, Any]) -> str:
    return f"{rel(path)}: panel {panel.get('id')} {panel.get('title', '')!r}"


def variable_query_text(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, dict):
        query = query.get("query", "")
    return query or ""


def prometheus_variable_exprs(variable: dict[str, Any]) -> list[str]:
    """PromQL inside a Prometheus query variable: the series selector of label_values(), query_result()'s query."""
    query = variable_query_text(variable).strip()
    match = re.fullmatch(r"label_values\((?P<selector>.*),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)", query, re.S)
    if match:
        return [match.group("selector")]
    match = re.fullmatch(r"query_result\((?P<expr>.*)\)", query, re.S)
    if match:
        return [match.group("expr")]
    if re.fullmatch(r"(label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(.*\)|metrics\(.*\))", query, re.S):
        return []
    raise AssertionError(f"variable {variable.get('name')!r}: Prometheus variable query not understood: {query!r}")


def collect_promql(path: Path, dashboard: dict[str, Any]) -> dict[str, str]:
    """{name: expr} for every PromQL expression of a dashboard: targets, query variables, annotations."""
    exprs: dict[str, str] = {}
    for panel, target, ds in iter_targets(dashboard):
        if "expr" in target:
            assert ds and ds.get("type") == "prometheus", f"{panel_label(path, panel)}: expr on a non-Prometheus target"
            exprs[f"{panel_label(path, panel)} target {target.get('refId')}"] = target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and (variable.get("datasource") or {}).get("type") == "prometheus":
            for i, expr in enumerate(prometheus_variable_exprs(variable)):
                exprs[f"{rel(path)}: variable {variable['name']!r} #{i}"] = expr
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if (annotation.get("datasource") or {}).get("type") == "prometheus":
            expr = annotation.get("expr") or (annotation.get("target") or {}).get("expr")
            assert expr, f"{rel(path)}: Prometheus annotation {annotation.get('name')!r} without expr"
            exprs[f"{rel(path)}: annotation {annotation.get('name')!r}"] = expr
    return exprs


def iter_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from iter_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_strings(value)


def referenced_variables(dashboard: dict[str, Any]) -> set[str]:
    """Template variables referenced by panels (queries, titles, links), dashboard links and annotations.

    Grafana's built-in ones ($__rate_interval, ${__from}, ${__value.raw}, ...) are left out."""
    nodes = [dashboard.get("panels", []), dashboard.get("links", [])]
    nodes += [a for a in dashboard.get("annotations", {}).get("list", []) if not a.get("builtIn")]
    names: set[str] = set()
    for text in iter_strings(nodes):
        names |= {name for name in template_variables(text) if not name.startswith("__")}
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not functions, keywords or label names)."""
    text = substitute_variables(expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', text)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        rest = text[match.end():].lstrip()
        if rest.startswith("("):  # function or aggregation call
            continue
        if match.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def metric_allowed(name: str) -> bool:
    if ":" in name:
        return name in RECORDING_RULES
    return name in ALLOWED_METRICS or name.startswith(ALLOWED_METRIC_PREFIXES)


def datasource_refs(dashboard: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, datasource) for every datasource reference of panels, targets, variables and annotations."""
    for panel in iter_panels(dashboard):
        if "datasource" in panel:
            yield f"panel {panel.get('id')} {panel.get('title')!r}", panel["datasource"]
        for target in panel.get("targets", []):
            if "datasource" in target:
                where = f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}"
                yield where, target["datasource"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if "datasource" in variable:
            yield f"variable {variable.get('name')!r}", variable["datasource"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if not annotation.get("builtIn"):
            yield f"annotation {annotation.get('name')!r}", annotation.get("datasource")


def all_links(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, link) for dashboard links, panel links and field data links (defaults and overrides)."""
    for link in dashboard.get("links", []):
        yield "dashboard link", link
    for panel in iter_panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        for link in panel.get("links", []):
            yield where, link
        field_config = panel.get("fieldConfig", {})
        for link in field_config.get("defaults", {}).get("links", []):
            yield where, link
        for override in field_config.get("overrides", []):
            for prop in override.get("properties", []):
                if prop.get("id") == "links":
                    for link in prop.get("value", []):
                        yield where, link


def explore_panes(url: str) -> dict[str, Any]:
    """The panes of a Grafana Explore URL (/explore?schemaVersion=1&panes=...), with variables filled in."""
    parsed = urllib.parse.urlsplit(substitute_variables(url))
    params = urllib.parse.parse_qs(parsed.query)
    assert params.get("schemaVersion") == ["1"], url
    return json.loads(params["panes"][0])


# --------------------------------------------------------------------------------------------------------------
# The dashboards, file by file


def test_dashboards_exist() -> None:
    found = {rel(path) for path in DASHBOARD_FILES}
    missing = set(REQUIRED_DASHBOARDS) - found
    assert not missing, f"missing dashboards: {sorted(missing)}"
    for name, uid in {**REQUIRED_DASHBOARDS, **OPTIONAL_DASHBOARDS}.items():
        if name in found:
            assert load(DASHBOARD_DIR / name)["uid"] == uid, name


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_dashboard_structure(path: Path) -> None:
    text = path.read_text()
    dashboard = json.loads(text)
    assert text == json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n", "keep the JSON formatted (indent 2)"
    assert len(path.relative_to(DASHBOARD_DIR).parts) == 2, "one folder level: grafana/dashboards/<folder>/<file>.json"

    uid = dashboard.get("uid")
    assert isinstance(uid, str) and UID_RE.match(uid) and len(uid) <= 40, f"bad uid {uid!r}"
    assert isinstance(dashboard.get("title"), str) and dashboard["title"].strip()
    assert "stackctl" in dashboard.get("tags", [])
    assert dashboard.get("id", "missing") is None, '"id" must be null for provisioning'
    assert dashboard.get("editable") is True
    assert isinstance(dashboard.get("schemaVersion"), int) and dashboard["schemaVersion"] >= 39
    assert dashboard.get("time") == {"from": "now-1h", "to": "now"}
    assert dashboard.get("refresh") == "30s"

    panels = list(iter_panels(dashboard))
    assert panels, "no panels"
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in panels:
        assert panel.get("type"), f"panel {panel.get('id')} has no type"
        assert panel.get("title") is not None, f"panel {panel.get('id')} has no title"
        grid = panel.get("gridPos")
        assert isinstance(grid, dict), f"panel {panel['id']} has no gridPos"
        assert all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")), (panel["id"], grid)
        assert 1 <= grid["w"] <= 24 and grid["h"] >= 1 and grid["x"] >= 0 and grid["y"] >= 0, (panel["id"], grid)
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} sticks out of the 24-column grid"
        if panel["type"] == "row":
            assert grid["w"] == 24 and grid["h"] == 1, f"row {panel['id']} must span the grid"
        if panel["type"] not in ("row", "text", "alertlist", "dashlist", "news"):
            assert panel.get("targets"), f"panel {panel['id']} {panel['title']!r} has no query"
        refs = [t.get("refId") for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)) and all(refs), f"panel {panel['id']}: refIds {refs}"

    # Top-level panels must not overlap (Grafana would push them around).
    top = [(p["id"], p["gridPos"]) for p in dashboard["panels"]]
    for i, (id_a, a) in enumerate(top):
        for id_b, b in top[i + 1 :]:
            overlap_x = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            overlap_y = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
            overlap = overlap_x and overlap_y
            assert not overlap, f"panels {id_a} and {id_b} overlap: {a} {b}"


def test_uids_and_titles_unique() -> None:
    dashboards = [load(path) for path in DASHBOARD_FILES]
    uids = [d["uid"] for d in dashboards]
    titles = [d["title"] for d in dashboards]
    assert len(uids) == len(set(uids)), uids
    assert len(titles) == len(set(titles)), titles


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_datasources_are_provisioned_ones(path: Path) -> None:
    dashboard = load(path)
    for where, ds in datasource_refs(dashboard):
        assert isinstance(ds, dict), f"{where}: datasource must be a {{type, uid}} object, got {ds!r}"
        assert ds.get("uid") in DATASOURCES, f"{where}: unknown datasource uid {ds.get('uid')!r}"
        expected = DATASOURCES[ds["uid"]]
        assert ds.get("type") == expected, f"{where}: datasource {ds['uid']!r} is of type {expected!r}"
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            assert annotation.get("datasource") == GRAFANA_BUILTIN_DATASOURCE


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_template_variables_defined_and_used(path: Path) -> None:
    dashboard = load(path)
    variables = dashboard.get("templating", {}).get("list", [])
    defined = [v["name"] for v in variables]
    assert len(defined) == len(set(defined)), defined
    referenced = referenced_variables(dashboard)
    undefined = referenced - set(defined)
    assert not undefined, f"variables referenced but not defined: {sorted(undefined)}"
    unused = set(defined) - referenced
    assert not unused, f"variables defined but never used: {sorted(unused)}"
    for variable in variables:
        # A variable may only use the ones defined before it.
        earlier = set(defined[: defined.index(variable["name"])])
        uses = {n for n in template_variables(variable_query_text(variable)) if not n.startswith("__")}
        assert uses <= earlier, f"variable {variable['name']!r} uses {sorted(uses - earlier)} not defined before it"
        if variable.get("type") == "query" and (variable.get("datasource") or {}).get("type") == "elasticsearch":
            query = json.loads(variable_query_text(variable))
            assert query.get("find") in ("terms", "fields") and query.get("field"), query


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_non_prometheus_targets(path: Path) -> None:
    dashboard = load(path)
    for panel, target, ds in iter_targets(dashboard):
        where = f"{panel_label(path, panel)} target {target.get('refId')}"
        assert ds is not None, f"{where}: no datasource"
        if ds["type"] == "elasticsearch":
            assert target.get("timeField") == "@timestamp", where
            assert isinstance(target.get("query"), str) and target["query"].strip(), where
            assert target.get("metrics"), where
            kinds = {m["type"] for m in target["metrics"]}
            if kinds & {"logs", "raw_data"}:
                assert target.get("bucketAggs") == [], f"{where}: logs/raw_data queries take no bucket aggregation"
            else:
                histograms = [b for b in target["bucketAggs"] if b["type"] == "date_histogram"]
                assert any(b.get("field") == "@timestamp" for b in histograms), where
        elif ds["type"] == "jaeger":
            assert target.get("queryType") == "search" and target.get("service"), where


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_links(path: Path) -> None:
    dashboard = load(path)
    for where, link in all_links(dashboard):
        url = link.get("url", "")
        if link.get("type") == "dashboards":
            assert "stackctl" in link.get("tags", []), where
            continue
        assert url, f"{where}: link {link.get('title')!r} has no url"
        if url.startswith("/explore"):
            panes = explore_panes(url)
            assert panes, f"{where}: no Explore pane in {url}"
            for pane in panes.values():
                assert pane["datasource"] in DATASOURCES, f"{where}: Explore pane on {pane['datasource']!r}"
                for query in pane["queries"]:
                    assert query["datasource"] == {"type": DATASOURCES[pane["datasource"]], "uid": pane["datasource"]}
                assert set(pane["range"]) == {"from", "to"}
        elif url.startswith("/d/"):
            target_uid = url[3:].split("/")[0].split("?")[0]
            assert target_uid in {load(p)["uid"] for p in DASHBOARD_FILES}, f"{where}: link to unknown dashboard {url}"


# --------------------------------------------------------------------------------------------------------------
# PromQL


def all_promql() -> dict[str, str]:
    exprs: dict[str, str] = {}
    for path in DASHBOARD_FILES:
        exprs.update(collect_promql(path, load(path)))
    return exprs


@pytest.mark.tools
def test_promql_parses_with_promtool() -> None:
    exprs = all_promql()
    assert len(exprs) > 50, "suspiciously few PromQL expressions found"
    errors = check_promql(exprs)
    assert not errors, "PromQL rejected by promtool:\n" + "\n".join(f"{name}: {err}" for name, err in errors.items())


@pytest.mark.tools
def test_promql_checker_reports_errors() -> None:
    """The checker is not vacuous: broken or too-new expressions are reported, by name, and good ones are not."""
    errors = check_promql(
        {
            "good": 'sum by (job) (rate(http_requests_total{job="$job"}[$__rate_interval]))',
            "unclosed": "rate(up[5m]",
            "type error": "rate(up)",
            "newer than promtool 2.42": "limitk(2, up)",
            "templated regex": 'up{job=~"${job:regex}"}',
        }
    )
    assert set(errors) == {"unclosed", "type error", "newer than promtool 2.42"}, errors
    assert "unclosed left parenthesis" in errors["unclosed"]


@pytest.mark.tools
def test_broken_dashboard_is_reported_by_panel() -> None:
    """A dashboard with one broken panel query fails the check, which names that panel."""
    path = DASHBOARD_DIR / "services" / "service-red.json"
    dashboard = copy.deepcopy(load(path))
    panel = next(p for p in iter_panels(dashboard) if p.get("targets") and "expr" in p["targets"][0])
    panel["targets"][0]["expr"] = "sum(rate(http_requests_total[5m])"
    errors = check_promql(collect_promql(path, dashboard))
    assert list(errors) == [f"{panel_label(path, panel)} target {panel['targets'][0]['refId']}"], errors


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=rel)
def test_metrics_are_known(path: Path) -> None:
    unknown = {}
    for name, expr in collect_promql(path, load(path)).items():
        bad = sorted(m for m in metric_names(expr) if not metric_allowed(m))
        if bad:
            unknown[name] = bad
    assert not unknown, f"metrics the stack does not produce: {unknown}"


def test_metric_extraction() -> None:
    assert metric_names(
        'sum by (job, le) (rate(http_request_duration_seconds_bucket{job="$job",code=~"5.."}[$__rate_interval])) '
        "/ on (job) group_left () max without (instance) (job:http_requests:rate5m offset 5m) > bool 0"
    ) == {"http_request_duration_seconds_bucket", "job:http_requests:rate5m"}
    expr = 'count(up == 0) or vector(0) and label_replace(ALERTS, "a", "$1", "b", "(.*)")'
    assert metric_names(expr) == {"up", "ALERTS"}
    assert not metric_allowed("my_app_metric") and not metric_allowed("job:made_up:rate5m")
    assert metric_allowed("node_load1") and metric_allowed("otelcol_receiver_accepted_spans")


# --------------------------------------------------------------------------------------------------------------
# What each dashboard must show


def exprs_of(name: str) -> str:
    return "\n".join(collect_promql(DASHBOARD_DIR / name, load(DASHBOARD_DIR / name)).values())


def variable(name: str, var: str) -> dict[str, Any]:
    variables = {v["name"]: v for v in load(DASHBOARD_DIR / name)["templating"]["list"]}
    assert var in variables, f"{name}: no variable {var!r}"
    return variables[var]


def test_stack_overview_content() -> None:
    exprs = exprs_of("stack/stack-overview.json")
    for needle in (
        "by (job) (up)",
        "rate(prometheus_tsdb_head_samples_appended_total[5m])",
        'otelcol_receiver_accepted_spans{job="otel-collector"}',
        'otelcol_receiver_refused_spans{job="otel-collector"}',
        'otelcol_receiver_accepted_metric_points{job="otel-collector"}',
        'otelcol_receiver_accepted_log_records{job="otel-collector"}',
        'otelcol_exporter_sent_spans{job="otel-collector"}',
        'otelcol_exporter_send_failed_spans{job="otel-collector"}',
        "alertmanager_notifications_total",
        'ALERTS{alertstate="firing"}',
    ):
        assert needle in exprs, needle
    types = {p["type"] for p in iter_panels(load(DASHBOARD_DIR / "stack/stack-overview.json"))}
    assert {"stat", "state-timeline", "table"} <= types


def test_service_red_content() -> None:
    name = "services/service-red.json"
    dashboard = load(DASHBOARD_DIR / name)
    service = variable(name, "service")
    # The service list comes from the recording rules, so it holds the jobs of either naming convention.
    assert re.sub(r"\s", "", variable_query_text(service)) == "label_values(job:http_requests:rate5m,job)"
    service_name = variable(name, "service_name")
    pattern = re.compile(service_name["regex"].strip("/"))
    assert [pattern.fullmatch(job).group(1) for job in ("checkout", "shop/checkout")] == ["checkout", "checkout"]
    exprs = exprs_of(name)
    for rule in (
        "job:http_requests:rate5m",
        "job:http_requests_error_ratio:rate5m",
        "job:http_request_duration_seconds:p50_5m",
        "job:http_request_duration_seconds:p95_5m",
        "job:http_request_duration_seconds:p99_5m",
        "job_code:http_requests:rate5m",
        "job_le:http_request_duration_seconds_bucket:rate5m",
    ):
        assert f'{rule}{{job="$service"}}' in exprs, rule
    # Panels on raw series read every convention: prometheus_client, OpenTelemetry stable and pre-1.0 (the
    # exemplar query only the conventions in seconds: its buckets are shown as they are).
    conventions = {"http_requests_total": "prometheus_client", "http_request_duration_seconds": "prometheus_client",
                   "http_server_request_duration_seconds": "otel", "http_server_duration_milliseconds": "otel-1.0"}
    for panel, target, _ in iter_targets(dashboard):
        raw = {m for m in metric_names(target.get("expr", "")) if m.startswith("http_")}
        if raw:
            read = {c for prefix, c in conventions.items() for m in raw if m.startswith(prefix)}
            expected = {"prometheus_client", "otel"} if target.get("exemplar") else set(conventions.values())
            assert read == expected, f"{panel_label(DASHBOARD_DIR / name, panel)} reads {sorted(read)}"
    # Exemplars (trace ids on the raw buckets) are asked for on the duration panel.
    assert any(target.get("exemplar") and "http_server_request_duration_seconds_bucket" in target["expr"]
               for _, target, _ in iter_targets(dashboard))
    # Links to the service's traces (Jaeger, service = service.name) and logs (service.name:"...").
    panes = [
        pane
        for _, link in all_links(dashboard)
        if link.get("url", "").startswith("/explore")
        for pane in explore_panes(link["url"].replace("${service_name:percentencode}", "checkout")).values()
    ]
    assert any(p["datasource"] == "jaeger" and p["queries"][0].get("service") == "checkout" for p in panes)
    assert any(
        p["datasource"] == "elasticsearch-logs" and p["queries"][0]["query"] == 'service.name:"checkout"' for p in panes
    )
    assert any(link.get("type") == "link" and "jaeger" in link["url"] for link in dashboard["links"])
    assert any(link.get("type") == "link" and "elasticsearch-logs" in link["url"] for link in dashboard["links"])


def test_slo_content() -> None:
    name = "slo/slo.json"
    assert re.sub(r"\s", "", variable_query_text(variable(name, "slo"))) == "label_values(slo:objective:ratio,slo)"
    exprs = exprs_of(name)
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f'slo:sli_error:ratio_rate{window}{{slo="$slo"}}' in exprs, window
    assert 'slo:error_budget_remaining:ratio{slo="$slo"}' in exprs
    assert 'slo:objective:ratio{slo="$slo"}' in exprs


def test_host_content() -> None:
    name = "host/host.json"
    query = variable_query_text(variable(name, "instance"))
    assert re.sub(r"\s", "", query) == "label_values(node_uname_info,instance)"
    exprs = exprs_of(name)
    for needle in (
        "node_cpu_seconds_total",
        "instance:node_cpu_utilisation:rate5m",
        "instance:node_memory_utilisation:ratio",
        "instance:node_filesystem_avail:ratio",
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_load1",
    ):
        assert needle in exprs, needle
    # Every panel query is about the selected host.
    for panel, target, _ in iter_targets(load(DASHBOARD_DIR / name)):
        assert 'instance="$instance"' in target["expr"], panel_label(DASHBOARD_DIR / name, panel)


def test_alerts_content() -> None:
    exprs = exprs_of("alerts/alerts-overview.json")
    for needle in (
        "count by (severity) (ALERTS{alertstate=\"firing\"",
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
        "prometheus_rule_evaluation_failures_total",
    ):
        assert needle in exprs, needle
