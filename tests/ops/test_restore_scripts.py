"""The scripts that swap a volume's data during a restore, run by a real POSIX shell on a real directory: killed after
any rename (any subset of entries moved, in either phase), finishing leaves exactly the new data and rolling back
exactly the old, never a mix. (In production they run in the service's image, busybox sh; tests/containers runs
them there too.)"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from stackctl.ops.restore import HELPER_MOUNT, STAGE_ROOT, commit_script, finish_script, rollback_script

ID = "20260820T100000Z-abcdef"
OLD = {"01OLD/index": "old index", "wal/00000001": "old wal", ".hidden": "old dot", "lock": ""}
NEW = {"01NEW/index": "new index", "01NEW/chunks/000001": "new chunk", "..odd": "new dots", "queries.active": "q"}


def tops(files: dict[str, str]) -> list[str]:
    return sorted({name.split("/")[0] for name in files})


def lay_out(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def run(script: str, root: Path) -> None:
    result = subprocess.run(["sh", "-c", script.replace(f"cd {HELPER_MOUNT}", f"cd '{root}'", 1)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def crash_states():
    """(moved old entries, moved new entries, markers): every state a kill can leave behind."""
    for k in range(len(tops(OLD)) + 1):
        for moved in itertools.combinations(tops(OLD), k):
            yield moved, (), ()
    for k in range(len(tops(NEW)) + 1):
        for moved in itertools.combinations(tops(NEW), k):
            yield tuple(tops(OLD)), moved, ("moved-out",)
    yield tuple(tops(OLD)), tuple(tops(NEW)), ("moved-out", "moved-in")


def volume_in(state, tmp_path: Path) -> Path:
    moved_old, moved_new, markers = state
    root = tmp_path / "volume"
    shutil.rmtree(root, ignore_errors=True)
    stage = root / STAGE_ROOT / ID
    lay_out(root, OLD)
    lay_out(stage / "new", NEW)
    (stage / "old").mkdir(parents=True)
    for name in moved_old:
        (root / name).rename(stage / "old" / name)
    for name in moved_new:
        (stage / "new" / name).rename(root / name)
    for marker in markers:
        (stage / marker).touch()
    return root


STATES = list(crash_states())


@pytest.mark.parametrize("state", STATES, ids=[f"old{len(s[0])}-new{len(s[1])}-{'+'.join(s[2]) or 'none'}"
                                               for s in STATES])
def test_from_any_crash_state_finish_gives_the_new_data_and_rollback_the_old(state, tmp_path):
    root = volume_in(state, tmp_path)
    run(finish_script(ID), root)
    run(finish_script(ID), root)  # again: nothing changes
    assert {k: v for k, v in tree(root).items() if not k.startswith(STAGE_ROOT)} == NEW
    run(commit_script(ID), root)
    assert tree(root) == NEW and not (root / STAGE_ROOT).exists()

    root = volume_in(state, tmp_path)
    run(rollback_script(ID), root)
    run(rollback_script(ID), root)
    assert tree(root) == OLD and not (root / STAGE_ROOT).exists()


def test_rollback_after_the_service_wrote_into_the_new_data_still_gives_the_old(tmp_path):
    """A restored service that started, wrote its WAL, then failed its health check: rolled back to the old data."""
    root = volume_in(STATES[-1], tmp_path)
    (root / "wal").mkdir()
    (root / "wal" / "00000002").write_text("written by the restored service")
    run(rollback_script(ID), root)
    assert tree(root) == OLD


def test_commit_refuses_to_delete_the_old_data_before_the_swap_finished(tmp_path):
    root = volume_in((tuple(tops(OLD)), ("01NEW",), ("moved-out",)), tmp_path)
    result = subprocess.run(["sh", "-c", commit_script(ID).replace(f"cd {HELPER_MOUNT}", f"cd '{root}'", 1)],
                            capture_output=True, text=True)
    assert result.returncode == 3 and "was not swapped in" in result.stderr
    assert (root / STAGE_ROOT / ID / "old" / "01OLD" / "index").exists()


def test_finish_refuses_when_nothing_was_staged(tmp_path):
    root = tmp_path / "volume"
    lay_out(root, OLD)
    result = subprocess.run(["sh", "-c", finish_script(ID).replace(f"cd {HELPER_MOUNT}", f"cd '{root}'", 1)],
                            capture_output=True, text=True)
    assert result.returncode == 3 and "nothing staged" in result.stderr
    assert tree(root) == OLD


def killed_at(script: str, root: Path, k: int, bin_dir: Path) -> bool:
    """Run `script` in `root` and SIGKILL its shell just before its k-th rename; True if it got that far."""
    counter = bin_dir / "count"
    counter.write_text("0")
    mv = bin_dir / "mv"
    mv.write_text(f"""#!/bin/sh
n=$(( $(cat {counter}) + 1 ))
echo $n > {counter}
if [ $n -eq {k} ]; then kill -9 $PPID; exit 1; fi
exec {shutil.which("mv")} "$@"
""")
    mv.chmod(0o755)
    subprocess.run(["sh", "-c", script.replace(f"cd {HELPER_MOUNT}", f"cd '{root}'", 1)], capture_output=True,
                   env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    return int(counter.read_text()) >= k


SCRIPTS = {"finish": finish_script(ID), "rollback": rollback_script(ID), "commit": commit_script(ID)}


@pytest.mark.parametrize("first, then", [("finish", "finish"), ("finish", "rollback"), ("rollback", "rollback"),
                                         ("rollback", "finish"), ("commit", "commit")])
def test_each_script_killed_at_every_rename_then_run_again(first, then, tmp_path):
    """Killed for real (SIGKILL before its k-th `mv`, the moves of the staging included), the next script still ends
    in exactly the old or exactly the new data: finishing after a killed rollback too, as long as the rollback had
    not started deleting (then nothing is left to finish: it refuses, and a rollback completes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    start = STATES[0] if first == "finish" else STATES[-1]  # nothing moved yet / all swapped in
    k = 1
    while True:
        root = volume_in(start, tmp_path)
        if not killed_at(SCRIPTS[first], root, k, bin_dir):
            break  # the script never got to a k-th rename: every point was tried
        staged = (root / STAGE_ROOT / ID).is_dir()
        if then == "finish" and not staged:
            result = subprocess.run(["sh", "-c", SCRIPTS["finish"].replace(f"cd {HELPER_MOUNT}", f"cd '{root}'", 1)],
                                    capture_output=True, text=True)
            assert result.returncode == 3, (first, k)  # the rollback had begun deleting: nothing to finish
            run(SCRIPTS["rollback"], root)
            expected = OLD
        else:
            run(SCRIPTS[then], root)
            expected = {"finish": NEW, "rollback": OLD, "commit": NEW}[then]
        assert {n: v for n, v in tree(root).items() if not n.startswith(STAGE_ROOT)} == expected, (first, k)
        if then != "finish":
            assert not (root / STAGE_ROOT).exists(), (first, k)
        k += 1
    assert k > (1 if first == "commit" else len(tops(OLD)))  # it really was killed at every rename it makes
