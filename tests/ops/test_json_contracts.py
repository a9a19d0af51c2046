"""The keys scripts read from `--json` of backup, restore and rotate; where a restore keeps its journal (the README
and the messages of an interrupted restore name it); a bundle file removed by hand before a render; a secret file
with a NUL byte; a compose file Compose refuses; what an Elasticsearch restore asks for."""

from __future__ import annotations

from stackctl.ops.restore import RestoreResult
from stackctl.ops.rotate import RotationResult
from stackctl.shells.fs import write_bundle
from stackctl.shells.state import JournalStore


def test_rotation_json():
    result = RotationResult("grafana_admin_password", "Grafana", ("grafana",), ("kibana",), True, ("note",))
    assert result.to_json() == {"secret": "grafana_admin_password", "changed_in": "Grafana", "recreated": ["grafana"],
                                "prepared": ["kibana"], "finished_interrupted_rotation": True, "notes": ["note"]}


def test_restore_json():
    result = RestoreResult({"prometheus": ["swapped"]}, 1.23456, "id-1", warnings=["left x"], phases={"stage": 0.5})
    assert result.to_json() == {"ok": True, "id": "id-1", "duration": 1.235, "phases": {"stage": 0.5},
                                "restored": {"prometheus": ["swapped"]}, "warnings": ["left x"], "verify": None}


def test_a_restore_keeps_its_journal_in_the_state_directorys_restore_folder(tmp_path):
    class Stack:
        state_dir = tmp_path / ".stackctl"

    store = JournalStore.for_stack(Stack())
    assert store.root == tmp_path / ".stackctl" / "restore" and store.path == store.root / "journal.json"


def test_a_stale_file_already_removed_by_hand_is_no_error(tmp_path):
    out = tmp_path / "build"
    write_bundle({"a.yaml": b"a\n", "old.yaml": b"old\n"}, out)
    (out / "old.yaml").unlink()
    result = write_bundle({"a.yaml": b"a\n"}, out)
    assert result.removed == ("old.yaml",) and sorted(p.name for p in out.iterdir()) == [".stackctl-bundle.json",
                                                                                          "a.yaml"]


def test_a_secret_with_a_nul_byte_is_refused_with_the_size_limit_in_kib(tmp_path):
    import pytest

    from stackctl.core.errors import StackError
    from stackctl.shells.state import read_secret_file

    (tmp_path / "s").write_bytes(b"abc\x00def")
    with pytest.raises(StackError) as info:
        read_secret_file(tmp_path / "s", "secret")
    assert info.value.message == f"secret {tmp_path / 's'} is not a text secret (NUL bytes, or larger than 64 KiB)"


def _segment():
    from stackctl.core.archive import FILE, Member, Segment

    return Segment(service="prometheus", title="Prometheus", strategy="TsdbSnapshot", version="2.42.0",
                   members=(Member(path="a", type=FILE, size=3),), length=10, notes=("1 block",))


def test_backup_json():
    from pathlib import Path

    from stackctl.core.archive import Manifest, NotKept
    from stackctl.ops.backup import BackupResult

    manifest = Manifest(project="p", stackctl_version="0.1.0", bundle_stackctl_version="0.1.0", created="c",
                        finished="f", encrypted=True, includes_secrets=False, segments=(_segment(),),
                        not_kept=(NotKept("jaeger", "in memory"),))
    result = BackupResult(Path("/b/p.stackctl"), manifest, 1.23456, 99)
    assert result.to_json() == {
        "ok": True, "archive": "/b/p.stackctl", "size": 99, "duration": 1.235, "encrypted": True,
        "includes_secrets": False,
        "services": [{"service": "prometheus", "strategy": "TsdbSnapshot", "version": "2.42.0", "size": 3,
                      "stored": 10, "members": 1, "notes": ["1 block"]}],
        "not_kept": [{"service": "jaeger", "reason": "in memory"}]}


def test_restore_plan_item_json():
    from stackctl.ops.restore import RestoreItem

    item = RestoreItem("prometheus", "Prometheus", _segment(), "swap", messages=["m"], replaces=["r"])
    assert item.to_json() == {"service": "prometheus", "title": "Prometheus", "strategy": "TsdbSnapshot",
                              "kind": "swap", "version": "2.42.0", "size": 3, "members": 1, "verdict": "ok",
                              "messages": ["m"], "replaces": ["r"], "notes": ["1 block"]}


def test_a_compose_file_compose_refuses_fails_validation_with_composes_words(tmp_path):
    """With a stand-in `docker compose` (a shell script) that refuses the file: the check fails and shows why."""
    from stackctl.core.checks import FAILED, PASSED
    from stackctl.core.versions import Version
    from stackctl.ops.validate import compose_check
    from stackctl.shells.compose import ComposeTool
    from tests.conftest import stack_from

    stack = stack_from("", tmp_path)
    refusing = ComposeTool(("sh", "-c", "echo 'services.x: additional property y' >&2; exit 15"), Version.parse("2.40.3"))
    result = compose_check(stack, tmp_path, lambda: refusing)
    assert result.status == FAILED and "additional property y" in result.message
    accepting = ComposeTool(("sh", "-c", "exit 0"), Version.parse("2.40.3"))
    assert compose_check(stack, tmp_path, lambda: accepting).status == PASSED


def test_an_elasticsearch_restore_asks_for_aliases_and_no_global_state():
    from stackctl.clients.elasticsearch import Elasticsearch
    from tests.clients.test_http import Scripted
    from tests.fakes.server import Reply

    with Scripted(Reply(200, {"snapshot": {"indices": ["logs"], "shards": {"failed": 0}}})) as server:
        Elasticsearch(server.url, retries=0).restore_snapshot("stackctl", "snap-1", ["logs-a", ".ds-logs-b"])
    request = server.requests[0]
    assert (request.method, request.path, request.query) == (
        "POST", "/_snapshot/stackctl/snap-1/_restore", {"wait_for_completion": ["true"]})
    assert request.json == {"indices": "logs-a,.ds-logs-b", "include_global_state": False, "include_aliases": True}
