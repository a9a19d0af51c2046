"""The keys scripts read from `--json` of rotate and restore, where a restore keeps its journal (the README and
the messages of an interrupted restore name it), and a bundle file removed by hand before a render."""

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
