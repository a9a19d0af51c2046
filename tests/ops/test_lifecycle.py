"""The wait loop and the failure report of `up`, driven without Docker."""

from __future__ import annotations

from stackctl.core import readiness
from stackctl.ops.context import Runtime
from stackctl.ops.lifecycle import explain_failure, wait_until_ready
from tests.support.stacks import METRICS, container, make_stack


def test_wait_until_ready_polls_until_all_ready_and_reports_progress():
    stack = make_stack(METRICS)
    rounds = [
        [container("prometheus", health="starting"), container("alertmanager"), container("node-exporter")],
        [container("prometheus"), container("alertmanager"), container("node-exporter"), container("grafana")],
    ]
    seen = []
    clock = iter(range(100))
    ok, statuses = wait_until_ready(
        stack, lambda: rounds.pop(0) if len(rounds) > 1 else rounds[0], lambda url: (True, ""), timeout=60,
        on_update=lambda st, el: seen.append({s.service: s.phase for s in st}), clock=lambda: next(clock),
        sleep=lambda s: None)
    assert ok and all(s.phase == "ready" for s in statuses)
    assert seen[0]["prometheus"] == "waiting" and seen[0]["grafana"] == "waiting"  # grafana had no container yet
    assert len(seen) == 2


def test_wait_until_ready_stops_at_the_first_failure_and_at_the_timeout():
    stack = make_stack(METRICS)
    failing = [container("prometheus", state="exited", exit_code=1)]
    ok, statuses = wait_until_ready(stack, lambda: failing, lambda u: (True, ""), 60, lambda *a: None,
                                              only={"prometheus"}, sleep=lambda s: None)
    assert not ok and statuses[0].phase == "failed"
    clock = iter([0, 30, 61])
    ok, statuses = wait_until_ready(stack, lambda: [], lambda u: (True, ""), 60, lambda *a: None,
                                              clock=lambda: next(clock), sleep=lambda s: None)
    assert not ok and all(s.phase == "waiting" for s in statuses)


def test_failure_report_names_the_service_with_its_healthcheck_output_and_log():
    class Logs:
        def logs(self, container_id, tail=30):
            return f"log of {container_id} (last {tail})\n"

    prom = make_stack(METRICS).get("prometheus")
    failing = readiness.evaluate(prom, container("prometheus", health="unhealthy",
                                                 output=["wget: can't connect", "wget: server returned 503"]))
    ready = readiness.evaluate(make_stack(METRICS).get("alertmanager"), container("alertmanager"))
    report = explain_failure(Runtime(engine=Logs()), [failing, ready])
    assert "--- prometheus: running, unhealthy (wget: server returned 503)" in report
    assert "last healthcheck output of prometheus:\n  wget: can't connect\n  wget: server returned 503" in report
    assert "last 30 log lines of prometheus:\nlog of id-prometheus (last 30)" in report
    assert "alertmanager" not in report  # ready services are not reported


def test_the_wait_stops_exactly_at_the_timeout_and_never_sleeps_past_it():
    stack = make_stack(METRICS)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    ok, statuses = wait_until_ready(stack, lambda: [], lambda url: (True, ""), timeout=10, interval=4,
                                    clock=lambda: now[0], sleep=sleep)
    assert not ok and all(s.phase == "waiting" for s in statuses)
    assert slept == [4, 4, 2], "sleeps cut to the time left, and none after the last look"
    assert now[0] == 10


def test_the_wait_returns_at_the_first_failure_without_sleeping():
    stack = make_stack(METRICS)
    slept: list[float] = []
    looks = []

    def inspect():
        looks.append(1)
        return [container("prometheus", state="exited", exit_code=1), container("alertmanager", health="starting")]

    ok, statuses = wait_until_ready(stack, inspect, lambda url: (True, ""), timeout=600, interval=1,
                                    clock=lambda: 0.0, sleep=slept.append)
    assert not ok and len(looks) == 1 and slept == []
    assert {s.service: s.phase for s in statuses}["prometheus"] == "failed"
