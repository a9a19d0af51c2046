"""The reference check of a rendered bundle finds a collector exporter sending to a service that is not enabled,
and a compose dependency on a service that is not in the stack."""

from __future__ import annotations

from stackctl.core.checks import check_references
from stackctl.core.render import render_bundle
from tests.conftest import stack_from
from tests.core.test_checks import COLLECTOR, edited

COMPOSE = "compose.yaml"


def test_a_collector_exporter_pointing_at_a_disabled_service_is_found(tmp_path):
    stack = stack_from("services:\n  jaeger: {enabled: false}\n", tmp_path)
    plan = render_bundle(stack)
    assert check_references(stack, plan, {}) == []
    to_jaeger = edited(plan, COLLECTOR, lambda d: d["exporters"].update({"otlp/jaeger": {"endpoint": "jaeger:4317"}}))
    assert check_references(stack, to_jaeger, {}) == [
        f"{COLLECTOR}: exporter otlp/jaeger sends to jaeger:4317, which is not enabled"]


def test_a_dependency_on_a_service_not_in_the_stack_is_found(tmp_path):
    stack = stack_from("", tmp_path)
    plan = render_bundle(stack)
    dangling = edited(plan, COMPOSE, lambda d: d["services"]["prometheus"].update(
        depends_on={"ghost": {"condition": "service_started"}}))
    assert check_references(stack, dangling, {}) == [f"{COMPOSE}: prometheus depends on ghost, which is not in the stack"]
