"""stackctl's own structural checks of a rendered bundle find what they are for."""

from __future__ import annotations

from stackctl.core import yamltext
from stackctl.core.checks import check_collector, check_references
from stackctl.core.render import render_bundle
from tests.conftest import stack_from

COLLECTOR = "configs/collector/config.yaml"
PROMETHEUS = "configs/prometheus/prometheus.yml"


def edited(plan: dict, path: str, change) -> dict:
    doc = yamltext.load(plan[path])
    change(doc)
    return {**plan, path: yamltext.dump(doc).encode()}


def test_the_collector_check_finds_unused_and_undefined_components(tmp_path):
    stack = stack_from("", tmp_path)
    plan = render_bundle(stack)
    assert check_collector(stack, plan, {}) == []
    unused = edited(plan, COLLECTOR, lambda d: d["exporters"].update({"debug/extra": {}}))
    assert check_collector(stack, unused, {}) == [f"{COLLECTOR}: exporter 'debug/extra' is defined but no pipeline uses it"]
    undefined = edited(plan, COLLECTOR, lambda d: d["service"]["pipelines"]["traces"]["processors"].append("nope"))
    assert check_collector(stack, undefined, {}) == [
        f"{COLLECTOR}: pipeline traces uses processor 'nope', which is not defined"]
    no_exporters = edited(plan, COLLECTOR, lambda d: d["service"]["pipelines"]["logs"].update(exporters=[]))
    assert f"{COLLECTOR}: pipeline logs needs receivers and exporters" in check_collector(stack, no_exporters, {})


def test_the_reference_check_finds_alerts_sent_to_a_disabled_alertmanager(tmp_path):
    stack = stack_from("services:\n  alertmanager: {enabled: false}\n", tmp_path)
    plan = render_bundle(stack)
    assert check_references(stack, plan, {}) == []

    def alert_to_alertmanager(doc):
        doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}

    assert check_references(stack, edited(plan, PROMETHEUS, alert_to_alertmanager), {}) == [
        f"{PROMETHEUS}: alerts go to alertmanager:9093, which is not enabled"]
