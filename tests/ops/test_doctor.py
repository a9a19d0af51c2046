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


def report(stack, **kwargs) -> list[tuple[str, str, str, str]]:
    return [(c.name, c.status, c.found, c.fix) for c in run_checks(stack, facts(**kwargs))]


def test_the_whole_report_of_a_metrics_stack_with_problems():
    engine = FakeEngine(present={"prom/prometheus:v3.14.0"}, mem=int(1.5 * 1024**3), security=["name=rootless"])
    rows = report(make_stack(METRICS), engine=engine, port_free=lambda host, port: port != 9093,
                  port_owner=lambda port: "nginx (pid 7)", disk_free=lambda path: None)
    unreachable = "not present and not pullable: lookup registry: no such host"
    fix = "set registry_mirror to a registry you can reach, or services.{}.image to an image you have (docker images)"
    assert rows == [
        ("docker engine", OK, "Docker 28.0.0 (API 1.48, test)", ""),
        ("docker compose", OK, "docker compose 2.40.3", ""),
        ("memory", WARN, "Docker has 1.5 GiB; the enabled services' limits add up to 1.9 GiB",
         "give Docker more memory, or disable services / lower services.<name>.memory and heap sizes in stack.yaml"),
        ("disk", WARN, "cannot read free space of /var/lib/docker from here",
         "make sure the Docker host has about 7.0 GiB free"),
        ("port 9090", OK, "free on 127.0.0.1 for prometheus (web)", ""),
        ("port 9093", FAIL, "busy on 127.0.0.1, held by nginx (pid 7)",
         "stop what holds it, or set services.alertmanager.port to a free port in stack.yaml"),
        ("port 3000", OK, "free on 127.0.0.1 for grafana (web)", ""),
        ("image prom/prometheus:v3.14.0", OK, "present locally", ""),
        ("image prom/alertmanager:v0.34.0", FAIL, unreachable, fix.format("alertmanager")),
        ("image grafana/grafana:12.4.10", FAIL, unreachable, fix.format("grafana")),
        ("image prom/node-exporter:v1.10.2", FAIL, unreachable, fix.format("node_exporter")),
        ("data directories", OK, "all state is in named Docker volumes, owned by each image's user "
                                 "(no bind-mounted data directories to check)", ""),
        ("rootless Docker", WARN, "the engine runs rootless", "memlock cannot be raised from inside; set them on the host"),
    ]


def test_the_report_of_a_logs_stack_on_arm64_inside_lxc():
    stack = make_stack({"preset": "logs", "services": {"elasticsearch": {"extra_java_opts": "-XX:UseSVE=0"}}})
    images = {svc.image for svc in stack.services.values()}
    rows = report(stack, engine=FakeEngine(present=images, mem=2 * 1024**3), machine=lambda: "ARM64",
                  read_file=lambda path: {"/proc/sys/vm/max_map_count": "262144\n",
                                          "/proc/1/environ": "HOME=/\0container=lxc\0"}.get(path),
                  disk_free=lambda path: 3 * 1024**3, port_free=lambda host, port: port != 5601)
    by = {name: (status, found, fix) for name, status, found, fix in rows}
    assert by["vm.max_map_count"] == (OK, "262144", "")
    assert by["memory"] == (FAIL, "Docker has 2.0 GiB; the enabled services' limits add up to 4.2 GiB",
                            "give Docker more memory, or disable services / lower services.<name>.memory and heap "
                            "sizes in stack.yaml")
    assert by["disk"] == (FAIL, "3.0 GiB free in /var/lib/docker; the stack needs about 12.0 GiB",
                          "free disk space (docker system prune) or lower services.prometheus.retention")
    assert by["port 5601"] == (FAIL, "busy on 127.0.0.1", "stop what holds it, or set services.kibana.port to a free "
                                                           "port in stack.yaml")
    assert by["port 5044"][2] == "" and by["port 5044"][1] == "free on 127.0.0.1 for logstash (beats)"
    assert by["arm64 host"] == (OK, "arm64; Elasticsearch runs with -XX:UseSVE=0", "")
    assert by["LXC"] == (WARN, "running inside LXC",
                         "raise memlock and vm.max_map_count on the LXC host; they cannot be set from inside")
    unreadable = dict((r[0], r[1:]) for r in report(stack, engine=FakeEngine(present=images),
                                                     read_file=lambda path: None))
    assert unreadable["vm.max_map_count"] == (WARN, "cannot read it here (Docker may run in a VM)",
                                              "make sure the Docker host has vm.max_map_count >= 262144")
    registry = dict((r[0], r[1:]) for r in report(make_stack(METRICS), engine=FakeEngine(registry=True)))
    assert registry["image grafana/grafana:12.4.10"] == (OK, "not present yet; the registry has it (pulled on up)", "")


def test_doctor_on_swarm_checks_the_manager_and_each_placing_label_instead_of_compose():
    from dataclasses import replace

    from stackctl.shells.docker_engine import SwarmState
    from tests.fakes.swarm import FakeSwarm

    stack = make_stack({"target": "swarm", "preset": "metrics", "swarm": {"placement": {"grafana": "ui=yes"},
                                                                          "publish": ["grafana"]}})
    engine = FakeSwarm()
    engine.node_list.append(replace(engine.node_list[0], id="n2", hostname="node-2", labels={"ui": "no"}))
    busy = []
    checks = by_name(run_checks(stack, facts(engine, compose=lambda: (_ for _ in ()).throw(StackError("no compose")),
                                             port_free=lambda host, port: busy.append(host) or True)))
    assert "docker compose" not in checks  # Swarm deploys with docker stack
    assert (checks["swarm"].status, checks["swarm"].found) == (OK, "manager of a swarm of 2 nodes (2 active and ready)")
    assert (checks["node label stackctl.data=true"].status, checks["node label stackctl.data=true"].found) == (
        OK, "on node-1; places prometheus, alertmanager")
    missing = checks["node label ui=yes"]
    assert (missing.status, missing.fix) == (FAIL, "docker node update --label-add ui=yes NODE")
    assert missing.found == "no active node carries it; it places grafana (their volumes live on that node)"
    assert checks["images on other nodes"].status == WARN
    assert busy == ["0.0.0.0"]  # Swarm publishes on every interface, whatever bind_address says
    engine.state = SwarmState("inactive", False)
    checks = by_name(run_checks(stack, facts(engine)))
    assert checks["swarm"].status == FAIL and "docker swarm init" in checks["swarm"].fix
    assert not any(name.startswith("node label") for name in checks)
