"""`stackctl backup` (list, prune, keygen) and `stackctl restore` at the command line: refusals with exit 2 and a
reason instead of a traceback, JSON for scripts, confirmation before anything is replaced or deleted, interrupted
restores named with what to do, and no secret in any output."""

from __future__ import annotations

import json
import os

import pytest

from stackctl.core.archive import RestoreJournal
from stackctl.ops.context import Runtime
from stackctl.shells.state import JournalStore
from tests.conftest import stored_secrets
from tests.fakes.engine import FakeFilesEngine
from tests.support.archives import TSDB, write

STACK = """project: clitest
preset: metrics
services:
  grafana: {enabled: false}
"""


@pytest.fixture
def proj(project):
    project.write(STACK)
    return project


def runtime(services=("prometheus", "alertmanager", "node-exporter")) -> Runtime:
    engine = FakeFilesEngine(project="clitest")
    engine.start_services(*services)
    return Runtime(engine=engine, probe=lambda url: (True, ""), sleep=lambda s: None)


def test_secrets_are_never_kept_unencrypted(cli, proj):
    result = cli("-f", proj.file, "backup", "--include-secrets", runtime=runtime())
    assert result.code == 2 and "must be encrypted" in result.stderr and "Traceback" not in result.output
    assert not (proj.dir / "backups").exists()


def test_encrypt_without_a_terminal_asks_for_a_passphrase_file(cli, proj):
    result = cli("-f", proj.file, "backup", "--encrypt", runtime=runtime())
    assert result.code == 2 and "--passphrase-file" in result.stderr


def test_an_encrypted_backup_of_the_stack_files_prints_no_secret(cli, proj, tmp_path):
    proj.write(STACK.replace("grafana: {enabled: false}", "grafana: {enabled: true}"))
    store = stored_secrets(proj.load())
    secrets = [store.read(name) for name in os.listdir(store.root)]
    assert secrets
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long enough passphrase\n")
    result = cli("-f", proj.file, "backup", "--services", "stack", "--include-secrets", "--passphrase-file",
                 passphrase, "--json", runtime=runtime())
    assert result.code == 0, result.output
    body = json.loads(result.stdout)
    assert body["encrypted"] and body["includes_secrets"] and [s["service"] for s in body["services"]] == ["stack"]
    archive = proj.dir / "backups" / os.path.basename(body["archive"])
    assert archive.stat().st_mode & 0o777 == 0o600
    for value in secrets + ["a long enough passphrase"]:
        assert value not in result.output and value.encode() not in archive.read_bytes()
    dry = cli("-f", proj.file, "restore", archive, "--dry-run", "--services", "stack", "--passphrase-file",
              passphrase, "--json", runtime=runtime())
    for value in secrets:
        assert value not in dry.output


def archives_in(proj, *stamps: str) -> list:
    directory = proj.dir / "backups"
    directory.mkdir(exist_ok=True)
    return [write(directory, {"prometheus": TSDB}, name=f"clitest-{stamp}.stackctl", project="clitest")
            for stamp in stamps]


def test_list_shows_the_projects_archives_newest_first_with_leftovers(cli, proj):
    archives_in(proj, "20260820T100000Z", "20260821T100000Z")
    (proj.dir / "backups" / ".clitest-20260822T100000Z.stackctl.partial").write_bytes(b"crash")
    (proj.dir / "backups" / "clitest-20260823T100000Z.stackctl").write_bytes(b"not an archive")
    result = cli("-f", proj.file, "backup", "list", "--json")
    assert result.code == 0, result.output
    body = json.loads(result.stdout)
    assert [os.path.basename(a["path"]) for a in body["archives"]] == ["clitest-20260821T100000Z.stackctl",
                                                                       "clitest-20260820T100000Z.stackctl"]
    assert [os.path.basename(u["path"]) for u in body["unreadable"]] == ["clitest-20260823T100000Z.stackctl"]
    assert [os.path.basename(p) for p in body["interrupted"]] == [".clitest-20260822T100000Z.stackctl.partial"]
    people = cli("-f", proj.file, "backup", "list")
    assert "clitest-20260821T100000Z.stackctl" in people.stdout and "interrupted backup" in people.stderr


def test_prune_keeps_the_newest_and_touches_nothing_else(cli, proj):
    archives_in(proj, "20260820T100000Z", "20260821T100000Z", "20260822T100000Z")
    (proj.dir / "backups" / "notes.txt").write_text("mine")
    (proj.dir / "backups" / ".clitest-20260819T100000Z.stackctl.partial").write_bytes(b"crash")
    refused = cli("-f", proj.file, "backup", "prune", "--keep", "1")
    assert refused.code == 2 and "--yes" in refused.stderr
    assert len(list((proj.dir / "backups").glob("*.stackctl"))) == 3
    assert cli("-f", proj.file, "backup", "prune", "--keep", "0", "--yes").code == 2
    result = cli("-f", proj.file, "backup", "prune", "--keep", "1", "--yes", "--json")
    assert result.code == 0, result.output
    assert sorted(p.name for p in (proj.dir / "backups").iterdir()) == ["clitest-20260822T100000Z.stackctl",
                                                                        "notes.txt"]
    assert len(json.loads(result.stdout)["deleted"]) == 2


