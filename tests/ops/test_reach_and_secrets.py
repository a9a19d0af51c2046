"""Reaching an unpublished Swarm service: how stackctl waits for its forwarder (created, then running, its ports
published, its listeners seen by busybox netstat or assumed when there is no netstat; a stopped forwarder or one
that never listens is an error), with a scripted engine and a fake clock. And what `secrets list` shows of each
secret: where the value lives, its age, its JSON. No Docker, no network, no sleeping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stackctl.core.errors import StackError
from stackctl.ops.context import Runtime
from stackctl.ops.reach import READY_WAIT, reach
from stackctl.ops.secrets import inventory
from stackctl.shells.state import SecretStore
from tests.conftest import stored_secrets
from tests.ops.test_secrets import PAGER, RECEIVERS, SLACK, make_stack
from tests.support.stacks import make_stack as stack_from_data

NETSTAT = ["busybox", "netstat", "-ltn"]
LISTENING = "tcp        0      0 0.0.0.0:10000           0.0.0.0:*               LISTEN\n"
OTHER_PORT = "tcp        0      0 0.0.0.0:10001           0.0.0.0:*               LISTEN\n"


class ScriptedForwarder:
    """The engine calls reach() makes for a forwarder, answering from a script of steps: each look at the
    container's state moves to the next step (the last one repeats). A step is (state, published ports, netstat's
    answer); the ports and netstat answers depend only on the step, as the engine's would."""

    def __init__(self, steps: list[tuple[str, dict[int, int], tuple[int, str]]], log: str = ""):
        self.steps, self.log, self.step = steps, log, -1
        self.execs: list[list[str]] = []
        self.removed = False

    def start_forwarder(self, image, network, script, ports, labels) -> str:
        return "forwarder-1"

    def current(self):
        return self.steps[min(self.step, len(self.steps) - 1)]

    def container_state(self, container_id: str) -> tuple[str, str]:
        self.step += 1
        return self.current()[0], self.log

    def forwarder_ports(self, container_id: str) -> dict[int, int]:
        return dict(self.current()[1])

    def exec_output(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        self.execs.append(list(argv))
        return self.current()[2]

    def remove_container(self, container_id: str) -> None:
        self.removed = True


class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def reach_alertmanager(engine: ScriptedForwarder, clock: FakeClock) -> str:
    """The URL reach() gives for Alertmanager's (unpublished) web port of a Swarm stack."""
    stack = stack_from_data({"target": "swarm", "preset": "metrics", "project": "shop"})
    runtime = Runtime(engine=engine, clock=clock, sleep=clock.sleep, environ={})
    with reach(stack, runtime, [("alertmanager", "web")]) as where:
        return where.url("alertmanager")


def test_the_forwarder_is_awaited_while_created_until_its_ports_are_published_and_netstat_shows_them_listening():
    engine = ScriptedForwarder([
        ("created", {}, (0, "")),
        ("running", {}, (0, "")),
        ("running", {10000: 41000}, (0, OTHER_PORT)),  # published, not listening yet
        ("running", {10000: 41000}, (0, LISTENING)),
    ])
    clock = FakeClock()
    assert reach_alertmanager(engine, clock) == "http://127.0.0.1:41000"
    assert engine.execs == [NETSTAT, NETSTAT]  # asked only once the ports were published
    assert clock.sleeps == [0.2, 0.2, 0.2] and engine.removed


def test_without_netstat_in_the_image_the_forwarder_counts_as_listening_once_its_ports_are_published():
    no_netstat = (127, "exec: netstat: not found")
    engine = ScriptedForwarder([("running", {}, no_netstat), ("running", {10000: 41000}, no_netstat)])
    clock = FakeClock()
    assert reach_alertmanager(engine, clock) == "http://127.0.0.1:41000"
    assert engine.execs == [NETSTAT] and clock.sleeps == [0.2]


def test_a_forwarder_that_never_listens_is_given_up_after_the_ready_wait_with_its_log():
    engine = ScriptedForwarder([("running", {10000: 41000}, (0, OTHER_PORT))], log="nc: listening elsewhere\n")
    clock = FakeClock()
    with pytest.raises(StackError) as raised:
        reach_alertmanager(engine, clock)
    assert raised.value.message == f"the forwarder (busybox:1.37.0) did not listen within {READY_WAIT:.0f}s"
    assert raised.value.details == "nc: listening elsewhere\n"
    assert READY_WAIT < clock.now - 1000.0 <= READY_WAIT + 0.2 + 1e-9 and engine.removed


@pytest.mark.parametrize("log, shown", [("nc: applet not found\n", "nc: applet not found"), ("", "exited")])
def test_a_forwarder_that_stops_is_reported_with_its_log_or_its_state(log, shown):
    engine = ScriptedForwarder([("created", {}, (0, "")), ("exited", {}, (0, ""))], log=log)
    with pytest.raises(StackError) as raised:
        reach_alertmanager(engine, FakeClock())
    assert raised.value.message == f"the forwarder (busybox:1.37.0) stopped: {shown}"
    assert "swarm.forwarder_image" in raised.value.details and engine.removed


# --- secrets list --------------------------------------------------------------------------------------------------


def written_ago(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_a_generated_secret_is_listed_with_its_file_its_mode_and_its_age_in_whole_seconds(tmp_path: Path):
    stack = make_stack(tmp_path / "m", "version: 1\npreset: metrics\n")
    store = stored_secrets(stack)
    written_ago(store.path("grafana_admin_password"), 89.6)
    (entry,) = inventory(stack, store)
    assert 89.6 <= entry.age_seconds < 90.5  # shown rounded, not cut
    assert entry.to_json() == {
        "name": "grafana_admin_password", "origin": "generated", "kind": "password", "used_by": ["grafana"],
        "present": True, "age_seconds": 90, "source": str(store.root / "grafana_admin_password"), "mode": "0600"}


def test_a_missing_generated_secret_is_listed_where_it_will_be_written_without_age_or_mode(tmp_path: Path):
    stack = make_stack(tmp_path / "m", "version: 1\npreset: metrics\n")
    store = SecretStore.for_stack(stack)
    (entry,) = inventory(stack, store)
    assert entry.to_json() == {
        "name": "grafana_admin_password", "origin": "generated", "kind": "password", "used_by": ["grafana"],
        "present": False, "age_seconds": None, "source": str(store.root / "grafana_admin_password"), "mode": None}


def test_user_supplied_secrets_show_the_age_of_their_file_and_none_for_a_variable(tmp_path: Path):
    stack = make_stack(tmp_path / "r", "version: 1\npreset: metrics\n" + RECEIVERS)
    url_file = stack.file.parent / "slack-url"
    url_file.write_text("https://hooks.example/very-secret\n")
    written_ago(url_file, 3599.6)
    entries = {e.name: e for e in inventory(stack, SecretStore.for_stack(stack), environ={})}
    assert 3599.6 <= entries[SLACK].age_seconds < 3600.5
    assert entries[SLACK].to_json() == {
        "name": SLACK, "origin": "user", "kind": None, "used_by": ["alertmanager"], "present": True,
        "age_seconds": 3600, "source": f"file {url_file}", "mode": None}
    assert entries[PAGER].to_json() == {
        "name": PAGER, "origin": "user", "kind": None, "used_by": ["alertmanager"], "present": False,
        "age_seconds": None, "source": "environment variable PD_KEY", "mode": None}
    url_file.unlink()
    missing = {e.name: e for e in inventory(stack, SecretStore.for_stack(stack), environ={"PD_KEY": ""})}
    assert (missing[SLACK].present, missing[SLACK].age_seconds) == (False, None)
    assert not missing[PAGER].present  # an empty variable supplies nothing
