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


def test_every_status_field_for_each_kind_of_container():
    from datetime import datetime, timedelta, timezone

    from stackctl.core.readiness import ContainerInfo, ServiceStatus

    stack = make_stack()
    started = datetime.now(timezone.utc) - timedelta(seconds=100)

    def info(service, state="running", health="healthy", exit_code=0, restarts=0, output=("a", "b")):
        return ContainerInfo("cid", f"p-{service}-1", service, state, health, exit_code, restarts, started,
                             "img:1", "h", output)

    def check(key, container, expected, **probe):
        status = readiness.evaluate(stack.get(key), container, **probe)
        uptime = status.uptime_seconds
        assert status == ServiceStatus(**{**expected, "uptime_seconds": uptime}), status
        return uptime

    base = dict(service="prometheus", state="running", container_id="cid", image="img:1", health_output=("a", "b"))
    assert 99 < check("prometheus", info("prometheus"), {**base, "phase": "ready", "health": "healthy"}) < 200
    check("prometheus", info("prometheus", health="unhealthy"),
          {**base, "phase": "failed", "health": "unhealthy", "detail": "b"})
    check("prometheus", info("prometheus", health="unhealthy", output=()),
          {**base, "health_output": (), "phase": "failed", "health": "unhealthy", "detail": ""})
    check("prometheus", info("prometheus", health=""), {**base, "phase": "waiting", "health": "starting"})
    assert check("prometheus", info("prometheus", state="exited", health="none", exit_code=3),
                 {**base, "state": "exited", "phase": "failed", "health": "none",
                  "detail": "container exited (exit code 3)"}) is None
    check("prometheus", info("prometheus", state="restarting", health="starting", restarts=1),
          {**base, "state": "restarting", "phase": "failed", "health": "starting",
           "detail": "crash loop: restarted 1 times"})
    check("prometheus", info("prometheus", state="created", health="none"),
          {**base, "state": "created", "phase": "waiting", "health": "none", "detail": "container created"})
    assert readiness.evaluate(stack.get("prometheus"), None) == ServiceStatus(
        "prometheus", "waiting", "missing", "none", "no container yet")
    setup = dict(base, service="elasticsearch-setup")
    check("elasticsearch_setup", info("elasticsearch-setup", state="exited", health="none"),
          {**setup, "state": "exited", "phase": "ready", "health": "completed"})
    check("elasticsearch_setup", info("elasticsearch-setup", state="exited", health="none", exit_code=2),
          {**setup, "state": "exited", "phase": "failed", "health": "failed", "detail": "exited with code 2"})
    check("elasticsearch_setup", info("elasticsearch-setup", state="dead", health="none"),
          {**setup, "state": "dead", "phase": "failed", "health": "failed", "detail": "container is dead"})
    check("elasticsearch_setup", info("elasticsearch-setup", health="none"),
          {**setup, "phase": "waiting", "health": "running"})
    collector = dict(base, service="otel-collector")
    check("collector", info("otel-collector", health="none"), {**collector, "phase": "ready", "health": "probe ok"},
          probe_ok=True)
    check("collector", info("otel-collector", health="none"),
          {**collector, "phase": "waiting", "health": "probe failing", "detail": "refused"},
          probe_ok=False, probe_detail="refused")


def test_current_status_probes_only_running_containers_that_need_it():
    stack = make_stack({"preset": "traces"})
    probed = []

    def probe(url):
        probed.append(url)
        return True, ""

    containers = [container("otel-collector", health="none"), container("jaeger"), container("grafana", state="exited")]
    statuses = readiness.current_status(stack, containers, probe)
    assert probed == ["http://127.0.0.1:13133/"]
    assert [s.service for s in statuses] == [svc.name for svc in stack.services.values()]
    assert [s.service for s in readiness.current_status(stack, containers, probe, only={"jaeger"})] == ["jaeger"]
    readiness.current_status(stack, [container("otel-collector", state="exited", health="none")], probe)
    assert len(probed) == 1, "an exited collector is not probed"
