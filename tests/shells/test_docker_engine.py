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
