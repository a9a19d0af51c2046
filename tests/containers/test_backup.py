"""`stackctl backup` and `stackctl restore` on a real Docker engine with the local Prometheus 2.42 and Alertmanager
0.25 images: samples and a silence survive `down --volumes` and a fresh stack through a restore; damaged, tampered,
unsafe or wrongly decrypted archives are refused and change nothing; a restore killed while staging, between staging
and the swap, or during the swap leaves the previous data, which --rollback brings back (or --resume finishes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from stackctl.clients.alertmanager import Alertmanager
from stackctl.clients.prometheus import Prometheus
from tests.containers.test_smoke import force_down, local_images, stackctl, write_stack  # noqa: F401
from tests.support import images
from stackctl.shells.archive import ArchiveReader
from tests.support.archives import TSDB, entry, flip, truncate, unchecked, write

pytestmark = pytest.mark.docker

if not images.docker_available():
    pytest.skip("no Docker engine reachable", allow_module_level=True)

PASSPHRASE = "a passphrase long enough"


def urls(stack_file: Path) -> dict[str, str]:
    rows = json.loads(stackctl(stack_file, "urls", "--json").stdout)
    return {row["service"]: row["url"].replace("localhost", "127.0.0.1") for row in rows}


def up(stack_file: Path) -> dict[str, str]:
    result = stackctl(stack_file, "up", "--timeout", "120")
    assert result.returncode == 0, result.stdout + result.stderr
    return urls(stack_file)


def write_marker(prometheus: str, marker: str, values: list[float]) -> list[int]:
    """Samples of bk_marker{set=MARKER}, one a minute up to now; their timestamps (ms)."""
    now = int(time.time() * 1000)
    stamps = [now - (len(values) - i) * 60_000 for i in range(len(values))]
    Prometheus(prometheus).remote_write([({"__name__": "bk_marker", "set": marker}, v, t)
                                         for v, t in zip(values, stamps)])
    return stamps


def markers_at(prometheus: str, stamp_ms: int) -> dict[str, str]:
    """set -> value of bk_marker at that moment."""
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": "bk_marker", "time": stamp_ms / 1000},
                          timeout=10).json()
    return {r["metric"]["set"]: r["value"][1] for r in answer["data"]["result"]}


def volume_listing(project: str, image: str) -> str:
    """Everything in the Prometheus volume (names, sizes, owners, times), as a helper container sees it; not the
    volume's root itself, whose time changes when staging is made and removed in it (`xargs -r`: with only a live
    head and no blocks, a bare `ls -lnd` would list the root)."""
    return subprocess.run(["docker", "run", "--rm", "-u", "0", "-v", f"{project}_prometheus-data:/v", "--entrypoint",
                           "/bin/sh", image, "-c", "cd /v && find . -mindepth 1 -path ./wal -prune -o -path ./chunks_head -prune "
                           "-o -name queries.active -prune -o -print | sort | xargs -r ls -lnd; "
                           # the live head's directories by inode: a swapped data directory has new ones
                           "ls -A; stat -c '%i %n' wal chunks_head 2>/dev/null; true"],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images):  # noqa: F811
    directory = tmp_path_factory.mktemp("backup-stack")
    project = f"backup-{uuid.uuid4().hex[:8]}"
    stack_file = write_stack(directory, project, local_images)
    try:
        yield {"file": stack_file, "project": project, "dir": directory, "image": local_images["prometheus"],
               **up(stack_file)}
    finally:
        force_down(stack_file)


@pytest.fixture(scope="module")
def archive_b(stack):
    """An archive of the stack holding marker B and a silence; afterwards the stack is fresh again with marker A
    (the "previous data" every later restore must keep or bring back)."""
    b_stamps = write_marker(stack["prometheus"], "B", [1.0, 2.0, 3.0])
    from datetime import datetime, timedelta, timezone

    Alertmanager(stack["alertmanager"]).create_silence({"alertname": "BackupTest", "team": "ops"},
                                                       datetime.now(timezone.utc),
                                                       datetime.now(timezone.utc) + timedelta(hours=3),
                                                       "backup-test", "kept across a restore")
    result = stackctl(stack["file"], "backup", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    archive = Path(json.loads(result.stdout)["archive"])
    down = stackctl(stack["file"], "down", "--volumes", "--yes")
    assert down.returncode == 0, down.stderr
    stack.update(up(stack["file"]))
    a_stamps = write_marker(stack["prometheus"], "A", [7.0, 8.0])
    return {"path": archive, "b_stamps": b_stamps, "a_stamps": a_stamps}


def data_is(stack, archive_b, marker: str) -> bool:
    """Prometheus holds the samples of `marker` (A or B) and not those of the other."""
    other = "A" if marker == "B" else "B"
    return (marker in markers_at(stack["prometheus"], archive_b[f"{marker.lower()}_stamps"][-1])
            and other not in markers_at(stack["prometheus"], archive_b[f"{other.lower()}_stamps"][-1]))


def test_round_trip_brings_back_the_samples_and_the_silence(stack, archive_b, previous_data):
    # The fresh stack has A only: no B, no silence.
    assert data_is(stack, archive_b, "A")
    assert not [s for s in Alertmanager(stack["alertmanager"]).silences() if s["createdBy"] == "backup-test"]
    dry = stackctl(stack["file"], "restore", str(archive_b["path"]), "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["refusals"] == []
    assert data_is(stack, archive_b, "A")  # --dry-run changed nothing
    result = stackctl(stack["file"], "restore", str(archive_b["path"]), "--yes", "--json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and {c["status"] for c in report["verify"]["checks"]} <= {"passed", "skipped"}
    assert set(report["restored"]) == {"prometheus", "alertmanager"}
    # Every sample of B is back at its own time, with its value; A (written after the backup) is gone.
    for stamp, value in zip(archive_b["b_stamps"], ("1", "2", "3")):
        assert markers_at(stack["prometheus"], stamp)["B"] == value
    assert data_is(stack, archive_b, "B")
    (silence,) = [s for s in Alertmanager(stack["alertmanager"]).silences() if s["createdBy"] == "backup-test"]
    assert silence["status"]["state"] == "active" and silence["comment"] == "kept across a restore"
    assert sorted((m["name"], m["value"]) for m in silence["matchers"]) == [("alertname", "BackupTest"),
                                                                           ("team", "ops")]
    # The data belongs to Prometheus' user and nothing of the restore is left in the volume.
    listing = volume_listing(stack["project"], stack["image"])
    assert ".stackctl-restore" not in listing
    assert all(line.split()[2:4] == ["65534", "65534"] for line in listing.splitlines() if "./01" in line)
    assert not (stack["dir"] / ".stackctl" / "restore" / "journal.json").exists()
    # Restoring the same archive again does not create the silence twice.
    again = stackctl(stack["file"], "restore", str(archive_b["path"]), "--yes", "--json", "--no-verify",
                     "--services", "alertmanager")
    assert again.returncode == 0, again.stderr
    assert len([s for s in Alertmanager(stack["alertmanager"]).silences()
                if s["createdBy"] == "backup-test" and s["status"]["state"] == "active"]) == 1


@pytest.fixture
def previous_data(stack, archive_b):
    """The stack holds the previous data, A only (a test before may have restored B, or failed half-way)."""
    if journal_phase(stack) is not None:
        stackctl(stack["file"], "restore", "--rollback", "--yes", timeout=300)
    if not data_is(stack, archive_b, "A") or stackctl(stack["file"], "status").returncode != 0:
        down = stackctl(stack["file"], "down", "--volumes", "--yes")
        assert down.returncode == 0, down.stderr
        stack.update(up(stack["file"]))
        archive_b["a_stamps"] = write_marker(stack["prometheus"], "A", [7.0, 8.0])
    return archive_b


def test_secrets_need_encryption_and_a_wrong_passphrase_is_refused(stack, tmp_path):
    plain = stackctl(stack["file"], "backup", "--include-secrets", "--output", str(tmp_path))
    assert plain.returncode == 2 and "must be encrypted" in plain.stderr
    assert list(tmp_path.iterdir()) == []
    secret_file = tmp_path / "pass"
    secret_file.write_text(PASSPHRASE + "\n")
    made = stackctl(stack["file"], "backup", "--include-secrets", "--passphrase-file", str(secret_file), "--output",
                    str(tmp_path / "out"), "--json")
    assert made.returncode == 0, made.stderr
    archive = Path(json.loads(made.stdout)["archive"])
    assert json.loads(made.stdout)["encrypted"] and b"grafana" not in archive.read_bytes()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    before = volume_listing(stack["project"], stack["image"])
    refused = stackctl(stack["file"], "restore", str(archive), "--yes", "--passphrase-file", str(wrong))
    assert refused.returncode == 2 and "wrong passphrase" in refused.stderr
    assert volume_listing(stack["project"], stack["image"]) == before
    dry = stackctl(stack["file"], "restore", str(archive), "--dry-run", "--json", "--passphrase-file",
                   str(secret_file))
    assert dry.returncode == 0, dry.stderr
    assert [i["service"] for i in json.loads(dry.stdout)["items"]] == ["prometheus", "alertmanager"]


def crafted(kind: str, archive_b, directory: Path) -> Path:
    """A damaged or malicious archive of the kind named."""
    directory.mkdir()
    if kind.startswith("flipped byte") or kind == "truncated":
        path = directory / archive_b["path"].name
        path.write_bytes(archive_b["path"].read_bytes())
        if kind == "truncated":
            truncate(path, 300)
            return path
        with ArchiveReader(path) as reader:
            segment = reader.manifest.segment("stack" if "stack files" in kind else "prometheus")
            middle = reader.data_offset + segment.offset + segment.length // 2
        flip(path, middle)
        return path
    evil = {"../ member": entry("../../../../tmp/stackctl-escaped", b"escaped"),
            "absolute member": entry("/tmp/stackctl-escaped", b"escaped"),
            "link outside": entry("01H/escape", kind="symlink", target="../../../../tmp"),
            "device": entry("01H/null", kind="char-device")}.get(kind)
    if evil is not None:
        with unchecked():
            return write(directory, {"prometheus": TSDB + [evil]}, project=archive_b["path"].name.split("-2")[0])
    # "renamed data": the manifest is clean, the data behind it is not.
    return write(directory, {"prometheus": TSDB + [entry("escaped", b"escaped")]},
                 tar_names={"escaped": "../../../../tmp/stackctl-escaped"})


KINDS = ["flipped byte", "flipped byte in the stack files, not restored", "truncated", "../ member", "absolute member", "link outside", "device", "renamed data"]
REASONS = {"flipped byte": "corrupted", "flipped byte in the stack files, not restored": "corrupted",
           "truncated": "truncated", "../ member": "'..' component",
           "absolute member": "an absolute path", "link outside": "outside its target directory",
           "device": "devices, fifos and sockets never are", "renamed data": "where the manifest says file 'escaped'"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_archive_is_refused_and_changes_nothing(stack, archive_b, previous_data, tmp_path, kind):
    path = crafted(kind, archive_b, tmp_path / "crafted")
    before = volume_listing(stack["project"], stack["image"])
    result = stackctl(stack["file"], "restore", str(path), "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert REASONS[kind] in result.stderr and "Traceback" not in result.stderr
    assert volume_listing(stack["project"], stack["image"]) == before  # no staging left, nothing swapped
    assert not Path("/tmp/stackctl-escaped").exists()
    assert not (stack["dir"] / ".stackctl" / "restore" / "journal.json").exists()
    assert data_is(stack, archive_b, "A")


def test_a_restore_the_service_cannot_start_on_is_rolled_back(stack, archive_b, previous_data, tmp_path):
    """Checksums all match, but the data is not a TSDB Prometheus can open: it does not become healthy, and the
    restore puts the previous data back by itself."""
    directory = tmp_path / "bad-tsdb"
    directory.mkdir()
    block = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    # `wal` must be a directory: as a file, Prometheus fails to open its storage and exits.
    archive = write(directory, {"prometheus": [entry(block, kind="dir", mode=0o755),
                                               entry(f"{block}/meta.json", b"{}"),
                                               entry("wal", b"a file where the WAL directory belongs")]},
                    project=archive_b["path"].name.split("-2")[0])
    before = volume_listing(stack["project"], stack["image"])
    result = stackctl(stack["file"], "restore", str(archive), "--yes", "--services", "prometheus", timeout=400)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed and was rolled back: the previous data is in place" in result.stderr
    assert "Prometheus did not become healthy" in result.stderr
    assert data_is(stack, archive_b, "A")
    assert volume_listing(stack["project"], stack["image"]).replace("\n", "") != "" and journal_phase(stack) is None
    assert ".stackctl-restore" not in volume_listing(stack["project"], stack["image"])
    assert block not in volume_listing(stack["project"], stack["image"])
    assert sorted(line.split()[-1] for line in before.splitlines() if "./01" in line) == sorted(
        line.split()[-1] for line in volume_listing(stack["project"], stack["image"]).splitlines() if "./01" in line)


def journal_phase(stack) -> str | None:
    try:
        return json.loads((stack["dir"] / ".stackctl" / "restore" / "journal.json").read_text())["phase"]
    except (OSError, ValueError):
        return None


def swap_helper_running(client, project: str) -> bool:
    """The helper container running the swap's finish script is at work."""
    running = client.containers.list(filters={"label": f"org.stackctl.helper-of={project}", "status": "running"})
    return any("moved-in" in " ".join(c.attrs["Config"]["Cmd"] or []) for c in running)


