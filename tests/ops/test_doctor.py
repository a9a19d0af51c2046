"""Doctor's verdicts from host facts given as functions (no Docker, no host)."""

from __future__ import annotations

from stackctl.core.errors import StackError
from stackctl.core.versions import Version
from stackctl.ops.doctor import FAIL, OK, WARN, HostFacts, run_checks
from stackctl.shells.compose import ComposeTool
from tests.support.stacks import METRICS, container, make_stack


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


def test_doctor_checks_ports_on_the_bind_address_of_the_stack():
    asked = []

    def port_free(host, port):
        asked.append((host, port))
        return True

    stack = make_stack({"preset": "metrics", "bind_address": "192.168.7.9"})
    run_checks(stack, facts(FakeEngine(), port_free=port_free))
    assert asked and {host for host, _ in asked} == {"192.168.7.9"}
    assert {port for _, port in asked} == {9090, 9093, 3000}


def test_doctor_checks_each_kernel_need_once_against_its_minimum():
    stack = make_stack({"preset": "logs"})
    checks = by_name(run_checks(stack, facts(FakeEngine(), read_file=lambda p: "262143\n" if "max_map" in p else "")))
    assert checks["vm.max_map_count"].status == FAIL and "262144" in checks["vm.max_map_count"].found
    metrics = by_name(run_checks(make_stack(METRICS), facts(FakeEngine())))
    assert "vm.max_map_count" not in metrics  # only Elasticsearch needs it
