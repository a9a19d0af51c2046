"""Dashboards of a stack that lacks a datasource: panels, variables and annotations that query it are left out,
panels inside collapsed rows are kept when theirs is provisioned, and a runbook page fills the screen."""

from __future__ import annotations

import json

from stackctl.core.render import DATASOURCES_FILE, drop_dashboards_without_datasources, runbook_dashboard

DATASOURCES = b"datasources:\n- {uid: prometheus, name: Prometheus}\n"


def prom(**extra):
    return {"datasource": {"type": "prometheus", "uid": "prometheus"}, **extra}


def jaeger(**extra):
    return {"datasource": {"type": "jaeger", "uid": "jaeger"}, **extra}


def pruned(dashboard: dict) -> dict | None:
    files = {DATASOURCES_FILE: DATASOURCES, "grafana/dashboards/x/d.json": json.dumps(dashboard).encode()}
    kept = drop_dashboards_without_datasources(files, {"prometheus", "grafana"})
    data = kept.get("grafana/dashboards/x/d.json")
    return None if data is None else json.loads(data)


def test_panels_variables_and_annotations_of_a_missing_datasource_go_the_rest_stays():
    dashboard = {
        "panels": [prom(id=1, type="timeseries"), jaeger(id=2, type="traces")],
        "templating": {"list": [prom(name="job"), jaeger(name="trace")]},
        "annotations": {"list": [prom(name="alerts"), jaeger(name="spans")]},
    }
    kept = pruned(dashboard)
    assert [p["id"] for p in kept["panels"]] == [1]
    assert [v["name"] for v in kept["templating"]["list"]] == ["job"]
    assert [a["name"] for a in kept["annotations"]["list"]] == ["alerts"]


def test_a_collapsed_row_keeps_the_panels_whose_datasource_exists():
    dashboard = {"panels": [{"type": "row", "collapsed": True, "panels": [prom(id=3), jaeger(id=4)]}, jaeger(id=5)]}
    kept = pruned(dashboard)
    assert kept is not None, "a row still holding a panel keeps the dashboard"
    assert [p["id"] for p in kept["panels"][0]["panels"]] == [3]


def test_a_dashboard_left_with_nothing_to_show_goes():
    assert pruned({"panels": [{"type": "row", "panels": [jaeger(id=4)]}, jaeger(id=5)]}) is None


def test_a_runbook_page_is_one_markdown_panel_filling_the_width():
    page = json.loads(runbook_dashboard("TargetDown", b"# TargetDown\n"))
    assert page["panels"] == [{"id": 1, "type": "text", "title": "", "gridPos": {"h": 40, "w": 24, "x": 0, "y": 0},
                               "options": {"mode": "markdown", "content": "# TargetDown\n"}}]
