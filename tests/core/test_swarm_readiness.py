"""Readiness on Swarm without an engine: a service's tasks -> ready, waiting or failed, with what `status` shows
(running/desired tasks, where each task of a per-node service is)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from stackctl.core import readiness
from stackctl.core.readiness import FAILED, READY, WAITING, SwarmServiceInfo, TaskInfo, evaluate_swarm, swarm_status
from stackctl.core.swarm import ONESHOT_ATTEMPTS
from tests.support.stacks import make_stack

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
STACK = make_stack({"target": "swarm"})


def task(state="running", desired="running", node="node-1", error="", current=True, age=60) -> TaskInfo:
    return TaskInfo(node=node, state=state, desired=desired, error=error, since=NOW - timedelta(seconds=age),
                    created=NOW - timedelta(seconds=age + 5), current=current)


def service(name: str, *tasks: TaskInfo, mode="replicated", replicas=1, update="") -> SwarmServiceInfo:
    return SwarmServiceInfo(name, mode, replicas if mode == "replicated" else None, f"{name}:1", tasks, update)


def evaluate(key: str, info: SwarmServiceInfo | None, placement: str | None = None):
    return evaluate_swarm(STACK.get(key), info, placement, NOW)


def test_a_replicated_service_is_ready_when_its_replicas_run():
    status = evaluate("prometheus", service("prometheus", task(age=42)))
    assert (status.phase, status.state, status.health, status.running, status.desired) == (
        READY, "running", "healthy", 1, 1)
    assert status.uptime_seconds == 42 and status.image == "prometheus:1" and status.nodes == ()
    assert evaluate("collector", service("otel-collector", task())).health == "running"  # no healthcheck: started


def test_a_task_starting_is_waiting_and_healthy_only_once_running():
    starting = evaluate("prometheus", service("prometheus", task("starting")))
    assert (starting.phase, starting.state, starting.health, starting.running) == (WAITING, "starting", "starting", 0)
    assert evaluate("prometheus", None).phase == WAITING and evaluate("prometheus", None).detail == "not deployed yet"
    two = evaluate("prometheus", service("prometheus", task(), task("preparing", node="node-2"), replicas=2))
    assert (two.phase, two.running, two.desired, two.state) == (WAITING, 1, 2, "preparing")


def test_tasks_of_an_older_spec_do_not_count_during_an_update():
    updating = evaluate("prometheus", service("prometheus", task(current=False)))
    assert (updating.phase, updating.state, updating.running) == (WAITING, "updating", 0)
    replaced = evaluate("prometheus", service("prometheus", task(desired="shutdown"), task("pending", desired="ready")))
    assert (replaced.phase, replaced.running) == (WAITING, 0)


def test_a_missing_node_label_fails_at_once_naming_the_label_and_the_fix():
    stuck = task("pending", error="no suitable node (scheduling constraints not satisfied on 3 nodes)")
    status = evaluate("prometheus", service("prometheus", stuck), placement="stackctl.data=true")
    assert status.phase == FAILED
    assert status.detail == ("no node carries the label stackctl.data=true that places it "
                             "(docker node update --label-add stackctl.data=true NODE)")
    other = evaluate("prometheus", service("prometheus", task("pending", error="no suitable node (host-mode port "
                                                                                 "already in use on 1 node)")))
    assert other.phase == WAITING  # the task being replaced still holds the port


def test_tasks_that_keep_failing_are_a_crash_loop_with_the_last_error():
    ended = [task("failed", desired="shutdown", error=f"task: non-zero exit ({i})", age=100 - i)
             for i in range(readiness.CRASH_LOOP_RESTARTS)]
    status = evaluate("prometheus", service("prometheus", task("starting"), *ended))
    assert status.phase == FAILED and status.health == "unhealthy"
    assert status.detail == "crash loop: 3 tasks ended since the last deploy; last: task: non-zero exit (2)"
    few = evaluate("prometheus", service("prometheus", task("starting"), *ended[:2]))
    assert few.phase == WAITING and few.detail == "last task ended: task: non-zero exit (1)"
    old = [t.__class__(**{**t.__dict__, "current": False}) for t in ended]  # failures of an earlier spec
    assert evaluate("prometheus", service("prometheus", task(), *old)).phase == READY


def test_a_paused_update_fails():
    status = evaluate("prometheus", service("prometheus", task(), update="paused"))
    assert status.phase == FAILED and status.detail == "Swarm paused its rolling update"


def test_a_global_service_wants_one_task_per_eligible_node_and_says_where_each_is():
    info = service("node-exporter", task(node="b"), task("starting", node="a", error=""),
                   task("failed", desired="shutdown", node="a", error="oom"), mode="global")
    status = evaluate("node_exporter", info)
    assert (status.phase, status.running, status.desired) == (WAITING, 1, 2)
    assert [(t.node, t.state) for t in status.nodes] == [("a", "starting"), ("b", "running")]
    ready = evaluate("node_exporter", service("node-exporter", task(node="a"), task(node="b"), mode="global"))
    assert (ready.phase, ready.running, ready.desired) == (READY, 2, 2)
    none = evaluate("node_exporter", service("node-exporter", mode="global"))
    assert (none.phase, none.detail) == (WAITING, "no task yet")


def test_a_setup_job_is_ready_once_complete_and_failed_when_it_gave_up():
    done = evaluate("elasticsearch_setup", service("elasticsearch-setup", task("failed", desired="shutdown", age=90),
                                                   task("complete", desired="shutdown", age=10)))
    assert (done.phase, done.health) == (READY, "completed")
    retrying = evaluate("elasticsearch_setup", service("elasticsearch-setup", task("failed", error="exit 1", age=30)))
    assert retrying.phase == WAITING and retrying.detail == "exit 1"
    gave_up = [task("failed", desired="shutdown", error="exit 1", age=100 - i) for i in range(ONESHOT_ATTEMPTS)]
    status = evaluate("elasticsearch_setup", service("elasticsearch-setup", *gave_up))
    assert status.phase == FAILED and status.detail == f"gave up after {ONESHOT_ATTEMPTS} attempts: exit 1"


def test_swarm_status_covers_every_enabled_service_and_names_the_placing_label():
    stack = make_stack({"target": "swarm", "preset": "metrics"})
    stuck = task("pending", error="no suitable node (scheduling constraints not satisfied on 1 node)")
    statuses = swarm_status(stack, [service("prometheus", stuck), service("grafana", task())], now=NOW)
    by_name = {s.service: s for s in statuses}
    assert list(by_name) == ["prometheus", "alertmanager", "grafana", "node-exporter"]
    assert "stackctl.data=true" in by_name["prometheus"].detail and by_name["alertmanager"].state == "missing"
    assert [s.service for s in swarm_status(stack, [], only={"grafana"}, now=NOW)] == ["grafana"]


def test_json_of_a_swarm_status_counts_tasks_and_a_container_status_does_not():
    status = evaluate("node_exporter", service("node-exporter", task(node="a"), mode="global"))
    data = status.to_json()
    assert (data["running"], data["desired"], data["nodes"]) == (1, 1, [{"node": "a", "state": "running",
                                                                         "detail": ""}])
    plain = readiness.ServiceStatus("prometheus", READY, "running", "healthy")
    assert not {"running", "desired", "nodes"} & set(plain.to_json())
