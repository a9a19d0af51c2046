"""The Docker shell's parsing of inspect data (no engine needed)."""

from __future__ import annotations

from datetime import datetime, timezone

from stackctl.shells.docker_engine import container_info


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


def test_container_info_is_exactly_what_inspect_says():
    from stackctl.core.readiness import ContainerInfo

    attrs = {
        "Id": "fedcba9876543210aa", "Name": "/shop-grafana-1", "RestartCount": 4,
        "Config": {"Image": "grafana/grafana:12.4.10",
                   "Labels": {"com.docker.compose.service": "grafana", "org.stackctl.config-hash": "h1"}},
        "State": {"Status": "exited", "ExitCode": 137, "StartedAt": "2026-11-24T02:00:00Z",
                  "Health": {"Status": "healthy", "Log": [{"Output": "1"}, {"Output": " 2\n"}, {"Output": None},
                                                           {"Output": "4"}]}},
    }
    assert container_info(attrs) == ContainerInfo(
        id="fedcba987654", name="shop-grafana-1", service="grafana", state="exited", health="healthy",
        exit_code=137, restart_count=4, started_at=datetime(2026, 11, 24, 2, 0, 0, tzinfo=timezone.utc),
        image="grafana/grafana:12.4.10", config_hash="h1", health_output=("2", "", "4"))


def test_container_info_of_a_container_without_health_or_labels():
    from stackctl.core.readiness import ContainerInfo

    assert container_info({}) == ContainerInfo(id="", name="", service="", state="unknown", health="none",
                                               exit_code=0, restart_count=0, started_at=None, image="",
                                               config_hash="", health_output=())
    never_started = container_info({"State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"}})
    assert never_started.started_at is None and never_started.state == "created"
    garbage = container_info({"State": {"StartedAt": "not a time"}})
    assert garbage.started_at is None


# --- Docker Swarm: recorded `docker service inspect`, task and node data ---------------------------------------------

TEMPLATE = {"ContainerSpec": {"Image": "local/prometheus:2.42.0@sha256:abc", "Args": ["--x"]},
            "Resources": {"Limits": {"MemoryBytes": 1073741824}}}


def test_swarm_service_info_from_inspect_data():
    from stackctl.shells.docker_engine import swarm_service_info

    attrs = {"Spec": {"Name": "shop_prometheus", "Mode": {"Replicated": {"Replicas": 1}}, "TaskTemplate": TEMPLATE},
             "UpdateStatus": {"State": "paused", "Message": "update paused due to failure"}}
    tasks = [
        {"NodeID": "n1", "DesiredState": "running", "CreatedAt": "2026-12-01T06:26:28.1Z",
         "Spec": {**TEMPLATE, "Runtime": "container"},  # the engine adds Runtime to tasks only
         "Status": {"State": "running", "Timestamp": "2026-12-01T06:26:35.5Z", "Message": "started",
                    "ContainerStatus": {"ContainerID": "0123456789abcdef", "ExitCode": 0}}},
        {"NodeID": "n2", "DesiredState": "shutdown", "CreatedAt": "2026-12-01T06:20:00Z",
         "Spec": {**TEMPLATE, "ContainerSpec": {"Image": "local/prometheus:2.41.0"}},
         "Status": {"State": "failed", "Err": "task: non-zero exit (1)", "ContainerStatus": {"ExitCode": 1}}},
    ]
    info = swarm_service_info(attrs, tasks, {"n1": "node-1"}, "shop")
    assert (info.name, info.mode, info.replicas, info.image) == ("prometheus", "replicated", 1, "local/prometheus:2.42.0")
    assert (info.update_state, info.update_message) == ("paused", "update paused due to failure")
    running, failed = info.tasks
    assert (running.node, running.state, running.desired, running.current, running.container_id) == (
        "node-1", "running", "running", True, "0123456789ab")
    assert running.since == datetime(2026, 12, 1, 6, 26, 35, 500000, tzinfo=timezone.utc)
    assert (failed.node, failed.state, failed.error, failed.exit_code, failed.current) == (
        "", "failed", "task: non-zero exit (1)", 1, False)
    global_ = swarm_service_info({"Spec": {"Name": "shop_node-exporter", "Mode": {"Global": {}}}}, [], {}, "shop")
    assert (global_.mode, global_.replicas, global_.tasks) == ("global", None, ())


def test_node_info_from_inspect_data():
    from stackctl.core.swarm import NodeInfo
    from stackctl.shells.docker_engine import node_info

    attrs = {"ID": "yg3kl7", "Description": {"Hostname": "vm"},
             "Spec": {"Role": "manager", "Availability": "active", "Labels": {"stackctl.data": "true"}},
             "Status": {"State": "ready", "Addr": "127.0.0.1"}}
    assert node_info(attrs) == NodeInfo("yg3kl7", "vm", "manager", "active", "ready", "127.0.0.1",
                                        {"stackctl.data": "true"})
    assert node_info({}).labels == {} and not node_info({}).usable
