"""The Docker shell's reading of inspect data: every field of a node, a Swarm service and its tasks, defaults when
the engine leaves a field out, and timestamps as the engine writes them (RFC 3339 with nanoseconds, trailing zeros
dropped) read the same on every Python stackctl supports."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from stackctl.core.readiness import SwarmServiceInfo, TaskInfo
from stackctl.core import units
from stackctl.core.swarm import NodeInfo
from stackctl.shells.docker_engine import container_info, node_info, swarm_service_info

UTC = timezone.utc


class Python310Datetime(datetime):
    """datetime as Python 3.10 has it (requires-python allows 3.10): fromisoformat takes no "Z" suffix and only 3
    or 6 fractional digits; 3.11 accepts both, which would hide a parse that works only there."""

    @classmethod
    def fromisoformat(cls, text: str):
        fraction = re.search(r"\.(\d+)", text)
        if text.endswith("Z") or (fraction and len(fraction.group(1)) not in (3, 6)):
            raise ValueError(f"Invalid isoformat string: {text!r}")
        return datetime.fromisoformat(text)


@pytest.fixture(params=["this Python", "Python 3.10"])
def any_python(request, monkeypatch):
    if request.param == "Python 3.10":
        monkeypatch.setattr(units, "datetime", Python310Datetime)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T02:00:00Z", datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)),
    ("2026-12-01T06:26:28.1Z", datetime(2026, 12, 1, 6, 26, 28, 100000, tzinfo=UTC)),
    ("2026-12-01T06:26:28.12345Z", datetime(2026, 12, 1, 6, 26, 28, 123450, tzinfo=UTC)),
    ("2026-12-01T06:26:28.123456789Z", datetime(2026, 12, 1, 6, 26, 28, 123456, tzinfo=UTC)),
    ("2026-12-01T06:26:28.9999999Z", datetime(2026, 12, 1, 6, 26, 28, 999999, tzinfo=UTC)),
])
def test_engine_timestamps_are_read_to_the_microsecond_on_every_supported_python(any_python, text, expected):
    """The engine writes RFC 3339 in UTC with up to 9 fractional digits, trailing zeros dropped (Go's RFC3339Nano);
    stackctl keeps microseconds (truncating, never rounding) and reads them the same on Python 3.10."""
    info = container_info({"State": {"StartedAt": text}})
    assert info.started_at == expected


def test_a_container_name_loses_only_the_leading_slash():
    """Inspect names a container "/name"; only that slash goes, not leading letters of the name."""
    assert container_info({"Name": "/XYZ-app-1"}).name == "XYZ-app-1"


def test_a_node_without_any_inspect_fields_is_all_empty_strings():
    """A node inspect answer missing every field gives empty strings (never None or a placeholder)."""
    assert node_info({}) == NodeInfo(id="", hostname="", role="", availability="", state="", address="", labels={})


TEMPLATE = {"ContainerSpec": {"Image": "local/grafana:12.4.10@sha256:abc", "Env": ["A=1"]},
            "Resources": {"Limits": {"MemoryBytes": 536870912}}}


def test_every_task_field_is_read_from_the_task_and_its_status(any_python):
    """Each TaskInfo field comes from its own inspect key: node by NodeID, state, desired state, error, message,
    the container's exit code and id, when it entered its state and when the task was created."""
    attrs = {"Spec": {"Name": "shop_grafana", "Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": TEMPLATE},
             "UpdateStatus": {"State": "completed", "Message": "update completed"}}
    task = {"NodeID": "n1", "DesiredState": "running", "CreatedAt": "2026-12-01T06:20:00.5Z", "Spec": TEMPLATE,
            "Status": {"State": "starting", "Err": "", "Message": "starting", "Timestamp": "2026-12-01T06:21:00Z",
                       "ContainerStatus": {"ContainerID": "abcdef0123456789", "ExitCode": None}}}
    info = swarm_service_info(attrs, [task], {"n1": "node-1"}, "shop")
    assert info == SwarmServiceInfo(
        name="grafana", mode="replicated", replicas=2, image="local/grafana:12.4.10",
        tasks=(TaskInfo(node="node-1", state="starting", desired="running", error="", message="starting",
                        exit_code=None, since=datetime(2026, 12, 1, 6, 21, tzinfo=UTC),
                        created=datetime(2026, 12, 1, 6, 20, 0, 500000, tzinfo=UTC), current=True,
                        container_id="abcdef012345"),),
        update_state="completed", update_message="update completed")


def test_a_service_and_task_the_engine_says_almost_nothing_about():
    """Missing fields give the documented defaults: empty strings, state "unknown", no times, no container id."""
    info = swarm_service_info({}, [{}], {}, "shop")
    assert info == SwarmServiceInfo(
        name="", mode="replicated", replicas=None, image="",
        tasks=(TaskInfo(node="", state="unknown", desired="", error="", message="", exit_code=None, since=None,
                        created=None, current=True, container_id=""),),
        update_state="", update_message="")


def test_a_task_with_other_resources_does_not_run_the_present_spec():
    """A resources-only update (same container spec, new limits) leaves the old tasks not current."""
    attrs = {"Spec": {"Name": "shop_grafana", "TaskTemplate": TEMPLATE}}
    old = {"Spec": {**TEMPLATE, "Resources": {"Limits": {"MemoryBytes": 268435456}}}}
    new = {"Spec": {**TEMPLATE, "Runtime": "container"}}
    assert [task.current for task in swarm_service_info(attrs, [old, new], {}, "shop").tasks] == [False, True]


def test_the_engines_never_is_no_time():
    """A container that never started reports year 1 ("0001-01-01T00:00:00Z"), which means no time at all."""
    from stackctl.shells.docker_engine import _parse_time

    assert _parse_time("0001-01-01T00:00:00Z") is None and _parse_time("") is None and _parse_time(None) is None


class _Helper:
    id, status = "h1", "exited"

    def __init__(self, removed: list):
        self.removed = removed

    def start(self):
        pass

    def wait(self, timeout=None):
        return {"StatusCode": 0}

    def logs(self, **kwargs):
        return b"done\n"

    def remove(self, **kwargs):
        self.removed.append(kwargs)


def test_helper_containers_are_removed_with_their_anonymous_volumes():
    """An image that declares a VOLUME (prom/prometheus: /prometheus) gives each helper container an anonymous
    volume; removing the helper without `v` would leave one behind per backup, restore or swap."""
    from stackctl.shells.docker_engine import DockerEngine

    removed: list = []

    class Containers:
        def create(self, image, **kwargs):
            return _Helper(removed)

        def list(self, **kwargs):
            return [_Helper(removed)]

        def get(self, container_id):
            return _Helper(removed)

    engine = DockerEngine()
    engine._client = type("Client", (), {"containers": Containers()})()
    assert engine.run_on_volume("p", "local/prometheus:2.42.0", "p_prometheus-data", "/target", "true") == (0, "done\n")
    assert engine.remove_helpers("p") == 1
    engine.remove_container("h1")
    assert removed == [{"force": True, "v": True}] * 3
