"""The archive's pure rules: which members may be restored (nothing escapes its target), the manifest's layout and
its refusal of foreign or tampered manifests, version verdicts between a backup and the stack it is restored onto,
archive names, and the restore journal."""

from __future__ import annotations

import hashlib
import json

import pytest

from stackctl.core.archive import (DIR, FILE, HARDLINK, OK, REFUSE, SYMLINK, WARN, ArchiveError, JournalEntry,
                                   Manifest, Member, RestoreJournal, Segment, archive_name, check_members,
                                   link_target_problem, member_problem, parse_archive_name, utc_now,
                                   version_verdict)
from stackctl.core.errors import StackError
from stackctl.core.versions import Version


def file(path: str, data: bytes = b"x") -> Member:
    return Member(path, FILE, len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("path, problem", [
    ("/etc/passwd", "an absolute path"),
    ("../outside", "a '..' component"),
    ("data/../../outside", "a '..' component"),
    ("data//index", "an empty or '.' component"),
    ("./index", "an empty or '.' component"),
    ("data/", "an empty or '.' component"),
    ("", "an empty or overlong path"),
    ("a\0b", "a NUL byte"),
])
def test_member_paths_that_would_leave_the_target_are_refused(path, problem):
    assert problem in member_problem(path)


@pytest.mark.parametrize("path", ["index", "01H/chunks/000001", "a..b/c", ".hidden", "silences.json"])
def test_ordinary_member_paths_pass(path):
    assert member_problem(path) == ""


@pytest.mark.parametrize("link, target, ok", [
    ("a/link", "../b", True),  # a/../b = b: inside
    ("a/link", "c/d", True),
    ("link", "../outside", False),
    ("a/b/link", "../../../outside", False),
    ("a/link", "/etc/passwd", False),
    ("link", "", False),
])
def test_link_targets_must_stay_inside(link, target, ok):
    assert (link_target_problem(link, target) == "") is ok


def test_check_members_finds_every_kind_of_unsafe_member():
    members = [
        Member("blocks", DIR),
        file("blocks/index"),
        file("blocks/index"),  # twice
        Member("dev", "char-device"),
        Member("escape", SYMLINK, target="../../etc"),
        Member("inside", SYMLINK, target="blocks"),
        file("inside/through-the-link"),  # written through a symlink
        Member("hard", HARDLINK, target="blocks/index"),
        Member("hard-missing", HARDLINK, target="nowhere"),
        Member("no-sum", FILE, 3, "not-a-sha"),
        Member("/abs", FILE, 1, "0" * 64),
    ]
    problems = "\n".join(check_members(members))
    assert "'blocks/index': listed twice" in problems
    assert "'dev': type 'char-device'" in problems
    assert "'escape': a link to ../../etc, outside" in problems
    assert "'inside/through-the-link': lies under 'inside', which is a symlink" in problems
    assert "'hard-missing': a hard link" in problems
    assert "'no-sum': no valid size and SHA-256" in problems
    assert "'/abs': an absolute path" in problems
    assert "'hard':" not in problems and "'inside':" not in problems
    assert len(problems.splitlines()) == 7


def test_check_members_accepts_a_normal_tsdb_snapshot():
    members = [Member("01H", DIR), Member("01H/chunks", DIR), file("01H/chunks/000001"), file("01H/index"),
               file("01H/meta.json"), file("01H/tombstones")]
    assert check_members(members) == []


def manifest(*segments: Segment, **changes) -> Manifest:
    fields = dict(project="p", stackctl_version="0.1.0", bundle_stackctl_version="0.1.0", created="c", finished="f",
                  encrypted=False, includes_secrets=False, segments=segments,
                  data_length=sum(s.length for s in segments))
    fields.update(changes)
    return Manifest(**fields)


def test_manifest_round_trips_with_every_field():
    first = Segment("prometheus", "Prometheus", "TsdbSnapshot", "prom/prometheus:v3.14.0", "3.14.0",
                    (Member("b", DIR, mode=0o755, mtime=5), file("b/index", b"abc")), 0, 100, "s", "e",
                    ("note",), {"snapshot": "x"}, (60, 40))
    second = Segment("stack", "Stack files", "StackFiles", members=(file("stack.yaml"),), offset=100, length=7,
                     frames=(7,))
    original = manifest(first, second)
    again = Manifest.from_bytes(original.to_bytes())
    assert again == original
    assert again.segment("prometheus").size == 3 and again.services == ("prometheus", "stack")


@pytest.mark.parametrize("change, message", [
    (lambda m: {**m, "format": "other"}, "not a stackctl backup manifest"),
    (lambda m: {**m, "format_version": 2}, "format version 2"),
    (lambda m: {k: v for k, v in m.items() if k != "project"}, "lacks or mistypes 'project'"),
    (lambda m: {**m, "services": [{**m["services"][0], "offset": 5}]}, "not right after the previous"),
    (lambda m: {**m, "data_length": 99}, "add up to 10 bytes of data, not the 99"),
    (lambda m: {**m, "services": m["services"] * 2, "data_length": 20}, "lists prometheus twice"),
    (lambda m: {**m, "services": [{**m["services"][0], "frames": [4, 5]}]}, "frames of prometheus do not make up"),
    (lambda m: {**m, "services": [{**m["services"][0], "members": "x"}]}, "mistypes"),
])
def test_foreign_or_inconsistent_manifests_are_refused(change, message):
    good = json.loads(manifest(Segment("prometheus", "P", "TsdbSnapshot", members=(file("a"),), length=10,
                                       frames=(10,))).to_bytes())
    with pytest.raises(ArchiveError, match=message):
        Manifest.from_bytes(json.dumps(change(good)).encode())


def test_a_manifest_that_is_not_json_is_refused():
    with pytest.raises(ArchiveError, match="not JSON"):
        Manifest.from_bytes(b"\x00\x01garbage")


V = Version.parse


@pytest.mark.parametrize("source, target, forward, refuse_older, verdict", [
    ("2.42.0", "2.42.0", 0, False, OK),
    ("2.42.0", "2.53.1", 0, False, OK),  # a newer minor reads older data
    ("2.42.0", "3.14.0", 1, False, WARN),  # a new major that converts it
    ("2.42.0", "3.14.0", 0, False, REFUSE),
    ("2.42.0", "4.0.0", 1, False, REFUSE),  # two majors ahead
    ("3.14.0", "2.42.0", 1, False, REFUSE),  # an older major never
    ("2.53.0", "2.42.0", 1, False, WARN),  # an older minor: warned
    ("9.5.1", "9.4.0", 1, True, REFUSE),  # ... or refused where the service cannot read newer data
    ("8.17.0", "9.5.1", 1, True, WARN),
])
def test_version_verdicts(source, target, forward, refuse_older, verdict):
    got, message = version_verdict("Svc", V(source), V(target), forward, refuse_older)
    assert got == verdict
    assert (message == "") is (verdict == OK)
    if verdict == REFUSE:
        assert source in message and target in message


def test_versions_that_cannot_be_compared_are_a_warning():
    assert version_verdict("Svc", None, V("1.0.0"), 0, True)[0] == WARN


def test_archive_names_sort_by_time_and_name_their_project():
    name = archive_name("my-stack", utc_now().replace(year=2026, month=8, day=20, hour=10, minute=0, second=5))
    assert name == "my-stack-20260820T100005Z.stackctl"
    assert parse_archive_name(name) == ("my-stack", "20260820T100005Z")
    assert parse_archive_name("my-stack-20260820T100005Z.stackctl.partial") is None
    assert parse_archive_name("notes.txt") is None


def test_journal_round_trips_and_a_broken_one_is_a_clear_error():
    journal = RestoreJournal("id1", "/a.stackctl", "p", "t", "swapping",
                             [JournalEntry("prometheus", "swap", "p_prometheus-data", "img", "65534:65534", True),
                              JournalEntry("alertmanager", "import", done=["s1"], extra={"k": [1]})],
                             stopped=["prometheus"])
    assert RestoreJournal.from_bytes(journal.to_bytes(), "j") == journal
    with pytest.raises(StackError, match="not a restore journal"):
        RestoreJournal.from_bytes(b"{}", "j")
    with pytest.raises(StackError, match="unknown restore phase"):
        RestoreJournal.from_bytes(journal.to_bytes().replace(b'"swapping"', b'"elsewhere"'), "j")
