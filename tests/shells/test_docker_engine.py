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
