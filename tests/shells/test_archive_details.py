"""Details of backup archives a user sees: which lines of a key file count, what a bad key file is told, how an
archive says its data does not match its manifest, which files `backup list` takes for leftovers of interrupted
backups, the reason it gives for an archive it cannot read, that data sections larger than the copy buffer survive
the manifest's relocation, and the reasons a link member is refused."""

from __future__ import annotations

import errno
import random

import pytest

from stackctl.core.archive import DIR, SYMLINK, ArchiveError, Manifest, Segment, check_members
from stackctl.core.errors import StackError
from stackctl.shells import archive as shell
from stackctl.shells.archive import (RESERVE, ArchiveReader, ArchiveWriter, Unsealing, list_archives,
                                     seal_with_key_file, tar_header, tar_padding)
from tests.shells.test_archive import read_all
from tests.support.archives import TSDB, data_offset, entry, write

# --- key files -------------------------------------------------------------------------------------------------------


def test_a_key_file_with_comments_and_blank_lines_encrypts_to_its_keys(tmp_path):
    """Blank lines and comments (also indented ones) are not keys; an identity line encrypts to its public key and a
    recipient line to itself, and the archive opens with the identity."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    other = pyrage.x25519.Identity.generate()
    key = tmp_path / "keys.txt"
    key.write_text(f"# created by age-keygen\n\n   # public key: {identity.to_public()}\n{identity}\n\n"
                   f"  {other.to_public()}  \n")
    sealing = seal_with_key_file(key)
    assert sealing.method == "key"
    assert [str(r) for r in sealing.recipients] == [str(identity.to_public()), str(other.to_public())]
    archives = tmp_path / "a"
    archives.mkdir()
    path = write(archives, {"prometheus": TSDB}, sealing=sealing)
    with ArchiveReader(path, Unsealing(key_file=key)) as reader:
        assert reader.header["encryption"] == {"method": "key"}


def test_a_line_that_is_no_age_key_is_refused_with_how_to_make_one(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("not a key\n")
    with pytest.raises(StackError) as caught:
        seal_with_key_file(bad)
    assert str(caught.value) == (f"{bad}: a line is neither an age identity (AGE-SECRET-KEY-1...) nor an age recipient "
                                 "(age1...); make one with `age-keygen` or `stackctl backup keygen`")


def test_a_key_file_of_comments_only_holds_no_key(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(StackError, match=f"^{empty} holds no age key$"):
        seal_with_key_file(empty)


# --- data that does not match the manifest ----------------------------------------------------------------------------


def write_with_unlisted_entry(directory, listed, unlisted):
    """An archive whose tar stream holds one entry more than its manifest lists."""
    writer = ArchiveWriter(directory, "test-20260820T100000Z.stackctl")
    with writer.segment("prometheus") as out:
        for member, data in [*listed, unlisted]:
            out._write(tar_header(member.path, member))
            out._write(data + tar_padding(len(data)))
        out.members.extend(member for member, _ in listed)
    members, offset, length, frames = writer.last
    segment = Segment("prometheus", "Prometheus", "TsdbSnapshot", "img:2.42.0", "2.42.0", members, offset, length,
                      "s", "f", frames=frames)
    manifest = Manifest(project="test", stackctl_version="0.1.0", bundle_stackctl_version="0.1.0", created="c",
                        finished="f", encrypted=False, includes_secrets=False, segments=(segment,))
    return writer.finish(manifest, {"project": "test", "created": "c", "services": ["prometheus"]})


def test_data_beyond_the_manifests_members_is_refused_naming_it(tmp_path):
    path = write_with_unlisted_entry(tmp_path, [entry("index", b"i")], entry("extra", b"x"))
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError) as caught:
            list(reader.members(reader.manifest.segments[0]))
    assert str(caught.value) == ("prometheus: the data holds file 'extra' where the manifest says nothing more: "
                                 "corrupted or tampered with")


def test_a_long_member_name_is_cut_to_200_characters_in_the_refusal(tmp_path):
    long = "d/" + "n" * 240
    path = write(tmp_path, {"prometheus": [entry("d", kind=DIR), entry(long, b"x")]}, tar_names={long: "other"})
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError) as caught:
            list(reader.members(reader.manifest.segments[0]))
    assert str(caught.value) == ("prometheus: the data holds file 'other' where the manifest says file "
                                 f"{long[:200]!r}: corrupted or tampered with")


# --- a large data section behind a relocated manifest -----------------------------------------------------------------


def test_a_data_section_larger_than_the_copy_buffer_reads_back_after_the_manifest_moved(tmp_path):
    """The data (over 8 MiB after compression, so it is copied in several pieces) is moved behind a manifest that
    outgrew its room, byte for byte."""
    big = random.Random(7).randbytes(9 * 1024 * 1024)  # incompressible
    many = [entry(f"dir/file-{i:05d}-{'x' * 80}", b"%d" % i) for i in range(800)]  # a manifest > 64 KiB
    path = write(tmp_path, {"prometheus": [entry("dir", kind=DIR), entry("dir/big", big), *many]})
    assert data_offset(path) > 8 + RESERVE
    found = read_all(path)["prometheus"]
    assert found["dir/big"] == big and found["dir/file-00799-" + "x" * 80] == b"799"


# --- list ------------------------------------------------------------------------------------------------------------


def test_leftovers_are_dot_partial_files_of_the_project_only(tmp_path):
    """Only `.<archive name>.partial` files of the project count as leftovers (every one of them); a file that merely
    ends in .partial, or another project's partial file, is left alone."""
    for name in (".test-20260823T100000Z.stackctl.partial", ".test-20260824T100000Z.stackctl.partial",
                 ".other-20260823T100000Z.stackctl.partial", "test-20260825T100000Z.stackctl.partial"):
        (tmp_path / name).write_bytes(b"left by a crash")
    assert [p.name for p in list_archives(tmp_path, "test").stale_partials] == [
        ".test-20260824T100000Z.stackctl.partial", ".test-20260823T100000Z.stackctl.partial"]
    assert [p.name for p in list_archives(tmp_path).stale_partials] == [
        ".test-20260824T100000Z.stackctl.partial", ".test-20260823T100000Z.stackctl.partial",
        ".other-20260823T100000Z.stackctl.partial"]


