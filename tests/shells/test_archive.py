"""The archive file: what is written reads back byte for byte, with every check; a plain archive is an ordinary zstd
stream of tar segments; and every damaged, tampered, foreign or wrongly decrypted archive is refused with its reason
before anything of it is used."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from stackctl.core.archive import DIR, FILE, HARDLINK, SYMLINK, ArchiveError
from stackctl.core.errors import StackError
from stackctl.shells.archive import (RESERVE, ArchiveReader, ArchiveWriter, Unsealing, list_archives, peek,
                                     seal_with_key_file, seal_with_passphrase)
from tests.support.archives import TSDB, data_offset, entry, flip, truncate, unchecked, write

PASSPHRASE = "correct horse battery staple"


def read_all(path: Path, unsealing: Unsealing | None = None) -> dict[str, dict[str, bytes]]:
    """Every service's members and their data, through every check."""
    found: dict[str, dict[str, bytes]] = {}
    with ArchiveReader(path, unsealing) as reader:
        for segment in reader.manifest.segments:
            found[segment.service] = {m.path: b"".join(chunks) for m, chunks in reader.members(segment)}
    return found


def test_round_trip_of_files_directories_and_links(tmp_path):
    segments = {"prometheus": TSDB + [entry("01H/alias", kind=SYMLINK, target="index"),
                                      entry("01H/hard", kind=HARDLINK, target="01H/index")],
                "alertmanager": [entry("silences.json", b"[]")]}
    path = write(tmp_path, segments)
    assert read_all(path) == {"prometheus": {m.path: d for m, d in segments["prometheus"]},
                              "alertmanager": {"silences.json": b"[]"}}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*partial"))


def test_a_plain_archive_is_a_zstd_stream_of_tar_segments(tmp_path):
    """Operators can look inside with standard tools: zstd -dc FILE | tar -tiv (the header is a skippable frame)."""
    path = write(tmp_path, {"prometheus": TSDB, "alertmanager": [entry("silences.json", b"[]")]})
    with path.open("rb") as handle:
        plain = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True).read()
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:", ignore_zeros=True) as tar:  # tar -i
        names = tar.getnames()
    assert names == [m.path for m, _ in TSDB] + ["silences.json"]


def test_the_manifest_comes_first_and_outgrowing_its_room_relocates_the_data(tmp_path):
    many = [entry(f"dir/file-{i:05d}-{'x' * 80}", b"%d" % i) for i in range(800)]  # a manifest > 64 KiB
    path = write(tmp_path, {"prometheus": [entry("dir", kind=DIR)] + many})
    assert data_offset(path) > 8 + RESERVE
    assert read_all(path)["prometheus"]["dir/file-00799-" + "x" * 80] == b"799"
    with path.open("rb") as handle:
        assert handle.read(8 + 18)[8:] == b"STACKCTL-BACKUP 1\n"


def test_peek_reads_the_plain_summary_without_the_data(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB})
    info = peek(path)
    assert info.summary["services"] == ["prometheus"] and not info.encrypted and info.size == path.stat().st_size


@pytest.mark.parametrize("where", ["data", "member data", "manifest", "header padding", "frame header"])
def test_a_flipped_byte_anywhere_is_refused(tmp_path, where):
    path = write(tmp_path, {"prometheus": TSDB})
    start = data_offset(path)
    raw = path.read_bytes()
    offset = {"data": start + 2,  # inside the zstd frame header
              "member data": start + (path.stat().st_size - start) // 2,
              "manifest": raw.index(b'"format":"stackctl-backup"') + 12,
              "header padding": start - 100,
              "frame header": 5}[where]
    flip(path, offset)
    with pytest.raises(ArchiveError):
        read_all(path)


def test_a_truncated_archive_is_refused_before_any_member_is_read(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB})
    truncate(path, 10)
    with pytest.raises(ArchiveError, match="truncated"):
        ArchiveReader(path)
    truncate(path, path.stat().st_size - 100)  # inside the header
    with pytest.raises(ArchiveError, match="truncated|not a stackctl backup"):
        ArchiveReader(path)


