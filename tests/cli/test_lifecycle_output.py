"""What `init`, `down`, `status` and `urls` tell the user, word for word: the file `init` wrote and the next step,
the confirmation question and the refusal of `down --volumes`, the events and the closing line of `down` (locally
and on Swarm), the status tables (headers and cells), the lines about services that are not ready, the JSON of
`status --json` and its exit code, the table of `urls` and the note on Swarm's published ports. The engine,
`docker compose` and `docker stack` are the fakes of tests/fakes; `status` gets its service statuses from a scripted
operation, so every cell is known in advance."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from stackctl.cli import present
from stackctl.core.readiness import NodeTask, ServiceStatus
from stackctl.ops import lifecycle as lifecycle_ops
from stackctl.ops.context import Runtime
from tests.fakes.compose import FakeCompose, FakeEngine
from tests.fakes.swarm import FakeSwarm, FakeSwarmStack

LOCAL = "project: shop\npreset: metrics\n"
SWARM = "project: shop\npreset: metrics\ntarget: swarm\nswarm: {publish: [grafana]}\n"
SWARM_NOTE = ("Swarm publishes grafana 3000 on every interface of every node of the swarm (routing mesh); it ignores "
              "bind_address. Firewall them if the network is not trusted.")


class Terminal(io.StringIO):
    """A stdin a person sits at."""

    def isatty(self) -> bool:
        return True


def cells(table) -> list[tuple[str, ...]]:
    """The rows of a rich Table as the markup strings of their cells."""
    return [tuple(str(cell) for cell in row) for row in zip(*(list(column.cells) for column in table.columns))]


@pytest.fixture
def printed(monkeypatch) -> list:
    """Everything handed to the stdout console, which still prints it."""
    seen: list = []
    original = present.out.print

    def record(*objects, **kwargs):
        seen.extend(objects)
        original(*objects, **kwargs)

    monkeypatch.setattr(present.out, "print", record)
    return seen


def tables(seen: list) -> list:
    return [thing for thing in seen if not isinstance(thing, str)]


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """A person at the terminal who answers yes to every question; the questions asked."""
    questions: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr(present.typer, "confirm", lambda question, abort: questions.append(question))
    return questions


# --- down, local -----------------------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path, cli):
    """A local stack rendered into a bundle under --out (not the default build/); its engine and compose faked."""
    file = tmp_path / "stack.yaml"
    file.write_text(LOCAL)
    bundle = tmp_path / "elsewhere"
    assert cli("-f", file, "render", "--out", bundle).code == 0
    engine = FakeEngine()
    compose = FakeCompose(engine, project="shop")
    runtime = Runtime(engine=engine, make_compose=compose.for_bundle, environ={}, probe=lambda url: (True, ""))
    return file, bundle, engine, compose, runtime


def test_down_uses_the_bundle_given_with_out_and_keeps_the_volumes(local, cli):
    file, bundle, engine, compose, runtime = local
    result = cli("-f", file, "down", "--out", bundle, runtime=runtime)
    assert result.code == 0, result.output
    assert result.stdout == "shop is down; data volumes kept\n"
    assert [call.argv[-2:] for call in compose.calls] == [["down", "--remove-orphans"]]
    assert not (file.parent / "build").exists()


def test_down_asks_before_deleting_local_volumes_naming_each(local, cli, asked):
    file, bundle, engine, compose, runtime = local
    engine.volume_names = ["shop_grafana-data", "shop_prometheus-data"]
    result = cli("-f", file, "down", "--volumes", "--out", bundle, runtime=runtime)
    assert result.code == 0, result.output
    assert asked == ["Delete 2 volumes of shop (shop_grafana-data, shop_prometheus-data)? This cannot be undone"]
    assert result.stdout == "shop is down; its volumes were deleted\n"
    assert "--volumes" in compose.calls[-1].argv


def test_down_asking_about_no_volume_says_none(local, cli, asked):
    file, bundle, engine, compose, runtime = local
    assert cli("-f", file, "down", "--volumes", "--out", bundle, runtime=runtime).code == 0
    assert asked == ["Delete 0 volumes of shop (none)? This cannot be undone"]


def test_down_volumes_without_a_terminal_or_yes_is_refused_with_the_fix(local, cli, monkeypatch):
    file, bundle, engine, compose, runtime = local
    monkeypatch.setattr("sys.stdin", io.StringIO())
    result = cli("-f", file, "down", "--volumes", "--out", bundle, runtime=runtime)
    assert result.code == 2
    assert result.stderr == "error: --volumes deletes data: pass --yes to confirm when not running interactively\n"
    assert compose.calls == []


# --- down, Swarm -----------------------------------------------------------------------------------------------


class SlowToStop(FakeSwarm):
    """A swarm whose services are still listed at the first look after `docker stack rm`."""

    lingering: tuple = ()

    def remove_stack(self, project: str) -> None:
        self.lingering = tuple(super().stack_services(project))
        super().remove_stack(project)

    def stack_services(self, project: str):
        lingering, self.lingering = self.lingering, ()
        return list(lingering) or super().stack_services(project)


@pytest.fixture
def swarm_world(tmp_path: Path, monkeypatch, cli):
    from stackctl.ops import bundle

    monkeypatch.setattr(bundle, "tool_checks", lambda stack, staged, tool: [])
    file = tmp_path / "stack.yaml"
    file.write_text(SWARM)
    swarm = SlowToStop()
    docker_stack = FakeSwarmStack(swarm)
    runtime = Runtime(engine=swarm, make_swarm=docker_stack.for_bundle, poll_interval=0, sleep=lambda s: None,
                      environ={}, compose_tool=lambda: None)
    assert cli("-f", file, "up", runtime=runtime).code == 0
    return file, swarm, runtime


def test_down_on_swarm_asks_about_this_nodes_volumes_and_names_what_it_deleted(swarm_world, cli, asked):
    file, swarm, runtime = swarm_world
    swarm.volume_names = ["shop_grafana-data", "shop_prometheus-data"]
    result = cli("-f", file, "down", "--volumes", runtime=runtime)
    assert result.code == 0, result.output
    assert asked == ["Delete 2 volumes of shop on this node (volumes on other nodes of the swarm stay) "
                     "(shop_grafana-data, shop_prometheus-data)? This cannot be undone"]
    assert result.stderr == "shop: waiting for the stack's tasks to stop\n"
    assert result.stdout == ("shop is down; deleted on this node: shop_grafana-data, shop_prometheus-data. Volumes on "
                             "other nodes remain: remove them there with 'docker volume rm' (their names start with "
                             "shop_)\n")


def test_down_on_swarm_with_no_volume_on_this_node_says_so(swarm_world, cli):
    file, swarm, runtime = swarm_world
    result = cli("-f", file, "down", "--volumes", "--yes", runtime=runtime)
    assert result.code == 0, result.output
    assert result.stdout.startswith("shop is down; deleted on this node: no volume. Volumes on other nodes remain")


def test_down_on_swarm_keeping_volumes_names_what_swarm_removed(swarm_world, cli):
    file, swarm, runtime = swarm_world
    result = cli("-f", file, "down", runtime=runtime)
    assert result.code == 0, result.output
    assert result.stderr == "shop: waiting for the stack's tasks to stop\n"
    assert result.stdout == ("shop is down (services, network, configs and secrets removed from the swarm); "
                             "data volumes kept\n")


# --- status ------------------------------------------------------------------------------------------------------


def ready(service: str, uptime: float, image: str = "", **swarm) -> ServiceStatus:
    return ServiceStatus(service, "ready", "running", "healthy", image=image or f"{service}:1", uptime_seconds=uptime,
                         **swarm)


@pytest.fixture
def scripted(monkeypatch):
    """The statuses the operation reports, set by the test."""
    statuses: list[ServiceStatus] = []
    monkeypatch.setattr(lifecycle_ops, "statuses", lambda stack, runtime, only=None: list(statuses))
    return statuses


def status_of(tmp_path: Path, cli, text: str, *args: str, runtime=None):
    file = tmp_path / "stack.yaml"
    file.write_text(text)
    return cli("-f", file, "status", *args, runtime=runtime or Runtime(engine=FakeEngine()))


def test_status_json_is_ok_with_the_project_and_each_service_with_its_url(tmp_path, cli, scripted):
    scripted += [ready("grafana", 65), ready("node-exporter", 7)]
    result = status_of(tmp_path, cli, LOCAL, "--json")
    assert result.code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps({
        "ok": True, "project": "shop",
        "services": [{**scripted[0].to_json(), "url": "http://localhost:3000"},
                     {**scripted[1].to_json(), "url": None}]}))


def test_status_json_is_not_ok_and_exits_1_when_a_service_is_not_ready(tmp_path, cli, scripted):
    scripted += [ready("grafana", 65), ServiceStatus("prometheus", "waiting", "running", "starting")]
    result = status_of(tmp_path, cli, LOCAL, "--json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and [row["service"] for row in data["services"]] == ["grafana", "prometheus"]


def test_status_table_of_a_healthy_local_stack_exits_0(tmp_path, cli, scripted, printed):
    scripted += [ready("grafana", 3660, image="grafana/grafana:[edge]")]
    result = status_of(tmp_path, cli, LOCAL)
    assert result.code == 0, result.output
    assert result.stderr == ""
    [table] = tables(printed)
    assert [c.header for c in table.columns] == ["service", "state", "health", "url", "uptime", "image"]
    assert cells(table) == [("grafana", "running", "[green]healthy[/]", "http://localhost:3000", "1h01m",
                             "grafana/grafana:\\[edge]")]


def test_status_names_each_service_that_is_not_ready_with_its_detail(tmp_path, cli, scripted):
    scripted += [ready("grafana", 5),
                 ServiceStatus("prometheus", "failed", "exited", "none", "exit code 1 [oom]"),
                 ServiceStatus("alertmanager", "waiting", "running", "starting")]
    result = status_of(tmp_path, cli, LOCAL)
    assert result.code == 1
    assert result.stderr == "prometheus is exited/none: exit code 1 [oom]\nalertmanager is running/starting\n"


def test_status_on_swarm_shows_tasks_per_service_and_each_node_of_a_per_node_service(tmp_path, cli, scripted,
                                                                                     printed):
    scripted += [
        ready("grafana", 7260, running=1, desired=1),
        ServiceStatus("prometheus", "waiting", "starting", "starting", "task is starting", image="prom:[v3]",
                      running=0, desired=1),
        ready("node-exporter", 59, running=2, desired=2,
              nodes=(NodeTask("node-1", "running"), NodeTask("node-[b2]", "running", "since [noon]"))),
    ]
    result = status_of(tmp_path, cli, SWARM, runtime=Runtime(engine=FakeSwarm()))
    assert result.code == 1
    [table] = tables(printed)
    assert str(table.title) == f"shop on the swarm ({tmp_path / 'stack.yaml'})"
    assert [c.header for c in table.columns] == ["service", "tasks", "health", "url", "uptime", "image"]
    assert cells(table) == [
        ("grafana", "1/1 running", "[green]healthy[/]", "http://localhost:3000", "2h01m", "grafana:1"),
        ("prometheus", "0/1 starting", "[yellow]starting[/]", "", "-", "prom:\\[v3]"),
        ("node-exporter", "2/2 running", "[green]healthy[/]", "", "59s", "node-exporter:1"),
        ("  on node-1", "running", "", "", "", ""),
        ("  on node-\\[b2]", "running", "", "", "", "since \\[noon]"),
    ]
    assert result.stderr == "prometheus is starting/starting: task is starting\n"


# --- urls --------------------------------------------------------------------------------------------------------


def test_urls_table_lists_each_address_with_what_it_is(tmp_path, cli, printed):
    file = tmp_path / "stack.yaml"
    file.write_text(LOCAL)
    result = cli("-f", file, "urls")
    assert result.code == 0 and result.stderr == ""
    [table] = tables(printed)
    assert [c.header for c in table.columns] == ["service", "what", "address"]
    listed = json.loads(cli("-f", file, "urls", "--json").stdout)
    assert cells(table) == [(row["service"], row["description"], row["url"]) for row in listed]
    assert ("grafana", "UI", "http://localhost:3000") in cells(table)


def test_urls_on_swarm_says_where_the_ports_are_open(tmp_path, cli, printed):
    file = tmp_path / "stack.yaml"
    file.write_text(SWARM)
    result = cli("-f", file, "urls")
    assert result.code == 0
    assert cells(tables(printed)[0]) == [("grafana", "UI", "http://localhost:3000")]
    assert result.stderr == SWARM_NOTE + "\n"


# --- init --------------------------------------------------------------------------------------------------------


def test_init_names_the_file_it_wrote_and_what_to_run_next(tmp_path, cli):
    file = tmp_path / "stack.yaml"
    result = cli("-f", file, "init", "--preset", "metrics")
    assert result.code == 0, result.output
    assert result.stdout == f"wrote {file} (preset metrics). Next: stackctl up (or stackctl render to look first)\n"
