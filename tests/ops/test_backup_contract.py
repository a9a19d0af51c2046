"""Backup and restore of Grafana, Elasticsearch and Kibana against labelled fakes of their APIs (tests/fakes:
grafana.py, elasticsearch.py, kibana.py, each following the upstream spec files it names) and of the engine's file
operations (tests/fakes/engine.py): the real strategies, the real archive, the real restore transaction. These
services have no image here, so this is as far as they are proven: against the documented API, not the services."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.render import render_bundle
from stackctl.ops.backup import SavedObjectsStrategy, run_backup
from stackctl.ops.context import Runtime
from stackctl.ops.restore import open_archive, pending_journal, plan_restore, resume, rollback, run_restore
from stackctl.shells.archive import ArchiveReader
from stackctl.shells.fs import write_bundle
from tests.conftest import stack_from, stored_secrets
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.engine import FakeFilesEngine
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kibana import FakeKibana

pytestmark = pytest.mark.contract

DB = b"SQLite format 3\x00" + b"grafana" * 100
STREAM = "logs-stackctl-default"
PATH_REPO = "/usr/share/elasticsearch/snapshots"


@dataclass
class World:
    stack: Stack
    bundle: Path
    runtime: Runtime
    engine: FakeFilesEngine
    es: FakeElasticsearch
    grafana: FakeGrafana
    kibana: FakeKibana
    tmp: Path

    def backup(self, *services: str) -> Path:
        return run_backup(self.stack, self.runtime, self.bundle, self.tmp / "backups", list(services)).path

    def restore(self, archive: Path, *services: str):
        with open_archive(archive) as reader:
            plan = plan_restore(self.stack, self.runtime, reader, list(services))
            assert plan.refusals == []
            return plan, run_restore(self.stack, self.runtime, self.bundle, reader, plan, run_verify=False)

    def user_content(self) -> None:
        """What users made: a folder of their own with a dashboard, a dashboard in a provisioned folder, one at the
        root; log lines; a Kibana dashboard."""
        host = self.provisioned_folder()
        self.grafana.add_folder("team-a", "Team A")
        self.grafana.add_dashboard({"uid": "mine", "title": "Mine", "panels": [{"id": 1}]}, "team-a")
        self.grafana.add_dashboard({"uid": "in-host", "title": "My host view", "panels": []}, host["uid"])
        self.grafana.add_dashboard({"uid": "at-root", "title": "At the root", "panels": []})
        for i in range(3):
            self.es.documents.append((STREAM, {"@timestamp": f"2026-08-20T10:00:0{i}Z", "message": f"line {i}"}))
        self.kibana.objects[("dashboard", "logs-board")] = {
            "type": "dashboard", "id": "logs-board", "attributes": {"title": "Logs board"}, "managed": False,
            "references": [{"type": "index-pattern", "id": "stackctl-logs", "name": "ref"}]}

    def provisioned_folder(self) -> dict:
        """A folder provisioning made (from a dashboard directory)."""
        return next(iter(self.grafana.folders.values()))

    def fresh(self) -> None:
        """The same stack brought up anew: provisioning only, other log lines, no user objects."""
        self.grafana.dashboards.clear()
        self.grafana.folders.clear()
        self.grafana.provision(self.bundle)
        self.es.documents[:] = [(STREAM, {"@timestamp": "2026-08-21T00:00:00Z", "message": "after the backup"})]
        self.kibana.objects.clear()

    def dashboards(self) -> dict[str, str]:
        """uid -> folder title of every dashboard."""
        return {uid: d["meta"]["folderTitle"] for uid, d in self.grafana.dashboards.items()}


@pytest.fixture
def world(tmp_path):
    with ExitStack() as running:
        es = running.enter_context(FakeElasticsearch("placeholder"))
        grafana = running.enter_context(FakeGrafana("admin", "placeholder"))
        kibana = running.enter_context(FakeKibana("elastic", "placeholder"))
        stack = stack_from(f"""
project: fakes
preset: logs
services:
  logstash: {{enabled: false}}
  collector: {{enabled: false}}
  grafana: {{port: {grafana.port}}}
  elasticsearch: {{port: {es.port}}}
  kibana: {{port: {kibana.port}}}