def test_bytes_appended_to_an_archive_are_refused(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB})
    with path.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(ArchiveError, match="4 bytes more than its manifest"):
        ArchiveReader(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x28\xb5\x2f\xfd" + b"\0" * 20, b"\x1f\x8b" + os.urandom(100)])
def test_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "foreign.stackctl"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match="not a stackctl backup"):
        ArchiveReader(path)


@pytest.mark.parametrize("member, message", [
    (entry("../evil", b"x"), "'..' component"),
    (entry("/etc/cron.d/evil", b"x"), "an absolute path"),
    (entry("link", kind=SYMLINK, target="../../../etc"), "outside its target directory"),
    (entry("link", kind=SYMLINK, target="/etc/passwd"), "absolute path /etc/passwd"),
    (entry("dev/null", kind="char-device"), "devices, fifos and sockets never are"),
])
def test_members_escaping_their_target_are_refused_from_the_manifest(tmp_path, member, message):
    with unchecked():
        path = write(tmp_path, {"prometheus": TSDB + [member]})
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError, match=message):
            list(reader.members(reader.manifest.segments[0]))


def test_the_writer_refuses_to_write_an_unsafe_member(tmp_path):
    with pytest.raises(StackError, match="cannot be backed up as it is"):
        write(tmp_path, {"prometheus": [entry("../evil", b"x")]})
    assert list(tmp_path.iterdir()) == []  # not even a partial file


def test_data_renamed_behind_the_manifests_back_is_refused(tmp_path):
    """The manifest lists a safe name, the tar stream holds ../evil: refused at that entry, before its data."""
    path = write(tmp_path, {"prometheus": [entry("evil", b"x")]}, tar_names={"evil": "../evil"})
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError, match=r"holds file '../evil' where the manifest says file 'evil'"):
            list(reader.members(reader.manifest.segments[0]))


def test_a_member_whose_bytes_changed_is_refused_when_its_last_chunk_is_read(tmp_path):
    good = entry("index", b"A" * 5000)
    member, _ = good
    path = write(tmp_path, {"prometheus": [(member, b"B" * 5000)]})  # the data does not match the manifest's sum
    with ArchiveReader(path) as reader:
        members = reader.members(reader.manifest.segments[0])
        _, chunks = next(members)
        with pytest.raises(ArchiveError, match="does not match its SHA-256"):
            b"".join(chunks)


def test_passphrase_encryption_round_trip_and_refusals(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB}, sealing=seal_with_passphrase(PASSPHRASE))
    raw = path.read_bytes()
    assert b"chunk-bytes" not in raw and b"01H/index" not in raw  # neither data nor manifest in clear
    assert peek(path).encrypted
    assert read_all(path, Unsealing(PASSPHRASE))["prometheus"]["01H/index"] == b"index" * 100
    with pytest.raises(ArchiveError, match="wrong passphrase"):
        ArchiveReader(path, Unsealing("not the passphrase"))
    with pytest.raises(ArchiveError, match="encrypted with a passphrase"):
        ArchiveReader(path)


def test_tampered_encrypted_data_does_not_decrypt(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB}, sealing=seal_with_passphrase(PASSPHRASE))
    flip(path, data_offset(path) + (path.stat().st_size - data_offset(path)) // 2)
    with pytest.raises(ArchiveError, match="does not decrypt|corrupted"):
        read_all(path, Unsealing(PASSPHRASE))


def test_key_file_encryption_needs_the_identity_to_open(tmp_path):
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"# a comment\n{identity}\n")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"{identity.to_public()}\n")
    archives = tmp_path / "a"
    archives.mkdir()
    path = write(archives, {"prometheus": TSDB}, sealing=seal_with_key_file(recipients))
    assert read_all(path, Unsealing(key_file=key))["prometheus"]["01H/meta.json"] == b'{"ulid":"01H"}'
    with pytest.raises(StackError, match="holds no age identity"):
        ArchiveReader(path, Unsealing(key_file=recipients))
    other = tmp_path / "other.txt"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with pytest.raises(ArchiveError, match="does not decrypt with this key"):
        ArchiveReader(path, Unsealing(key_file=other))


