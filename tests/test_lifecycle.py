"""Lifecycle core without Docker: readiness rules, the wait loop, URLs, compose argv, doctor verdicts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from stackctl import lifecycle
from stackctl.compose import Compose, ComposeTool
from stackctl.config import load_config, resolve
from stackctl.docker_engine import ContainerInfo, container_info
from stackctl.doctor import FAIL, OK, WARN, HostFacts, run_checks
from stackctl.errors import StackError
from stackctl.versions import Version


def make_stack(data: dict | None = None, tmp: Path = Path("/tmp/stackctl-test")):
    config = load_config(dict(data or {}), "stack.yaml", environ={})
    return resolve(config, tmp / "stack.yaml")


def container(service: str, state="running", health="healthy", exit_code=0, restarts=0, output=()):
    return ContainerInfo(id=f"id-{service}", name=f"p-{service}-1", service=service, state=state, health=health,
                         exit_code=exit_code, restart_count=restarts,
                         started_at=datetime.now(timezone.utc) - timedelta(seconds=42), image="img:1",
                         config_hash="h", health_output=tuple(output))


METRICS = {"preset": "metrics"}


def test_healthcheck_states_map_to_phases():
    stack = make_stack(METRICS)
    prom = stack.get("prometheus")
    assert lifecycle.evaluate(prom, None).phase == lifecycle.WAITING
    assert lifecycle.evaluate(prom, container("prometheus")).phase == lifecycle.READY
    assert lifecycle.evaluate(prom, container("prometheus", health="starting")).phase == lifecycle.WAITING
    unhealthy = lifecycle.evaluate(prom, container("prometheus", health="unhealthy", output=["", "connection refused"]))
    assert (unhealthy.phase, unhealthy.detail) == (lifecycle.FAILED, "connection refused")
    exited = lifecycle.evaluate(prom, container("prometheus", state="exited", exit_code=1))
    assert exited.phase == lifecycle.FAILED and "exit code 1" in exited.detail
    looping = lifecycle.evaluate(prom, container("prometheus", state="running", health="starting", restarts=3))
    assert looping.phase == lifecycle.FAILED and "crash loop" in looping.detail
    assert lifecycle.evaluate(prom, container("prometheus", state="restarting")).phase == lifecycle.FAILED


def test_oneshot_setup_job_is_ready_when_it_completed():
    stack = make_stack()
    setup = stack.get("elasticsearch_setup")
    assert lifecycle.evaluate(setup, container("elasticsearch-setup", state="exited", health="none")).phase == "ready"
    failed = lifecycle.evaluate(setup, container("elasticsearch-setup", state="exited", exit_code=2))
    assert failed.phase == "failed" and "code 2" in failed.detail
    assert lifecycle.evaluate(setup, container("elasticsearch-setup", health="none")).phase == "waiting"


def test_collector_without_shell_is_probed_from_the_host():
    stack = make_stack()
    collector = stack.get("collector")
    assert collector.spec.healthcheck is None
    assert lifecycle.probe_url(stack, collector) == "http://127.0.0.1:13133/"
    running = container("otel-collector", health="none")
    assert lifecycle.evaluate(collector, running, probe_ok=True).phase == "ready"
    waiting = lifecycle.evaluate(collector, running, probe_ok=False, probe_detail="refused")
    assert (waiting.phase, waiting.detail) == ("waiting", "refused")


def test_probe_url_follows_bind_address_and_port_override():
    stack = make_stack({"bind_address": "0.0.0.0", "services": {"collector": {"ports": {"health": 23133}}}})
    assert lifecycle.probe_url(stack, stack.get("collector")) == "http://127.0.0.1:23133/"


def test_wait_until_ready_polls_until_all_ready_and_reports_progress():
    stack = make_stack(METRICS)
    rounds = [
        [container("prometheus", health="starting"), container("alertmanager"), container("node-exporter")],
        [container("prometheus"), container("alertmanager"), container("node-exporter"), container("grafana")],
    ]
    seen = []
    clock = iter(range(100))
    ok, statuses = lifecycle.wait_until_ready(
        stack, lambda: rounds.pop(0) if len(rounds) > 1 else rounds[0], lambda url: (True, ""), timeout=60,
        on_update=lambda st, el: seen.append({s.service: s.phase for s in st}), clock=lambda: next(clock),
        sleep=lambda s: None)
    assert ok and all(s.phase == "ready" for s in statuses)
    assert seen[0]["prometheus"] == "waiting" and seen[0]["grafana"] == "waiting"  # grafana had no container yet
    assert len(seen) == 2


def test_wait_until_ready_stops_at_the_first_failure_and_at_the_timeout():
    stack = make_stack(METRICS)
    failing = [container("prometheus", state="exited", exit_code=1)]
    ok, statuses = lifecycle.wait_until_ready(stack, lambda: failing, lambda u: (True, ""), 60, lambda *a: None,
                                              only={"prometheus"}, sleep=lambda s: None)
    assert not ok and statuses[0].phase == "failed"
    clock = iter([0, 30, 61])
    ok, statuses = lifecycle.wait_until_ready(stack, lambda: [], lambda u: (True, ""), 60, lambda *a: None,
                                              clock=lambda: next(clock), sleep=lambda s: None)
    assert not ok and all(s.phase == "waiting" for s in statuses)


def test_urls_list_published_ports_with_overrides():
    stack = make_stack({"services": {"grafana": {"port": 3001}}})
    rows = {(r["service"], r["port"]): r["url"] for r in lifecycle.urls(stack)}
    assert rows[("grafana", "web")] == "http://localhost:3001"
    assert rows[("otel-collector", "otlp_grpc")] == "localhost:4317"
    assert rows[("otel-collector", "otlp_http")] == "http://localhost:4318"
    assert not any(service == "node-exporter" for service, _ in rows)  # not published


def test_container_info_from_inspect_data():
    attrs = {
        "Id": "0123456789abcdef", "Name": "/p-prometheus-1", "RestartCount": 1,
        "Config": {"Image": "prom/prometheus:v3.14.0", "Labels": {"com.docker.compose.service": "prometheus",
                                                                   "org.stackctl.config-hash": "abc"}},
        "State": {"Status": "running", "ExitCode": 0, "StartedAt": "2026-11-24T02:00:00.123456789Z",
                  "Health": {"Status": "unhealthy", "Log": [{"Output": "a\n"}, {"Output": "b\n"}]}},
    }
    info = container_info(attrs)
    assert (info.id, info.name, info.service, info.health, info.restart_count) == (
        "0123456789ab", "p-prometheus-1", "prometheus", "unhealthy", 1)
    assert info.health_output == ("a", "b") and info.config_hash == "abc"
    assert info.started_at == datetime(2026, 11, 24, 2, 0, 0, 123456, tzinfo=timezone.utc)


def test_compose_argv_is_built_without_running_anything(tmp_path):
    compose = Compose(tmp_path, "demo", tool=ComposeTool(("docker", "compose"), Version(2, 40, 3)))
    base = ["docker", "compose", "--project-name", "demo", "--project-directory", str(tmp_path),
            "--file", str(tmp_path / "compose.yaml")]
    assert compose.up_argv(["prometheus"]) == base + ["up", "--detach", "--remove-orphans", "--pull", "missing",
                                                      "prometheus"]
    assert compose.down_argv() == base + ["down", "--remove-orphans"]
    assert compose.down_argv(volumes=True)[-1] == "--volumes"
    assert compose.logs_argv(["grafana"], follow=True, tail=5) == base + [
        "logs", "--no-color", "--timestamps", "--follow", "--tail", "5", "grafana"]


class FakeEngine:
    def __init__(self, reachable=True, mem=32 * 1024**3, present=(), registry=False, security=()):
        self.reachable, self.mem, self.present, self.registry, self.security = reachable, mem, set(present), registry, security

    def version(self):
        if not self.reachable:
            raise StackError("cannot reach the Docker engine: refused")
        return {"Version": "28.0.0", "ApiVersion": "1.48"}

    def info(self):
        return {"MemTotal": self.mem, "DockerRootDir": "/var/lib/docker", "OperatingSystem": "test",
                "SecurityOptions": list(self.security)}

    def containers(self, project):
        return []

    def image_present(self, ref):
        return ref in self.present

    def registry_reachable(self, ref):
        return (True, "") if self.registry else (False, "lookup registry: no such host")


def facts(engine, **kwargs):
    defaults = dict(compose=lambda: ComposeTool(("docker", "compose"), Version(2, 40, 3)),
                    read_file=lambda path: "262144\n" if "max_map_count" in path else "",
                    machine=lambda: "x86_64", port_free=lambda host, port: True, port_owner=lambda port: "",
                    disk_free=lambda path: 100 * 1024**3)
    defaults.update(kwargs)
    return HostFacts(engine=engine, **defaults)


def by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_all_good_when_everything_is_there():
    stack = make_stack()
    images = {svc.image for svc in stack.services.values()}
    checks = by_name(run_checks(stack, facts(FakeEngine(present=images))))
    assert {c.status for c in checks.values()} == {OK}
    assert "Docker 28.0.0" in checks["docker engine"].found


def test_doctor_reports_each_problem_with_a_fix():
    stack = make_stack()
    checks = by_name(run_checks(stack, facts(
        FakeEngine(mem=2 * 1024**3, registry=False, security=["name=rootless"]),
        read_file=lambda path: "65530\n" if "max_map_count" in path else "",
        machine=lambda: "aarch64",
        port_free=lambda host, port: port != 3000, port_owner=lambda port: "nginx (pid 42)",
        disk_free=lambda path: 1024**3,
    )))
    assert checks["vm.max_map_count"].status == FAIL and "sysctl" in checks["vm.max_map_count"].fix
    assert checks["memory"].status == FAIL and "memory" in checks["memory"].fix
    assert checks["disk"].status == FAIL
    assert checks["port 3000"].status == FAIL and "nginx (pid 42)" in checks["port 3000"].found
    assert "services.grafana.port" in checks["port 3000"].fix
    image = checks["image prom/prometheus:v3.14.0"]
    assert image.status == FAIL and "no such host" in image.found and "registry_mirror" in image.fix
    assert checks["arm64 host"].status == WARN and "UseSVE=0" in checks["arm64 host"].fix
    assert checks["rootless Docker"].status == WARN
    assert all(c.fix for c in checks.values() if c.status != OK)


def test_doctor_without_engine_or_compose_says_so():
    def no_compose():
        raise StackError("Docker Compose v2 (2.24.0 or newer) is required (found only docker-compose 1.29.2). Install")

    checks = by_name(run_checks(make_stack(METRICS), facts(FakeEngine(reachable=False), compose=no_compose)))
    assert checks["docker engine"].status == FAIL and "start Docker" in checks["docker engine"].fix
    assert checks["docker compose"].status == FAIL and "1.29.2" in checks["docker compose"].found
    assert not any(name.startswith("image ") for name in checks)  # nothing to ask without an engine


def test_doctor_accepts_ports_held_by_this_stack():
    class Running(FakeEngine):
        def containers(self, project):
            return [container("grafana")]

    checks = by_name(run_checks(make_stack(METRICS), facts(Running(), port_free=lambda host, port: port != 3000)))
    assert checks["port 3000"].status == OK and "this stack" in checks["port 3000"].found


@pytest.mark.parametrize("seconds,text", [(None, "-"), (5, "5s"), (65, "1m05s"), (3700, "1h01m"), (90000, "1d1h")])
def test_human_duration(seconds, text):
    assert lifecycle.human_duration(seconds) == text


def test_failure_report_names_the_service_with_its_healthcheck_output_and_log():
    from stackctl.cli import _explain_failure

    class Logs:
        def logs(self, container_id, tail=30):
            return f"log of {container_id} (last {tail})\n"

    prom = make_stack(METRICS).get("prometheus")
    failing = lifecycle.evaluate(prom, container("prometheus", health="unhealthy",
                                                 output=["wget: can't connect", "wget: server returned 503"]))
    ready = lifecycle.evaluate(make_stack(METRICS).get("alertmanager"), container("alertmanager"))
    report = _explain_failure(Logs(), [failing, ready])
    assert "--- prometheus: running, unhealthy (wget: server returned 503)" in report
    assert "last healthcheck output of prometheus:\n  wget: can't connect\n  wget: server returned 503" in report
    assert "last 30 log lines of prometheus:\nlog of id-prometheus (last 30)" in report
    assert "alertmanager" not in report  # ready services are not reported