""", tmp_path)
        store = stored_secrets(stack)
        es.users["elastic"]["password"] = store.read("elastic_password")
        grafana.users["admin"]["password"] = store.read("grafana_admin_password")
        kibana.credentials = ("elastic", store.read("elastic_password"))
        bundle = tmp_path / "build"
        write_bundle(render_bundle(stack), bundle)
        engine = FakeFilesEngine(project="fakes")
        engine.start_services("grafana", "elasticsearch", "kibana")
        engine.fs("grafana").write("/var/lib/grafana/grafana.db", DB)
        es.path_repo, es.fs = PATH_REPO, engine.fs("elasticsearch")
        grafana.provision(bundle)
        kibana.data_views["stackctl-logs"] = {"id": "stackctl-logs", "title": "logs-*", "name": "stackctl logs",
                                               "timeFieldName": "@timestamp"}
        runtime = Runtime(engine=engine, probe=lambda url: (True, ""), sleep=lambda s: None)
        yield World(stack, bundle, runtime, engine, es, grafana, kibana, tmp_path)


def members(archive: Path) -> dict[str, dict[str, bytes]]:
    found = {}
    with ArchiveReader(archive) as reader:
        for segment in reader.manifest.segments:
            found[segment.service] = {m.path: b"".join(bytes(c) for c in chunks) for m, chunks in reader.members(segment)}
    return found


def test_backup_takes_what_users_made_and_the_database_while_grafana_is_stopped(world):
    world.user_content()
    provisioned = {uid for uid, d in world.grafana.dashboards.items() if d["meta"]["provisionedExternalId"]}
    archive = world.backup()
    got = members(archive)
    grafana = got["grafana"]
    assert sorted(grafana) == ["api/dashboards/at-root.json", "api/dashboards/in-host.json",
                               "api/dashboards/mine.json", "api/folders.json", "database/grafana.db"]
    assert json.loads(grafana["api/folders.json"]) == [{"parentUid": "", "title": "Team A", "uid": "team-a"}]
    assert json.loads(grafana["api/dashboards/in-host.json"])["folderTitle"] == world.provisioned_folder()["title"]
    assert not provisioned & {json.loads(v)["dashboard"]["uid"] for k, v in grafana.items() if "dashboards/" in k}
    assert grafana["database/grafana.db"] == DB
    # The database was copied while Grafana was stopped, and Grafana runs again afterwards.
    assert world.engine.states_at_copy == [("/var/lib/grafana/grafana.db", "exited"),
                                           (f"{PATH_REPO}/{_snapshot_dir(archive)}", "running")]
    assert world.engine.running["grafana"].state == "running"
    # Elasticsearch: a snapshot through the API into path.repo, copied out, then deleted with its repository.
    repository = got["elasticsearch"]
    assert any(k.startswith("repository/snap-") for k in repository)
    with ArchiveReader(archive) as reader:
        details = reader.manifest.segment("elasticsearch").details
        assert details["data_streams"] == [STREAM]
        assert reader.manifest.segment("kibana").details == {"objects": 2, "missing_references": []}
    assert world.es.repositories == {}
    assert not [p for p in world.engine.files["fakes_elasticsearch-snapshots"]]
    snapshot = world.es.calls("PUT", "/_snapshot/")[-1]
    assert snapshot.query["wait_for_completion"] == ["true"] and snapshot.json["include_global_state"] is False
    # Kibana: the objects, without the export's summary line.
    lines = got["kibana"]["saved-objects.ndjson"].decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["logs-board", "stackctl-logs"]


def _snapshot_dir(archive: Path) -> str:
    with ArchiveReader(archive) as reader:
        return reader.manifest.segment("elasticsearch").details["snapshot"]


def test_restore_onto_a_fresh_stack_brings_everything_back_without_duplicating_provisioning(world):
    world.user_content()
    expected_docs = list(world.es.documents)
    archive = world.backup()
    world.fresh()
    fresh_host = world.provisioned_folder()["uid"]
    title = world.provisioned_folder()["title"]
    provisioned = dict(world.dashboards())
    with open_archive(archive) as reader:
        plan = plan_restore(world.stack, world.runtime, reader, [])
    replaces = "\n".join(r for item in plan.items for r in item.replaces)
    assert f"DELETED first and replaced by the backup's: {STREAM}" in replaces  # said before the operator agrees
    _, result = world.restore(archive)
    # Grafana: the user's folder with its uid, the dashboard in the provisioned folder found by its title (its uid
    # is new), provisioned dashboards once each.
    assert world.grafana.folders["team-a"]["title"] == "Team A"
    assert world.dashboards() == {**provisioned, "mine": "Team A", "in-host": title, "at-root": "General"}
    assert world.grafana.dashboards["in-host"]["meta"]["folderUid"] == fresh_host
    # Elasticsearch: the stream deleted (with consent), the backup's documents back, nothing of the restore left.
    assert world.es.documents == expected_docs
    assert world.es.repositories == {}
    assert world.engine.files["fakes_elasticsearch-snapshots"] == {}
    # Kibana: the dashboard is back, the data view kept.
    assert ("dashboard", "logs-board") in world.kibana.objects and "stackctl-logs" in world.kibana.data_views
    assert "3 dashboards and 1 new folders restored through the API" in result.restored["grafana"][0]
    assert pending_journal(world.stack) is None
    assert not (world.stack.state_dir / "restore" / result.journal_id).exists()


def test_a_failure_half_way_rolls_every_service_back(world):
    world.user_content()
    archive = world.backup()
    world.fresh()
    before = (dict(world.dashboards()), dict(world.grafana.folders), list(world.es.documents))
    snapshot = _snapshot_dir(archive)
    world.es.fail("POST", f"/_snapshot/{snapshot}-repository/{snapshot}/_restore", 500)
    with pytest.raises(StackError, match="failed and was rolled back: the previous data is in place"):
        world.restore(archive)
    # Grafana was restored before Elasticsearch failed: undone. Elasticsearch: its deleted stream is back from the
    # safety snapshot taken before the deletion.
    assert (world.dashboards(), world.grafana.folders, world.es.documents) == before
    assert world.es.repositories == {} and world.engine.files["fakes_elasticsearch-snapshots"] == {}
    assert ("dashboard", "logs-board") not in world.kibana.objects
    assert pending_journal(world.stack) is None


def test_an_interrupted_restore_is_finished_by_resume_without_doing_anything_twice(world, monkeypatch):
    world.user_content()
    archive = world.backup()
    world.fresh()
    original = SavedObjectsStrategy.apply

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(SavedObjectsStrategy, "apply", interrupted)
    with pytest.raises(StackError, match="interrupted.*--resume"):
        world.restore(archive)
    journal = pending_journal(world.stack)
    assert journal.phase == "importing"
    assert sorted(journal.entry("grafana").done) == ["at-root", "in-host", "mine"]
    monkeypatch.setattr(SavedObjectsStrategy, "apply", original)
    saves = len(world.grafana.requests)
    result = resume(world.stack, world.runtime, world.bundle, run_verify=False)
    assert not [r for r in world.grafana.requests[saves:] if r.path == "/api/dashboards/db"]  # not saved again
    assert ("dashboard", "logs-board") in world.kibana.objects
    assert "saved objects imported" in result.restored["kibana"][0]
    assert pending_journal(world.stack) is None


def test_an_interrupted_restore_can_be_rolled_back_instead(world, monkeypatch):
    world.user_content()
    archive = world.backup()
    world.fresh()
    before = (dict(world.dashboards()), list(world.es.documents))
    monkeypatch.setattr(SavedObjectsStrategy, "apply", lambda self, *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(StackError, match="interrupted"):
        world.restore(archive)
    rollback(world.stack, world.runtime)
    assert (world.dashboards(), world.es.documents) == before
    assert pending_journal(world.stack) is None


def test_a_dashboard_whose_uid_provisioning_now_owns_is_reported_not_duplicated(world):
    world.grafana.add_dashboard({"uid": "later-provisioned", "title": "Mine first", "panels": []})
    archive = world.backup("grafana")
    world.fresh()
    taken = next(iter(d for d in world.grafana.dashboards.values()))
    taken["dashboard"]["uid"] = "later-provisioned"
    world.grafana.dashboards["later-provisioned"] = taken
    _, result = world.restore(archive)
    assert "not restored, provisioning now owns their uid: Mine first" in result.restored["grafana"][0]
    assert world.grafana.dashboards["later-provisioned"]["meta"]["provisionedExternalId"]


def test_without_path_repo_the_backup_fails_clearly_and_leaves_no_archive(world):
    world.es.path_repo = None
    with pytest.raises(StackError, match="path.repo because this setting is empty"):
        world.backup("elasticsearch")
    assert not list((world.tmp / "backups").iterdir())


def test_an_archive_from_a_newer_elasticsearch_and_kibana_is_refused(world, tmp_path):
    archive = world.backup("elasticsearch", "kibana")
    text = world.stack.file.read_text().replace("elasticsearch: {", 'elasticsearch: {image: "docker.elastic.co/'
                                                "elasticsearch/elasticsearch:9.4.0\", ")
    text = text.replace("kibana: {", 'kibana: {image: "docker.elastic.co/kibana/kibana:9.4.0", ')
    older = stack_from(text, tmp_path, name="older.yaml")
    with open_archive(archive) as reader:
        plan = plan_restore(older, world.runtime, reader, [])
    assert plan.refusals == [
        "Elasticsearch: the backup holds data of 9.5.1, newer than this stack's 9.4.0; Elasticsearch does not read "
        "data of newer versions. Run 9.5.1 or newer",
        "Kibana: the backup holds data of 9.5.1, newer than this stack's 9.4.0; Kibana does not read data of newer "
        "versions. Run 9.5.1 or newer"]


def test_kibana_objects_broken_before_the_backup_are_said_not_fatal(world):
    world.user_content()
    world.kibana.objects[("dashboard", "broken")] = {"type": "dashboard", "id": "broken", "attributes": {},
                                                       "references": [{"type": "search", "id": "gone", "name": "r"}]}
    archive = world.backup("kibana")
    with ArchiveReader(archive) as reader:
        assert "already broken in Kibana: references to search/gone" in reader.manifest.segment("kibana").notes[1]
    world.fresh()
    _, result = world.restore(archive)
    assert result.restored["kibana"] == [
        "3 saved objects imported (objects with the same ids replaced)",
        "not imported, broken before the backup (missing references): dashboard/broken"]
    assert ("dashboard", "logs-board") in world.kibana.objects


def test_a_kibana_import_error_is_a_failure_that_rolls_back(world):
    world.user_content()
    archive = world.backup("kibana")
    world.fresh()
    world.kibana.objects[("dashboard", "mine-now")] = {"type": "dashboard", "id": "mine-now", "attributes": {},
                                                         "references": []}
    before = world.kibana.saved_objects()
    world.kibana.refuse_import = {("dashboard", "logs-board")}
    with pytest.raises(StackError, match="rolled back.*dashboard/logs-board: unknown \\(an injected failure\\)"):
        world.restore(archive)
    assert world.kibana.saved_objects() == before  # the data view it replaced is back, nothing new stays


def test_a_full_disk_while_writing_keeps_nothing_and_says_so(world, monkeypatch):
    import errno

    from stackctl.shells.archive import SegmentWriter

    original = SegmentWriter.add_file

    def full(self, *args, **kwargs):
        if self.service == "kibana":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SegmentWriter, "add_file", full)
    with pytest.raises(StackError, match="No space left on device; nothing was kept"):
        world.backup()
    assert list((world.tmp / "backups").iterdir()) == []
    assert world.engine.running["grafana"].state == "running"  # stopped for its copy, started again
    assert world.es.repositories == {}  # the snapshot was cleaned up all the same


def test_nothing_to_back_up_is_said_plainly(world, tmp_path):
    stack = stack_from("preset: traces\nservices:\n  collector: {enabled: false}\n  grafana: {enabled: false}\n",
                       tmp_path, name="traces.yaml")
    with pytest.raises(StackError, match="nothing to back up: Jaeger: Jaeger keeps traces in memory"):
        run_backup(stack, world.runtime, world.bundle, tmp_path / "b", ["jaeger"])