def test_an_archive_that_cannot_be_read_is_listed_with_the_reason(tmp_path, monkeypatch):
    write(tmp_path, {"prometheus": TSDB}, name="test-20260820T100000Z.stackctl")
    (tmp_path / "test-20260821T100000Z.stackctl").write_bytes(b"garbage")
    original = shell.peek

    def failing(path):
        if path.name.startswith("test-20260820"):
            raise OSError(errno.EIO, "Input/output error")
        return original(path)

    monkeypatch.setattr(shell, "peek", failing)
    listing = list_archives(tmp_path, "test")
    assert listing.archives == []
    assert [(p.name, reason) for p, reason in listing.unreadable] == [
        ("test-20260821T100000Z.stackctl", f"{tmp_path / 'test-20260821T100000Z.stackctl'} is not a stackctl backup "
                                           "(too short)"),
        ("test-20260820T100000Z.stackctl", "[Errno 5] Input/output error")]


# --- links ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link, target, problem", [
    ("l", "", "an empty link target"),
    ("l", "a\0b", "an empty link target"),
    ("l", "..", "a link to .., outside its target directory"),
    ("d/l", "../..", "a link to ../.., outside its target directory"),
    ("l", "/etc", "a link to the absolute path /etc"),
])
def test_link_members_leading_outside_are_refused_with_the_reason(link, target, problem):
    members = [entry("d", kind=DIR)[0], entry(link, kind=SYMLINK, target=target)[0]]
    assert check_members(members) == [f"member {link!r}: {problem}"]
