"""Runbooks (runbooks/<AlertName>.md): exactly one per alert the rule packs can raise, each with the same sections,
concrete diagnosis (queries, dashboards, logs, commands) and valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
import yaml

from tests.provisioning.test_dashboards import metric_names
from tests.provisioning.test_rules import TEST_STACK, alert_rules, find_tool, render_stack

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_DIR = ROOT / "runbooks"
RUNBOOKS = {path.stem: path for path in sorted(RUNBOOK_DIR.glob("*.md")) if path.name != "README.md"}
SECTIONS = ["Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation"]
DASHBOARD_UIDS = {"stackctl-stack-overview", "stackctl-service-red", "stackctl-slo", "stackctl-host",
                  "stackctl-alerts", "stackctl-logs"}
# Alerts about request paths: their diagnosis must send you to traces too.
TRACED = {"HTTPErrorRatioHigh", "HTTPLatencyP95High", "HTTPTrafficDrop", "SLOErrorBudgetBurn",
          "SLOErrorBudgetExhausted", "OtelCollectorRefusingTelemetry"}
PROMQL_BLOCK = re.compile(r"```promql\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def alerts(tmp_path_factory) -> dict[str, list[dict]]:
    """Every alert rule of the test stack (all services, all packs, one SLO), by alert name."""
    found: dict[str, list[dict]] = {}
    for rule in alert_rules(render_stack(tmp_path_factory.mktemp("runbooks"), TEST_STACK)):
        found.setdefault(rule["alert"], []).append(rule)
    return found


def sections(text: str) -> dict[str, str]:
    """## heading -> its body."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


def test_every_alert_has_a_runbook_and_every_runbook_an_alert(alerts):
    assert set(alerts) == set(RUNBOOKS), (
        f"alerts without a runbook: {sorted(set(alerts) - set(RUNBOOKS))}; "
        f"runbooks without an alert: {sorted(set(RUNBOOKS) - set(alerts))}")


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_runbook_structure(name):
    text = RUNBOOKS[name].read_text()
    assert text.splitlines()[0] == f"# {name}", "the title is the alert name"
    found = sections(text)
    assert list(found) == SECTIONS, f"sections must be exactly {SECTIONS} in this order"
    for section, body in found.items():
        assert len(body) >= 100, f"section {section} is too thin to act on"
    diagnosis = found["Diagnosis"]
    assert PROMQL_BLOCK.search(diagnosis), "Diagnosis needs at least one ```promql query to run"
    assert DASHBOARD_UIDS & set(re.findall(r"stackctl-[a-z-]+", diagnosis)), "Diagnosis names no dashboard"
    assert re.search(r"stackctl (status|logs)", diagnosis), "Diagnosis does not say to run stackctl status/logs"
    assert re.search(r"\blogs?\b", diagnosis, re.I), "Diagnosis does not say which logs to read"
    if name in TRACED:
        assert re.search(r"trace|Jaeger", diagnosis), "Diagnosis does not say which traces to look at"


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_runbook_is_about_its_alert(name, alerts):
    """Concrete, not boilerplate: the runbook talks about the metrics its alert is computed from, states its
    severity, and shares no section word for word with another runbook."""
    if name not in alerts:
        pytest.skip("no such alert (reported by the coverage test)")
    text = RUNBOOKS[name].read_text()
    used = set().union(*(metric_names(rule["expr"]) for rule in alerts[name]))
    # (Heartbeat, vector(1), is computed from no metric.)
    assert not used or used & set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)), f"mentions none of {sorted(used)}"
    header = text.split("## ", 1)[0]
    for severity in {rule["labels"]["severity"] for rule in alerts[name]}:
        assert severity in header, f"the header does not state severity {severity}"


def test_no_copy_pasted_sections():
    seen: dict[str, str] = {}
    for name, path in RUNBOOKS.items():
        for section, body in sections(path.read_text()).items():
            key = re.sub(r"\s+", " ", body)
            assert key not in seen, f"{name} {section} is the same as {seen[key]}"
            seen[key] = f"{name} {section}"


def test_dashboards_and_commands_named_exist():
    from stackctl import cli

    commands = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
    groups = {g.name: {c.name or c.callback.__name__ for c in g.typer_instance.registered_commands}
              for g in cli.app.registered_groups}
    for path in [*RUNBOOKS.values(), RUNBOOK_DIR / "README.md"]:
        text = path.read_text()
        # Dashboard uids; container names (stackctl-<service>-1) and volumes (stackctl_<service>-data) are not.
        for uid in re.findall(r"\bstackctl-[a-z-]+", text):
            if not uid.endswith("-"):  # stackctl-prometheus-1, stackctl-<service>-1
                assert uid in DASHBOARD_UIDS, f"{path.name}: unknown dashboard {uid}"
        for command, sub in re.findall(r"`stackctl ([a-z]+)(?: ([a-z]+))?", text):
            assert command in commands or command in groups, f"{path.name}: no command stackctl {command}"
            if command in groups:
                assert sub in groups[command], f"{path.name}: no command stackctl {command} {sub}"


