"""Details of the Swarm operations and of `up`'s failure report: which configs and secrets a bundle needs, that
every engine lookup names the stack's own project, how `docker service logs` is run (to the terminal, without a
time limit, together only when following several services), what `task_container` says when a service cannot be
reached here, and the exact failure report of services that are not ready."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stackctl.core.errors import StackError
from stackctl.core.readiness import FAILED, READY, WAITING, NodeTask, ServiceStatus
from stackctl.ops import lifecycle, swarm as swarm_ops
from stackctl.ops.context import Runtime
from stackctl.shells.stackfile import load_stack
from tests.fakes.swarm import FakeSwarm, FakeSwarmStack, with_task
from tests.ops.test_swarm import METRICS, SLACK
from tests.support.stacks import make_stack


class RecordingSwarmStack(FakeSwarmStack):
    """The fake `docker stack` shell, also keeping how each command was run (time limit, output captured or not)
    and which commands were run together."""

    def __init__(self, swarm: FakeSwarm):
        super().__init__(swarm)
        self.runs: list[tuple[list[str], str, float | None, bool]] = []
        self.together: list[tuple[list[list[str]], str]] = []

    def run(self, argv, what, timeout=600, capture=True):
        self.runs.append((list(argv), what, timeout, capture))
        return super().run(argv, what, timeout=timeout, capture=capture)

    def run_together(self, argvs, what):
        self.together.append(([list(a) for a in argvs], what))


class ProjectRecordingEngine:
    """The fake Swarm engine, recording the project each stack lookup of stackctl names."""

    LOOKUPS = ("task_containers", "stack_services", "objects_in_use", "service_logs")

    def __init__(self, swarm: FakeSwarm):
        self.swarm = swarm
        self.projects: list[tuple[str, object]] = []

    def __getattr__(self, name):
        attribute = getattr(self.swarm, name)
        if name not in self.LOOKUPS:
            return attribute

        def lookup(project, *args, **kwargs):
            self.projects.append((name, project))
            return attribute(project, *args, **kwargs)

        return lookup


class World:
    def __init__(self, directory: Path):
        self.directory = directory
        self.swarm = FakeSwarm()
        self.engine = ProjectRecordingEngine(self.swarm)
        self.docker_stack = RecordingSwarmStack(self.swarm)

    @property
    def stack(self):
        return load_stack(self.directory / "stack.yaml", environ={})

    @property
    def bundle(self) -> Path:
        return self.directory / "build"

    def runtime(self) -> Runtime:
        return Runtime(engine=self.engine, make_swarm=self.docker_stack.for_bundle, poll_interval=0,
                       sleep=lambda seconds: None, environ={}, compose_tool=lambda: None)

    def up(self):
        return lifecycle.bring_up(self.stack, self.bundle, self.runtime(), timeout=5, on_event=lambda e: None)


@pytest.fixture
def world(tmp_path: Path, monkeypatch) -> World:
    from stackctl.ops import bundle

    monkeypatch.setattr(bundle, "tool_checks", lambda stack, staged, tool: [])
    (tmp_path / "slack-url").write_text(SLACK + "\n")
    (tmp_path / "stack.yaml").write_text(METRICS)
    return World(tmp_path)


def test_the_bundle_needs_exactly_the_configs_and_secrets_its_deploy_created(world):
    """bundle_objects names each config of the stack file (by its file's content) and each secret (by its value):
    the very objects the deploy made, so a second `up` finds them in use and deploys nothing."""
    world.up()
    stack = world.stack
    values = world.runtime().store(stack).values(stack, {})
    assert world.swarm.configs and world.swarm.secrets
    assert swarm_ops.bundle_objects(stack, world.bundle, values) == set(world.swarm.configs) | set(world.swarm.secrets)
    assert swarm_ops.is_deployed(stack, world.bundle, world.runtime(), values)
    assert world.up().noop and len(world.docker_stack.calls) == 1


def test_every_engine_lookup_names_the_stacks_own_project(world):
    """Objects in use, services, task containers and service logs are all asked for project `shop`."""
    world.up()
    world.up()
    swarm_ops.task_container(world.stack, world.runtime(), "prometheus")
    world.swarm.services["prometheus"] = with_task(world.swarm.services["prometheus"], node="node-2")
    with pytest.raises(StackError):
        swarm_ops.task_container(world.stack, world.runtime(), "prometheus")
    asked = {name for name, _ in world.engine.projects}
    assert {"objects_in_use", "stack_services", "task_containers"} <= asked
    assert {project for _, project in world.engine.projects} == {"shop"}


def test_logs_of_several_services_run_one_after_the_other_to_the_terminal_without_a_time_limit(world):
    world.up()
    lifecycle.show_logs(world.stack, world.bundle, world.runtime(), ["prometheus", "alertmanager"], follow=False,
                        tail=5)
    assert world.docker_stack.runs[1:] == [
        (["docker", "service", "logs", "--timestamps", "--no-task-ids", "--tail", "5", f"shop_{name}"],
         "docker service logs", None, False) for name in ("prometheus", "alertmanager")]
    assert world.docker_stack.together == []


def test_following_one_service_runs_its_log_alone_and_several_run_together(world):
    world.up()
    lifecycle.show_logs(world.stack, world.bundle, world.runtime(), ["prometheus"], follow=True, tail=None)
    assert world.docker_stack.runs[1:] == [
        (["docker", "service", "logs", "--timestamps", "--no-task-ids", "--follow", "shop_prometheus"],
         "docker service logs", None, False)]
    assert world.docker_stack.together == []
    lifecycle.show_logs(world.stack, world.bundle, world.runtime(), ["prometheus", "alertmanager"], follow=True,
                        tail=None)
    assert world.docker_stack.together == [(
        [["docker", "service", "logs", "--timestamps", "--no-task-ids", "--follow", f"shop_{name}"]
         for name in ("prometheus", "alertmanager")], "docker service logs")]
    assert len(world.docker_stack.runs) == 2


def test_task_container_names_every_node_running_the_service_or_says_it_is_not_deployed(world):
    world.up()
    info = world.swarm.services["prometheus"]
    on_node_3, on_node_2 = with_task(info, node="node-3").tasks[0], with_task(info, node="node-2").tasks[0]
    world.swarm.services["prometheus"] = replace(info, tasks=(on_node_3, on_node_2))
    with pytest.raises(StackError) as raised:
        swarm_ops.task_container(world.stack, world.runtime(), "prometheus")
    assert raised.value.message == ("prometheus runs on node-2, node-3, not on this node: run stackctl there (its "
                                    "volumes are there too)")
    del world.swarm.services["prometheus"]
    with pytest.raises(StackError) as raised:
        swarm_ops.task_container(world.stack, world.runtime(), "prometheus")
    assert raised.value.message == "prometheus has no running task: 'stackctl up' starts it"


# --- the failure report -----------------------------------------------------------------------------------------

class Logs:
    """An engine answering log requests with text that has blank space around it."""

    def __init__(self, text: str = "  first line\n  last line\n\n"):
        self.text = text

    def logs(self, container_id, tail=30):
        return self.text and f"  {container_id} tail {tail}\n" + self.text

    def service_logs(self, project, name, tail=30):
        return self.text and f"  {project}_{name} tail {tail}\n" + self.text


def test_the_failure_report_lists_each_unready_service_with_its_tasks_health_output_and_logs():
    """Every service not ready, in order (a ready one in between is skipped, not the end): its state and detail,
    its tasks not running on their nodes, the last five lines of each healthcheck output, its last log lines
    (indentation kept) at the tail asked for."""
    output = "\n".join(f"check line {i}" for i in range(1, 8))
    statuses = [
        ServiceStatus("grafana", READY, "running", "healthy", container_id="id-grafana"),
        ServiceStatus("prometheus", FAILED, "running", "unhealthy", "probe failing", container_id="id-prometheus",
                      health_output=("", output)),
        ServiceStatus("node-exporter", WAITING, "starting", "starting", container_id="id-node-exporter",
                      nodes=(NodeTask("node-1", "running"), NodeTask("node-2", "failed", "no space left"),
                             NodeTask("node-3", "pending"))),
    ]
    report = lifecycle.explain_failure(Runtime(engine=Logs()), statuses, tail=7)
    assert report == "\n".join([
        "--- prometheus: running, unhealthy (probe failing)",
        "last healthcheck output of prometheus:",
        "  check line 3", "  check line 4", "  check line 5", "  check line 6", "  check line 7",
        "last 7 log lines of prometheus:",
        "  id-prometheus tail 7\n  first line\n  last line",
        "--- node-exporter: starting, starting",
        "  on node-2: failed (no space left)",
        "  on node-3: pending",
        "last 7 log lines of node-exporter:",
        "  id-node-exporter tail 7\n  first line\n  last line",
    ])


def test_the_failure_report_says_no_output_for_an_empty_log():
    statuses = [ServiceStatus("prometheus", FAILED, "exited", "none", container_id="id-prometheus")]
    assert lifecycle.explain_failure(Runtime(engine=Logs("")), statuses) == \
        "--- prometheus: exited, none\nlast 30 log lines of prometheus:\n(no output)"


def test_on_swarm_the_report_shows_the_service_log_except_for_a_service_not_deployed():
    stack = make_stack({"target": "swarm", "project": "shop"})
    statuses = [ServiceStatus("prometheus", WAITING, "missing", "none", "not deployed yet"),
                ServiceStatus("alertmanager", FAILED, "failed", "unhealthy", "crash loop")]
    report = lifecycle.explain_failure(Runtime(engine=Logs()), statuses, tail=12, stack=stack)
    assert report == "\n".join([
        "--- prometheus: missing, none (not deployed yet)",
        "--- alertmanager: failed, unhealthy (crash loop)",
        "last 12 log lines of alertmanager:",
        "  shop_alertmanager tail 12\n  first line\n  last line",
    ])