def test_keygen_writes_a_private_identity_once(cli, proj, tmp_path):
    key = tmp_path / "backup.key"
    result = cli("-f", proj.file, "backup", "keygen", key)
    assert result.code == 0 and "public key age1" in result.stdout
    assert key.stat().st_mode & 0o777 == 0o600 and "AGE-SECRET-KEY-1" in key.read_text()
    assert "AGE-SECRET-KEY" not in result.output
    again = cli("-f", proj.file, "backup", "keygen", key)
    assert again.code == 2 and "never overwritten" in again.stderr


def test_restore_needs_an_archive_and_refuses_foreign_files(cli, proj, tmp_path):
    assert cli("-f", proj.file, "restore", runtime=runtime()).code == 2
    foreign = tmp_path / "foreign.stackctl"
    foreign.write_bytes(b"PK\x03\x04 a zip file")
    result = cli("-f", proj.file, "restore", foreign, "--yes", runtime=runtime())
    assert result.code == 2 and "is not a stackctl backup" in result.stderr and "Traceback" not in result.output


def test_resume_and_rollback_need_an_interrupted_restore(cli, proj):
    result = cli("-f", proj.file, "restore", "--resume", "--yes", runtime=runtime())
    assert result.code == 2 and "no interrupted restore" in result.stderr
    both = cli("-f", proj.file, "restore", "--resume", "--rollback", "--yes", runtime=runtime())
    assert both.code == 2 and "exclude each other" in both.stderr


def interrupted(proj) -> None:
    JournalStore.for_stack(proj.load()).save(RestoreJournal("20260820T100000Z-abc", "/b/x.stackctl", "clitest", "t",
                                                            "swapping"))


def test_an_unfinished_restore_blocks_another_restore_and_up(cli, proj):
    (archive,) = archives_in(proj, "20260820T100000Z")
    interrupted(proj)
    result = cli("-f", proj.file, "restore", archive, "--yes", runtime=runtime())
    assert result.code == 2
    assert "did not finish (phase swapping)" in result.stderr and "--resume" in result.stderr
    up = cli("-f", proj.file, "up", runtime=runtime())
    assert up.code == 2 and "restore --rollback" in up.stderr


def test_a_version_the_stack_cannot_read_is_refused_in_the_dry_run(cli, proj):
    directory = proj.dir / "backups"
    directory.mkdir()
    archive = write(directory, {"prometheus": TSDB}, project="clitest", versions={"prometheus": "5.0.0"})
    result = cli("-f", proj.file, "restore", archive, "--dry-run", "--json", runtime=runtime())
    assert result.code == 2
    body = json.loads(result.stdout)
    assert body["dry_run"] and body["refusals"][0].startswith(
        "Prometheus: the backup holds data of 5.0.0, this stack runs 3.14.0; it restores only onto the same major "
        "version or up to 1 newer")


def test_restore_asks_before_replacing_anything(cli, proj):
    (archive,) = archives_in(proj, "20260820T100000Z")
    rt = runtime()
    result = cli("-f", proj.file, "restore", archive, runtime=rt)
    assert result.code == 2 and "pass --yes" in result.stderr
    assert "the whole data directory (volume clitest_prometheus-data) is replaced" in result.stdout
    assert not [c for c in rt.engine.calls if c[0] in ("copy_into_volume", "stop")]
    assert JournalStore.for_stack(proj.load()).load() is None


def test_the_stack_files_come_back_only_alone_and_secrets_only_without_volumes(cli, proj, tmp_path):
    proj.write(STACK.replace("grafana: {enabled: false}", "grafana: {enabled: true}"))
    store = stored_secrets(proj.load())
    old_password = store.read("grafana_admin_password")
    passphrase = tmp_path / "pass"
    passphrase.write_text("a long enough passphrase\n")
    made = cli("-f", proj.file, "backup", "--services", "stack", "--include-secrets", "--passphrase-file", passphrase,
               "--json", runtime=runtime())
    archive = json.loads(made.stdout)["archive"]
    # A new machine: another stack.yaml, other secrets, no containers.
    proj.write(STACK.replace("grafana: {enabled: false}", "grafana: {enabled: true, port: 3301}"))
    store.write("grafana_admin_password", "a-new-machines-password")
    running = cli("-f", proj.file, "restore", archive, "--services", "stack", "--yes", "--passphrase-file",
                  passphrase, runtime=runtime())
    assert running.code == 2 and "only while clitest has no containers" in running.stderr
    with_volumes = runtime(services=())
    with_volumes.engine.volume_names = ["clitest_grafana-data"]
    refused = cli("-f", proj.file, "restore", archive, "--services", "stack", "--yes", "--passphrase-file",
                  passphrase, runtime=with_volumes)
    assert refused.code == 2 and "locking stackctl out" in refused.stderr
    assert store.read("grafana_admin_password") == "a-new-machines-password"
    done = cli("-f", proj.file, "restore", archive, "--services", "stack", "--yes", "--no-verify", "--json",
               "--passphrase-file", passphrase, runtime=runtime(services=()))
    assert done.code == 0, done.output
    assert "port: 3301" not in proj.file.read_text()
    (kept,) = proj.dir.glob("stack.yaml.before-restore-*")
    assert "port: 3301" in kept.read_text()
    assert store.read("grafana_admin_password") == old_password and old_password not in done.output
    assert JournalStore.for_stack(proj.load()).load() is None