def test_short_passphrases_and_bad_key_files_are_refused(tmp_path):
    with pytest.raises(StackError, match="too short"):
        seal_with_passphrase("short")
    bad = tmp_path / "bad"
    bad.write_text("not a key\n")
    with pytest.raises(StackError, match="neither an age identity"):
        seal_with_key_file(bad)


def test_a_failed_backup_leaves_no_file(tmp_path):
    writer = ArchiveWriter(tmp_path, "p-20260820T100000Z.stackctl")
    with pytest.raises(RuntimeError):
        with writer.segment("prometheus") as out:
            out.add_bytes("a", b"x")
            raise RuntimeError("the service went away")
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_grows_while_copied_is_refused(tmp_path):
    writer = ArchiveWriter(tmp_path, "p-20260820T100000Z.stackctl")
    with pytest.raises(StackError, match="grew while it was being copied"):
        with writer.segment("prometheus") as out:
            out.add_file("wal", 3, [b"ab", b"cd"])
    writer.abort()


def test_listing_finds_archives_of_the_project_and_leftovers(tmp_path):
    write(tmp_path, {"prometheus": TSDB}, name="test-20260820T100000Z.stackctl")
    write(tmp_path, {"prometheus": TSDB}, name="test-20260821T100000Z.stackctl")
    write(tmp_path, {"prometheus": TSDB}, name="other-20260821T100000Z.stackctl")
    (tmp_path / "test-20260822T100000Z.stackctl").write_bytes(b"garbage")
    (tmp_path / ".test-20260823T100000Z.stackctl.partial").write_bytes(b"left by a crash")
    (tmp_path / "notes.txt").write_text("mine")
    listing = list_archives(tmp_path, "test")
    assert [a.path.name for a in listing.archives] == ["test-20260821T100000Z.stackctl",
                                                       "test-20260820T100000Z.stackctl"]
    assert [p.name for p, _ in listing.unreadable] == ["test-20260822T100000Z.stackctl"]
    assert [p.name for p in listing.stale_partials] == [".test-20260823T100000Z.stackctl.partial"]


def test_a_partial_archive_being_written_is_not_a_leftover(tmp_path):
    writer = ArchiveWriter(tmp_path, "test-20260820T100000Z.stackctl")
    try:
        assert list_archives(tmp_path, "test").stale_partials == []
    finally:
        writer.abort()


def test_only_files_and_directories_extract_to_local_staging(tmp_path):
    path = write(tmp_path, {"alertmanager": [entry("silences.json", b"[1]"),
                                             entry("l", kind=SYMLINK, target="silences.json")]})
    staging = tmp_path / "staging"
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError, match="'l' is a symlink"):
            reader.extract_to(reader.manifest.segments[0], staging)
    assert (staging / "silences.json").read_bytes() == b"[1]"
    assert oct((staging / "silences.json").stat().st_mode & 0o777) == "0o600"


def test_retar_renames_checks_and_leaves_out(tmp_path):
    path = write(tmp_path, {"prometheus": TSDB})
    with ArchiveReader(path) as reader:
        stream = b"".join(reader.retar(reader.manifest.segments[0],
                                       lambda p: None if p.endswith("tombstones") else f"stage/{p}", 65534, 65534,
                                       parents=("stage",)))
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["stage", "stage/01H", "stage/01H/chunks", "stage/01H/chunks/000001",
                                       "stage/01H/index", "stage/01H/meta.json"]
    assert {(i.uid, i.gid) for i in infos} == {(65534, 65534)}
    assert FILE and DIR  # names used in the table above
