"""Readiness rules without Docker: container states and probe answers -> ready, waiting or failed."""

from __future__ import annotations

from stackctl.core import readiness
from stackctl.core.endpoints import probe_url
from tests.support.stacks import METRICS, container, make_stack


def test_healthcheck_states_map_to_phases():
    stack = make_stack(METRICS)
    prom = stack.get("prometheus")
    assert readiness.evaluate(prom, None).phase == readiness.WAITING
    assert readiness.evaluate(prom, container("prometheus")).phase == readiness.READY
    assert readiness.evaluate(prom, container("prometheus", health="starting")).phase == readiness.WAITING
    unhealthy = readiness.evaluate(prom, container("prometheus", health="unhealthy", output=["", "connection refused"]))
    assert (unhealthy.phase, unhealthy.detail) == (readiness.FAILED, "connection refused")
    exited = readiness.evaluate(prom, container("prometheus", state="exited", exit_code=1))
    assert exited.phase == readiness.FAILED and "exit code 1" in exited.detail
    looping = readiness.evaluate(prom, container("prometheus", state="running", health="starting", restarts=3))
    assert looping.phase == readiness.FAILED and "crash loop" in looping.detail
    assert readiness.evaluate(prom, container("prometheus", state="restarting")).phase == readiness.FAILED


def test_oneshot_setup_job_is_ready_when_it_completed():
    stack = make_stack()
    setup = stack.get("elasticsearch_setup")
    assert readiness.evaluate(setup, container("elasticsearch-setup", state="exited", health="none")).phase == "ready"
    failed = readiness.evaluate(setup, container("elasticsearch-setup", state="exited", exit_code=2))
    assert failed.phase == "failed" and "code 2" in failed.detail
    assert readiness.evaluate(setup, container("elasticsearch-setup", health="none")).phase == "waiting"


def test_collector_without_shell_is_probed_from_the_host():
    stack = make_stack()
    collector = stack.get("collector")
    assert collector.spec.healthcheck is None
    assert probe_url(stack, collector) == "http://127.0.0.1:13133/"
    running = container("otel-collector", health="none")
    assert readiness.evaluate(collector, running, probe_ok=True).phase == "ready"
    waiting = readiness.evaluate(collector, running, probe_ok=False, probe_detail="refused")
    assert (waiting.phase, waiting.detail) == ("waiting", "refused")


def test_probe_url_follows_bind_address_and_port_override():
    stack = make_stack({"bind_address": "0.0.0.0", "services": {"collector": {"ports": {"health": 23133}}}})
    assert probe_url(stack, stack.get("collector")) == "http://127.0.0.1:23133/"


def test_a_dead_container_has_failed_not_waiting():
    prom = make_stack(METRICS).get("prometheus")
    dead = readiness.evaluate(prom, container("prometheus", state="dead", health="none"))
    assert dead.phase == readiness.FAILED and "dead" in dead.detail
    setup = make_stack().get("elasticsearch_setup")
    assert readiness.evaluate(setup, container("elasticsearch-setup", state="dead")).phase == readiness.FAILED
    paused = readiness.evaluate(prom, container("prometheus", state="paused"))
    assert paused.phase == readiness.WAITING


def test_the_crash_loop_threshold():
    prom = make_stack(METRICS).get("prometheus")
    below = readiness.evaluate(prom, container("prometheus", restarts=readiness.CRASH_LOOP_RESTARTS - 1))
    at = readiness.evaluate(prom, container("prometheus", restarts=readiness.CRASH_LOOP_RESTARTS))
    assert below.phase == readiness.READY and at.phase == readiness.FAILED
