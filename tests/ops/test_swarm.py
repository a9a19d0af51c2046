"""The Swarm lifecycle with the engine and `docker stack` replaced at their seam (tests/fakes/swarm.py): refusals
before anything is written, secrets handed over as Swarm objects (never as values in the deploy's environment),
only changed services updated, old objects removed, `down` with and without volumes, reaching services through
published ports or a forwarder, rotation on Swarm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stackctl.core.errors import StackError
from stackctl.core.render import COMPOSE_FILE
from stackctl.core.swarm import NAMESPACE_LABEL, SECRET_LABEL, NodeInfo, secret_object_name
from stackctl.ops import lifecycle, swarm as swarm_ops
from stackctl.ops.context import Runtime
from stackctl.ops.reach import forwarder_script, reach
from stackctl.shells.docker_engine import SwarmState
from stackctl.shells.stackfile import load_stack
from tests.fakes.swarm import FakeSwarm, FakeSwarmStack, with_task

METRICS = """project: shop
preset: metrics
target: swarm
services:
  grafana: {enabled: false}
alerting:
  receivers:
    - name: ops
      type: slack
      channel: "#ops"
      api_url: {from_file: slack-url}
"""
SLACK = "https://hooks.slack.example/services/T000/B000/first-value"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "slack-url").write_text(SLACK + "\n")
    (tmp_path / "stack.yaml").write_text(METRICS)
    return tmp_path


class World:
    def __init__(self, directory: Path, sets: list[str] | None = None):
        self.directory = directory
        self.swarm = FakeSwarm()
        self.docker_stack = FakeSwarmStack(self.swarm)
        self.events: list[str] = []
        self.sets = sets or []

    @property
    def stack(self):
        return load_stack(self.directory / "stack.yaml", environ={}, sets=self.sets)

    @property
    def bundle(self) -> Path:
        return self.directory / "build"

    def runtime(self, **environ) -> Runtime:
        return Runtime(engine=self.swarm, make_swarm=self.docker_stack.for_bundle, poll_interval=0,
                       sleep=lambda seconds: None, environ=dict(environ), compose_tool=lambda: None)

    def up(self, **kwargs):
        return lifecycle.bring_up(self.stack, self.bundle, self.runtime(), timeout=5, on_event=self.events.append,
                                  **kwargs)


@pytest.fixture
def world(project: Path, monkeypatch) -> World:
    # The real validators are the tools tier's business: here `docker stack config` passes without running.
    from stackctl.ops import bundle

    monkeypatch.setattr(bundle, "tool_checks", lambda stack, staged, tool: [])
    return World(project)


def test_up_refuses_an_engine_outside_a_swarm_with_the_command_that_makes_it_one_and_writes_nothing(world):
    world.swarm.state = SwarmState("inactive", False)
    with pytest.raises(StackError) as raised:
        world.up()
    assert raised.value.message.startswith("target: swarm deploys to a Docker Swarm, and this Docker engine is not "
                                           "part of one (swarm state: inactive)")
    assert "docker swarm init --advertise-addr" in raised.value.details
    assert not world.bundle.exists() and not (world.directory / ".stackctl").exists()
    world.swarm.state = SwarmState("active", False)
    with pytest.raises(StackError, match="is a swarm worker") as raised:
        world.up()
    assert "docker node promote" in raised.value.details and world.docker_stack.calls == []


def test_up_refuses_when_no_node_carries_the_data_label_naming_the_fix_and_writes_nothing(world):
    world.swarm.node_list = [NodeInfo("n1", "node-1", "manager", "active", "ready", "10.0.0.1", {})]
    with pytest.raises(StackError) as raised:
        world.up()
    assert raised.value.message == ("no node carries stackctl.data=true, which places prometheus, alertmanager; "
                                    "nothing was deployed")
    assert "docker node update --label-add stackctl.data=true NODE" in raised.value.details
    assert "Nodes: node-1." in raised.value.details
    assert not world.bundle.exists() and world.docker_stack.calls == []


def test_up_names_no_service_on_swarm(world):
    with pytest.raises(StackError, match="deploys the whole stack"):
        world.up(services=["prometheus"])


def test_up_makes_each_secret_a_swarm_secret_and_deploys_with_its_name_only(world):
    result = world.up()
    assert not result.noop and [s.phase for s in result.statuses] == ["ready"] * 3
    name = secret_object_name("shop", "alertmanager_ops_api_url", SLACK)
    assert world.swarm.secrets[name] == (SLACK, {NAMESPACE_LABEL: "shop", SECRET_LABEL: "alertmanager_ops_api_url"})
    (deploy,) = world.docker_stack.calls
    assert deploy.argv == ["docker", "stack", "deploy", "--compose-file", str(world.bundle / COMPOSE_FILE),
                           "--prune", "--resolve-image", "changed", "shop"]
    assert deploy.env == {"STACK_SWARM_SECRET_ALERTMANAGER_OPS_API_URL": name}
    assert SLACK not in str(deploy.env) and SLACK.encode() not in (world.bundle / COMPOSE_FILE).read_bytes()
    assert sorted(world.swarm.updated) == ["alertmanager", "node-exporter", "prometheus"]
    assert world.events[0] == "deploying 3 services to the swarm (docker stack deploy)"


def test_up_again_without_a_change_deploys_nothing(world):
    world.up()
    again = world.up()
    assert again.noop and len(world.docker_stack.calls) == 1


def test_a_changed_secret_is_a_new_object_only_its_service_is_updated_and_the_old_object_goes(world):
    world.up()
    old = secret_object_name("shop", "alertmanager_ops_api_url", SLACK)
    (world.directory / "slack-url").write_text(SLACK.replace("first", "second"))
    world.swarm.updated.clear()
    result = world.up()
    new = secret_object_name("shop", "alertmanager_ops_api_url", SLACK.replace("first", "second"))
    assert world.swarm.updated == ["alertmanager"]
    assert new in world.swarm.secrets and old not in world.swarm.secrets
    assert old in result.removed and f"remove secret {old}" in world.swarm.log


def test_a_config_change_updates_only_the_service_mounting_it_and_removes_the_old_config(world):
    world.up()
    configs_before = set(world.swarm.configs)
    world.sets = ["services.prometheus.evaluation_interval=30s"]
    world.swarm.updated.clear()
    result = world.up()
    assert world.swarm.updated == ["prometheus"]
    (gone,) = configs_before - set(world.swarm.configs)
    assert gone.startswith("shop_prometheus.yml-") and result.removed == [gone]


def test_up_waits_for_the_tasks_and_fails_naming_the_service_with_its_service_log(world, monkeypatch):
    original = world.swarm.deploy

    def deploy_then_crash(project, bundle, env):
        original(project, bundle, env)
        info = world.swarm.services["prometheus"]
        failed = with_task(info, state="failed", desired="shutdown", error="task: non-zero exit (1)")
        world.swarm.services["prometheus"] = replace(failed, tasks=failed.tasks * 3)

    monkeypatch.setattr(world.swarm, "deploy", deploy_then_crash)
    with pytest.raises(StackError) as raised:
        world.up()
    assert raised.value.message == "not healthy: prometheus" and raised.value.exit_code == 1
    assert "crash loop: 3 tasks ended since the last deploy; last: task: non-zero exit (1)" in raised.value.details
    assert "last 30 log lines of prometheus:\nlog of shop_prometheus (last 30)" in raised.value.details


def test_down_removes_the_stack_and_keeps_volumes_unless_asked_then_only_this_nodes(world):
    world.up()
    world.swarm.volume_names = ["shop_prometheus-data", "shop_alertmanager-data", "other_data"]
    assert lifecycle.bring_down(world.stack, world.bundle, world.runtime()) == swarm_ops.Removed((), ())
    assert world.docker_stack.calls[-1].argv == ["docker", "stack", "rm", "shop"]
    assert world.swarm.services == {} and world.swarm.secrets == {} and world.swarm.configs == {}
    assert len(world.swarm.volume_names) == 3
    removed = lifecycle.bring_down(world.stack, world.bundle, world.runtime(), volumes=True)
    assert removed.volumes == ("shop_alertmanager-data", "shop_prometheus-data")
    assert world.swarm.volume_names == ["other_data"]


def test_logs_come_from_docker_service_logs_one_service_after_the_other_or_together_when_followed(world):
    world.up()
    lifecycle.show_logs(world.stack, world.bundle, world.runtime(), [], follow=False, tail=5)
    argvs = [call.argv for call in world.docker_stack.calls[1:]]
    assert argvs == [["docker", "service", "logs", "--timestamps", "--no-task-ids", "--tail", "5", f"shop_{name}"]
                     for name in ("prometheus", "alertmanager", "node-exporter")]
    calls: list = []
    world.docker_stack.run_together = lambda argvs, what: calls.append(argvs)
    lifecycle.show_logs(world.stack, world.bundle, world.runtime(), ["prometheus", "node_exporter"], True, None)
    assert [argv[-2:] for argv in calls[0]] == [["--follow", "shop_prometheus"], ["--follow", "shop_node-exporter"]]


def test_task_container_finds_a_service_container_on_this_node_or_names_the_node_it_runs_on(world):
    world.up()
    assert swarm_ops.task_container(world.stack, world.runtime(), "prometheus") == \
        world.swarm.services["prometheus"].tasks[0].container_id
    world.swarm.services["prometheus"] = with_task(world.swarm.services["prometheus"], node="node-2")
    with pytest.raises(StackError, match="prometheus runs on node-2, not on this node: run stackctl there"):
        swarm_ops.task_container(world.stack, world.runtime(), "prometheus")
    world.swarm.services["prometheus"] = with_task(world.swarm.services["prometheus"], state="failed")
    with pytest.raises(StackError, match="prometheus has no running task"):
        swarm_ops.task_container(world.stack, world.runtime(), "prometheus")


def test_every_command_on_swarm_refuses_an_engine_that_is_no_manager(world):
    from stackctl.ops.rotate import RotationRun, rotate
    from stackctl.ops.verify import verify

    world.sets = ["services.grafana.enabled=true"]
    world.up()
    world.swarm.state = SwarmState("active", False)
    for action in (lambda: lifecycle.show_logs(world.stack, world.bundle, world.runtime(), [], False, 5),
                   lambda: lifecycle.bring_down(world.stack, world.bundle, world.runtime()),
                   lambda: verify(world.stack, world.runtime(), world.bundle),
                   lambda: rotate(RotationRun(world.stack, world.bundle, world.runtime()), "grafana_admin_password")):
        with pytest.raises(StackError, match="is a swarm worker"):
            action()
    assert len(world.docker_stack.calls) == 1  # the first deploy, nothing since


# --- reaching services ---------------------------------------------------------------------------------------------


def test_unpublished_services_are_reached_through_a_forwarder_bound_to_loopback_and_removed_after(world):
    world.up()
    world.swarm.backends = {"alertmanager": 19093}
    with reach(world.stack, world.runtime()) as where:
        (forwarder,) = world.swarm.forwarders
        assert where.url("alertmanager") == "http://127.0.0.1:19093"
        assert where.url("prometheus").startswith("http://127.0.0.1:")
        assert not forwarder.removed
    assert forwarder.removed and forwarder.network == "shop_default"
    assert forwarder.script == forwarder_script([(10000, "prometheus", 9090), (10001, "alertmanager", 9093),
                                                 (10002, "node-exporter", 9100)])
    assert "busybox nc -ll -p 10000 -e busybox nc prometheus 9090 &" in forwarder.script
    assert forwarder.image == "busybox:1.37.0"


def test_published_ports_are_reached_directly_where_swarm_opens_them(world):
    world.sets = ["swarm.publish=[prometheus]"]
    world.up()
    with reach(world.stack, world.runtime(), [("prometheus", "web")]) as where:
        assert where.url("prometheus") == "http://127.0.0.1:9090"  # the routing mesh: this node too
    assert world.swarm.forwarders == []
    with reach(world.stack, world.runtime(DOCKER_HOST="tcp://manager.example:2376"), [("prometheus", "web")]) as where:
        assert where.url("prometheus") == "http://manager.example:9090"
    world.sets = ["swarm.publish=[prometheus]", "swarm.endpoint_mode=dnsrr"]
    world.swarm.node_list[0] = replace(world.swarm.node_list[0], address="10.0.0.7")
    with reach(world.stack, world.runtime(), [("prometheus", "web")]) as where:
        assert where.url("prometheus") == "http://10.0.0.7:9090"  # the node running its task


def test_a_forwarder_on_a_remote_engine_is_refused_saying_where_to_run(world):
    world.up()
    with pytest.raises(StackError, match=r"DOCKER_HOST names another machine \(manager.example\)") as raised:
        with reach(world.stack, world.runtime(DOCKER_HOST="ssh://ops@manager.example")):
            pass
    assert "swarm.publish" in raised.value.details and world.swarm.forwarders == []


def test_reaching_a_stack_that_is_not_deployed_says_so(world):
    with pytest.raises(StackError, match="cannot start a forwarder on shop_default"):
        with reach(world.stack, world.runtime()):
            pass


def test_on_compose_reach_is_the_published_host_port(tmp_path):
    (tmp_path / "stack.yaml").write_text("preset: metrics\nservices: {prometheus: {port: 19090}}\n")
    stack = load_stack(tmp_path / "stack.yaml", environ={})
    with reach(stack, Runtime(engine=None)) as where:
        assert where.url("prometheus") == "http://127.0.0.1:19090"
        with pytest.raises(StackError, match="does not publish"):
            where.url("node_exporter")


# --- rotation --------------------------------------------------------------------------------------------------------


@pytest.mark.contract
def test_rotating_a_secret_on_swarm_changes_it_in_the_service_then_makes_a_new_swarm_secret_for_its_users_only(
        world):
    """Grafana (the fake of its user API, reached through the forwarder) takes the new admin password first; then
    the new value becomes a new Swarm secret, only Grafana is updated, and the old secret object goes."""
    from stackctl.ops.rotate import RotationRun, rotate
    from tests.fakes.grafana import FakeGrafana

    world.sets = ["services.grafana.enabled=true"]
    world.up()
    store = world.runtime().store(world.stack)
    old = store.read("grafana_admin_password")
    grafana = FakeGrafana("admin", old).start()
    try:
        world.swarm.backends = {"grafana": grafana.port}
        world.swarm.updated.clear()
        events: list[str] = []
        result = rotate(RotationRun(world.stack, world.bundle, world.runtime(), timeout=5, on_event=events.append),
                        "grafana_admin_password")
        new = store.read("grafana_admin_password")
        assert new != old and grafana.password_of("admin") == new
        assert (result.changed_in, result.recreated, result.prepared) == ("Grafana", ("grafana",), ())
        assert world.swarm.updated == ["grafana"]
        old_object = secret_object_name("shop", "grafana_admin_password", old)
        new_object = secret_object_name("shop", "grafana_admin_password", new)
        assert new_object in world.swarm.secrets and old_object not in world.swarm.secrets
        assert f"create secret {new_object}" in world.swarm.log and f"remove secret {old_object}" in world.swarm.log
        deploy = world.docker_stack.calls[-1]
        assert deploy.env["STACK_SWARM_SECRET_GRAFANA_ADMIN_PASSWORD"] == new_object
        assert all(old not in e and new not in e for e in events + [str(deploy.env), str(result.to_json())])
        assert all(f.removed for f in world.swarm.forwarders) and world.swarm.forwarders
        assert not list(store.root.glob("grafana_admin_password.*"))  # no side file left
    finally:
        grafana.stop()


@pytest.mark.contract
def test_rotating_before_the_stack_is_deployed_changes_only_the_file(world):
    from stackctl.ops.bundle import prepare_bundle
    from stackctl.ops.rotate import RotationRun, rotate

    world.sets = ["services.grafana.enabled=true"]
    prepare_bundle(world.stack, world.bundle, world.runtime(), tools=False)
    result = rotate(RotationRun(world.stack, world.bundle, world.runtime(), timeout=5), "grafana_admin_password")
    assert result.recreated == () and world.docker_stack.calls == []
    assert any("not deployed" in note for note in result.notes)