def many_old_entries(stack, count: int = 1500) -> None:
    """Top-level files in Prometheus' data directory (it ignores them), so that moving the old data aside takes
    long enough to be killed in the middle of; a rollback must bring every one of them back."""
    subprocess.run(["docker", "run", "--rm", "-u", "0", "-v", f"{stack['project']}_prometheus-data:/v", "--entrypoint",
                    "/bin/sh", stack["image"], "-c", f"cd /v && for i in $(seq 1 {count}); do echo $i > keep-$i; done "
                    "&& chown 65534:65534 keep-*"], check=True, capture_output=True)


def kept_entries(stack) -> int:
    return volume_listing(stack["project"], stack["image"]).count("./keep-")


def restore_killed(stack, archive_b, when) -> str:
    """Start a restore, SIGKILL it the moment `when()` is true; the phase its journal was left in."""
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "stackctl", "-f", str(stack["file"]), "restore",
                                str(archive_b["path"]), "--yes", "--no-verify"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not when() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert process.poll() is None, "the restore finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    return journal_phase(stack)


def after_kill_up_refuses_and_rollback_brings_the_old_data_back(stack, archive_b) -> None:
    refused = stackctl(stack["file"], "up")
    assert refused.returncode == 2 and "restore --resume" in refused.stderr and "--rollback" in refused.stderr
    back = stackctl(stack["file"], "restore", "--rollback", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert data_is(stack, archive_b, "A")
    assert ".stackctl-restore" not in volume_listing(stack["project"], stack["image"])
    assert journal_phase(stack) is None
    assert stackctl(stack["file"], "status").returncode == 0


def test_killed_while_staging_nothing_live_was_touched(stack, archive_b, previous_data):
    phase = restore_killed(stack, archive_b, lambda: journal_phase(stack) == "staging")
    assert phase == "staging"
    assert data_is(stack, archive_b, "A")  # Prometheus kept running on its data
    resume = stackctl(stack["file"], "restore", "--resume", "--yes")
    assert resume.returncode == 2 and "interrupted while staging" in resume.stderr
    after_kill_up_refuses_and_rollback_brings_the_old_data_back(stack, archive_b)


def test_killed_between_staging_and_the_swap_the_previous_data_stays(stack, archive_b, previous_data):
    phase = restore_killed(stack, archive_b, lambda: journal_phase(stack) == "swapping")
    assert phase == "swapping"
    listing = volume_listing(stack["project"], stack["image"])
    assert "moved-out" not in listing  # the swap had not begun
    after_kill_up_refuses_and_rollback_brings_the_old_data_back(stack, archive_b)


def test_killed_during_the_swap_rollback_brings_the_previous_data_back(stack, archive_b, previous_data):
    import docker

    client = docker.from_env()
    many_old_entries(stack)
    phase = restore_killed(stack, archive_b, lambda: swap_helper_running(client, stack["project"]))
    assert phase == "swapping"
    after_kill_up_refuses_and_rollback_brings_the_old_data_back(stack, archive_b)
    assert kept_entries(stack) == 1500


def test_killed_during_the_swap_resume_finishes_with_the_backups_data(stack, archive_b, previous_data):
    import docker

    client = docker.from_env()
    many_old_entries(stack)
    phase = restore_killed(stack, archive_b, lambda: swap_helper_running(client, stack["project"]))
    assert phase == "swapping"
    done = stackctl(stack["file"], "restore", "--resume", "--yes", "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["verify"]["ok"]
    assert data_is(stack, archive_b, "B")
    assert ".stackctl-restore" not in volume_listing(stack["project"], stack["image"])
    assert kept_entries(stack) == 0  # the whole data directory is the backup's
    assert journal_phase(stack) is None
