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
