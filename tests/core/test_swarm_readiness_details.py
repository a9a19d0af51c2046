"""Details of Swarm readiness that `status` shows: how many tasks a replicated service wants, why a task of a
per-node service is not running, and what a setup job that is still retrying looks like."""

from __future__ import annotations

from stackctl.core.readiness import READY, WAITING
from tests.core.test_swarm_readiness import evaluate, service, task


def test_a_replicated_service_wants_its_replica_count_not_its_task_count():
    status = evaluate("prometheus", service("prometheus", task(node="a"), replicas=2))
    assert (status.phase, status.running, status.desired) == (WAITING, 1, 2)
    both = evaluate("prometheus", service("prometheus", task(node="a"), task(node="b"), replicas=2))
    assert (both.phase, both.running, both.desired) == (READY, 2, 2)


def test_a_per_node_task_that_is_not_running_says_why_and_a_running_one_says_nothing():
    info = service("node-exporter", task("rejected", node="a", error="no such image"), task(node="b", error="old"),
                   mode="global")
    nodes = evaluate("node_exporter", info).nodes
    assert [(t.node, t.state, t.detail) for t in nodes] == [("a", "rejected", "no such image"), ("b", "running", "")]


def test_a_setup_job_still_retrying_is_waiting_with_its_task_running():
    status = evaluate("elasticsearch_setup", service("elasticsearch-setup", task("running", age=5)))
    assert (status.phase, status.state, status.health) == (WAITING, "running", "running")
