"""What the commands say on Swarm (engine and `docker stack` faked at their seam): tasks per service and per node,
where published ports are open, what `down --volumes` deleted and what it could not, refusals as one message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.ops.context import Runtime
from stackctl.shells.docker_engine import SwarmState
from tests.fakes.swarm import FakeSwarm, FakeSwarmStack, with_task

STACK = """project: shop
preset: metrics
target: swarm
swarm: {publish: [grafana]}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch):
    from stackctl.ops import bundle

    monkeypatch.setattr(bundle, "tool_checks", lambda stack, staged, tool: [])  # the tools tier runs the real ones
    (tmp_path / "stack.yaml").write_text(STACK)
    swarm = FakeSwarm()
    docker_stack = FakeSwarmStack(swarm)
    runtime = Runtime(engine=swarm, make_swarm=docker_stack.for_bundle, poll_interval=0, sleep=lambda s: None,
                      environ={}, compose_tool=lambda: None)
    return tmp_path, swarm, docker_stack, runtime


def test_up_says_where_swarm_opens_the_published_ports(world, cli):
    directory, swarm, docker_stack, runtime = world
    result = cli("-f", directory / "stack.yaml", "up", runtime=runtime)
    assert result.code == 0, result.output
    assert "stack is up: 4 services ready" in result.stdout
    assert ("Swarm publishes grafana 3000 on every interface of every node of the swarm (routing mesh); it ignores "
            "bind_address.") in result.stderr


def test_status_shows_running_of_desired_tasks_and_each_node_of_a_per_node_service(world, cli):
    directory, swarm, docker_stack, runtime = world
    assert cli("-f", directory / "stack.yaml", "up", runtime=runtime).code == 0
    swarm.services["prometheus"] = with_task(swarm.services["prometheus"], state="starting")
    human = cli("-f", directory / "stack.yaml", "status", runtime=runtime)
    assert human.code == 1
    assert "0/1 starting" in human.stdout and "1/1 running" in human.stdout and "on node-1" in human.stdout
    assert "prometheus is starting/starting" in human.stderr
    data = json.loads(cli("-f", directory / "stack.yaml", "status", "--json", runtime=runtime).stdout)
    rows = {row["service"]: row for row in data["services"]}
    assert (rows["prometheus"]["running"], rows["prometheus"]["desired"], rows["prometheus"]["phase"]) == (
        0, 1, "waiting")
    assert rows["node-exporter"]["nodes"] == [{"node": "node-1", "state": "running", "detail": ""}]
    assert rows["grafana"]["url"] == "http://localhost:3000"


def test_status_on_an_engine_outside_a_swarm_is_one_message_with_the_fix(world, cli):
    directory, swarm, docker_stack, runtime = world
    swarm.state = SwarmState("inactive", False)
    result = cli("-f", directory / "stack.yaml", "status", runtime=runtime)
    assert result.code == 2 and "not part of one" in result.stderr and "docker swarm init" in result.stderr
    assert "Traceback" not in result.output


def test_urls_say_the_ports_are_open_on_every_node(world, cli):
    directory, *_ = world
    rows = json.loads(cli("-f", directory / "stack.yaml", "urls", "--json").stdout)
    assert rows == [{"service": "grafana", "port": "web", "description": "UI", "url": "http://localhost:3000",
                     "open_on": "every node"}]
    human = cli("-f", directory / "stack.yaml", "--set", "swarm.endpoint_mode=dnsrr", "urls")
    assert "on every interface of the node running each service (endpoint_mode dnsrr)" in human.stderr


def test_down_keeps_volumes_and_with_volumes_says_other_nodes_keep_theirs(world, cli):
    directory, swarm, docker_stack, runtime = world
    assert cli("-f", directory / "stack.yaml", "up", runtime=runtime).code == 0
    swarm.volume_names = ["shop_grafana-data", "shop_prometheus-data"]
    kept = cli("-f", directory / "stack.yaml", "down", runtime=runtime)
    assert kept.code == 0 and "data volumes kept" in kept.stdout and len(swarm.volume_names) == 2
    refused = cli("-f", directory / "stack.yaml", "down", "--volumes", runtime=runtime)
    assert refused.code == 2 and "--yes" in refused.stderr and len(swarm.volume_names) == 2
    gone = cli("-f", directory / "stack.yaml", "down", "--volumes", "--yes", runtime=runtime)
    assert gone.code == 0, gone.output
    assert "deleted on this node: shop_grafana-data, shop_prometheus-data" in gone.stdout
    assert "Volumes on other nodes remain" in gone.stdout and swarm.volume_names == []