def test_without_a_base_url_runbook_links_open_their_grafana_dashboard(tmp_path):
    """The link opens in a browser on the machine running the stack: each runbook is a Grafana dashboard."""
    bundle = render_stack(tmp_path, {"services": {"grafana": {"port": 3001}},
                                     "rules": {"slos": TEST_STACK["rules"]["slos"]}})
    rules = alert_rules(bundle)
    assert rules
    dashboards = {json.loads(p.read_text())["uid"]: json.loads(p.read_text())
                  for p in (bundle / "grafana/dashboards/runbooks").glob("*.json")}
    for rule in rules:
        url = urlparse(rule["annotations"]["runbook_url"])
        assert (url.scheme, url.netloc) == ("http", "localhost:3001"), rule["annotations"]["runbook_url"]
        _, d, uid, slug = url.path.split("/")
        assert d == "d" and slug == rule["alert"].lower() and len(uid) <= 40
        panel = dashboards[uid]["panels"][0]
        assert (panel["type"], panel["options"]["mode"]) == ("text", "markdown")
        assert panel["options"]["content"] == RUNBOOKS[rule["alert"]].read_text()
    assert len(dashboards) == len({r["alert"] for r in rules})


def test_without_grafana_runbook_links_name_the_runbook_in_the_bundle(tmp_path):
    bundle = render_stack(tmp_path, {"services": {"grafana": {"enabled": False}}})
    for rule in alert_rules(bundle):
        url = rule["annotations"]["runbook_url"]
        assert url == f"runbooks/{rule['alert']}.md" and (bundle / url).is_file()


@pytest.mark.tools
def test_runbook_queries_are_valid_promql():
    from tests.support.promql import check_promql

    promtool = find_tool("promtool")
    queries = {f"{name} query {i}": query.strip()
               for name, path in RUNBOOKS.items()
               for i, query in enumerate(PROMQL_BLOCK.findall(path.read_text()), start=1)}
    assert len(queries) >= len(RUNBOOKS)
    assert check_promql(queries, promtool=promtool) == {}


def test_readme_lists_every_dashboard():
    text = (RUNBOOK_DIR / "README.md").read_text()
    assert all(f"`{uid}`" in text for uid in DASHBOARD_UIDS)
    assert not yaml.safe_load("[]")  # the module imports stay used


# --- The coverage of the upstream mixins (runbooks/README.md) ---------------------------------------------------

COVERAGE_HEADING = "## Coverage of the upstream mixins"
OWN_HEADING = "### Our alerts without an upstream equivalent"
MIXINS = ("prometheus-mixin", "alertmanager-mixin", "node-mixin", "Grafana mixin", "OpenTelemetry collector")


def mixin_coverage() -> tuple[dict[str, list[tuple[str, str, str]]], list[str]]:
    """The coverage section of runbooks/README.md: {mixin heading: [(upstream alert, ours, why not)]}, and the
    names listed as our own alerts without an upstream equivalent."""
    section = (RUNBOOK_DIR / "README.md").read_text().split(COVERAGE_HEADING, 1)[1]
    section = re.split(r"^## ", section, flags=re.M)[0]
    tables, own = section.split(OWN_HEADING, 1)
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for part in re.split(r"^### ", tables, flags=re.M)[1:]:
        heading, *lines = part.splitlines()
        table = [[cell.strip() for cell in line.strip()[1:-1].split("|")] for line in lines if line.startswith("|")]
        assert table[0] == ["upstream alert", "ours", "why not, or how ours differs"], heading
        rows[heading] = [tuple(cells) for cells in table[2:]]
    return rows, re.findall(r"`([A-Za-z0-9]+)`", own)


def test_mixin_coverage_names_only_alerts_we_render_and_every_one_we_render(alerts):
    """The table cannot rot: an alert named as ours must exist as rendered (full stack, every pack), and every
    rendered alert is either some upstream alert's counterpart or listed as our own."""
    rows, own = mixin_coverage()
    for mixin in MIXINS:
        assert any(heading.startswith(mixin) for heading in rows), f"no table for {mixin}"
    ours: set[str] = set()
    problems = []
    for heading, table in rows.items():
        assert table, f"{heading}: empty table"
        upstream = [row[0] for row in table]
        assert len(upstream) == len(set(upstream)), f"{heading}: an upstream alert listed twice"
        for name, cell, why in table:
            if cell == "—":
                if not why:
                    problems.append(f"{heading}: {name} has no alert of ours and no reason why")
                continue
            names = re.findall(r"`([^`]*)`", cell)
            if not names or re.sub(r"`[^`]*`|,", "", cell).strip():
                problems.append(f"{heading}: {name}: ours must be `AlertName`s or —, got {cell!r}")
            ours.update(names)
    problems += [f"{name} is named as ours but not rendered" for name in sorted((ours | set(own)) - set(alerts))]
    problems += [f"{name} is rendered but in no table row and not listed as our own"
                 for name in sorted(set(alerts) - ours - set(own))]
    problems += [f"{name} is listed as our own but covers an upstream alert" for name in sorted(ours & set(own))]
    assert len(own) == len(set(own)), "an alert is listed twice as our own"
    assert not problems, "\n".join(problems)
