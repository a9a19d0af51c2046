"""Details of backup and restore a user or script sees: which archives `backup list` and `backup prune` consider
(this project's, in --output), the refusal of --keep 0, deleting archives that are already gone, the free-space
check of a volume before a restore (df in the running service or in a helper container, its answer read), and the
rollback of a Kibana import that half succeeded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackctl.core.errors import StackError
from stackctl.core.units import format_bytes
from stackctl.ops.backup import delete_archives, list_backups, prune_plan
from stackctl.ops.context import Runtime
from stackctl.ops.restore import HELPER_MOUNT, open_archive, pending_journal, plan_restore
from tests.conftest import stack_from
from tests.fakes.engine import FakeFilesEngine
from tests.ops.test_backup_contract import world  # noqa: F401  (the fixture)
from tests.support.archives import TSDB, write

STACK = """project: details
preset: metrics
services:
  grafana: {enabled: false}
"""


# --- list and prune ------------------------------------------------------------------------------------------------


@pytest.fixture
def archives(tmp_path):
    """An --output directory holding two archives of this project and a newer one of another project."""
    stack = stack_from(STACK, tmp_path)
    output = tmp_path / "elsewhere"
    output.mkdir()
    for name in ("details-20260820T100000Z.stackctl", "details-20260821T100000Z.stackctl",
                 "other-20260822T100000Z.stackctl"):
        write(output, {"prometheus": TSDB}, name=name, project=name.split("-")[0])
    return stack, output


def test_list_backups_shows_only_this_projects_archives_in_the_output_directory(archives):
    stack, output = archives
    listing = list_backups(stack, output)
    assert [a.path for a in listing.archives] == [output / "details-20260821T100000Z.stackctl",
                                                  output / "details-20260820T100000Z.stackctl"]
    assert list_backups(stack).archives == []  # the stack's own backup directory holds none


def test_prune_plan_keeps_the_newest_of_this_project_in_the_output_directory(archives):
    stack, output = archives
    kept, deleted, leftovers = prune_plan(stack, 1, output)
    assert (kept, deleted, leftovers) == ([output / "details-20260821T100000Z.stackctl"],
                                          [output / "details-20260820T100000Z.stackctl"], [])


def test_prune_refuses_to_keep_nothing(archives):
    stack, output = archives
    with pytest.raises(StackError) as caught:
        prune_plan(stack, 0, output)
    assert str(caught.value) == "--keep must be at least 1: prune never deletes every backup"


def test_deleting_an_archive_that_is_already_gone_is_not_an_error(archives):
    _, output = archives
    gone = output / "details-20260820T100000Z.stackctl"
    gone.unlink()
    delete_archives([gone, output / "details-20260821T100000Z.stackctl"])
    assert sorted(p.name for p in output.iterdir()) == ["other-20260822T100000Z.stackctl"]


# --- free space before a restore ------------------------------------------------------------------------------------


def plan_with(tmp_path, free_kib: int, prometheus_state: str = "running"):
    stack = stack_from(STACK, tmp_path)
    engine = FakeFilesEngine(project="details", free_kib=free_kib)
    engine.start_services("prometheus", "alertmanager", "node-exporter")
    engine.running["prometheus"] = replace(engine.running["prometheus"], state=prometheus_state)
    directory = tmp_path / "backups"
    directory.mkdir()
    archive = write(directory, {"prometheus": TSDB}, project="details", versions={"prometheus": "3.14.0"})
    with open_archive(archive) as reader:
        plan = plan_restore(stack, Runtime(engine=engine, probe=lambda url: (True, ""), sleep=lambda s: None),
                            reader, ["prometheus"])
        size = reader.manifest.segment("prometheus").size
    return plan, engine, size


def too_small(free: int, size: int) -> str:
    needed = size + size // 20 + 64 * 1024 * 1024  # the data, 5 % more, and a margin of 64 MiB
    return (f"Prometheus: its volume details_prometheus-data has {format_bytes(free)} free; staging the backup next "
            f"to the current data needs {format_bytes(needed)}")


def test_a_volume_too_small_for_the_staged_data_is_refused_with_what_df_says_in_the_running_service(tmp_path):
    plan, engine, size = plan_with(tmp_path, free_kib=60_000)
    assert [c for c in engine.calls if c[0] in ("exec", "run_on_volume")] == [
        ("exec", "prometheus", ("df", "-Pk", "/prometheus"))]
    assert plan.refusals == [too_small(60_000 * 1024, size)]  # 58.6 MiB: df counts KiB of 1024 bytes


def test_the_free_space_of_a_stopped_services_volume_is_asked_of_a_helper_container(tmp_path):
    plan, engine, size = plan_with(tmp_path, free_kib=3, prometheus_state="exited")
    assert [c for c in engine.calls if c[0] in ("exec", "run_on_volume")] == [
        ("run_on_volume", "details_prometheus-data", f"df -Pk {HELPER_MOUNT}")]
    assert plan.refusals == [too_small(3 * 1024, size)]


def test_enough_free_space_is_no_refusal(tmp_path):
    plan, _, _ = plan_with(tmp_path, free_kib=50 * 1024 * 1024)
    assert plan.refusals == []


def test_a_failing_df_leaves_the_free_space_unknown_and_refuses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(FakeFilesEngine, "exec", lambda self, cid, argv, user="": (
        1, "Filesystem 1024-blocks Used Available Capacity Mounted on\nfake 1 1 3 1% /prometheus\n"))
    plan, _, _ = plan_with(tmp_path, free_kib=3)
    assert plan.refusals == []


# --- Kibana import rollback -----------------------------------------------------------------------------------------


def test_a_kibana_import_that_half_succeeded_is_rolled_back_to_the_objects_before(world):  # noqa: F811
    """The import replaced the data view and added a dashboard before one object failed: the rollback deletes the
    added dashboard and imports the data view as it was."""
    world.user_content()
    world.kibana.objects[("search", "refused")] = {"type": "search", "id": "refused", "attributes": {"title": "S"},
                                                   "references": []}
    archive = world.backup("kibana")
    world.fresh()
    world.kibana.data_views["stackctl-logs"]["title"] = "changed-*"
    world.kibana.objects[("dashboard", "mine-now")] = {"type": "dashboard", "id": "mine-now", "attributes": {},
                                                         "references": []}
    before = world.kibana.saved_objects()
    world.kibana.refuse_import = {("search", "refused")}
    with pytest.raises(StackError, match="rolled back"):
        world.restore(archive)
    assert world.kibana.saved_objects() == before
    assert ("dashboard", "logs-board") not in world.kibana.objects
    assert pending_journal(world.stack) is None
