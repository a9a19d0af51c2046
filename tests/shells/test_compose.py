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
