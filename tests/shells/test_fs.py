"""The bundle writer touches only what is inside the bundle: a manifest edited to name ../x or an absolute path
deletes nothing outside, and a symbolic link placed inside the bundle is never written or removed through."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from stackctl.core.errors import StackError
from stackctl.shells.fs import MANIFEST, bundle_problem, is_plain_relative, write_bundle

PLAN = {"compose.yaml": b"services: {}\n", "configs/prometheus/prometheus.yml": b"global: {}\n"}


def written(tmp_path: Path) -> Path:
    out = tmp_path / "build"
    write_bundle(PLAN, out)
    return out


@pytest.mark.parametrize("entry", ["../notes.txt", "/ABS/notes.txt", "configs/../../notes.txt", "./x", "a//b",
                                   "a\\b", ""])
def test_manifest_entries_outside_the_bundle_are_never_removed(tmp_path, entry):
    out = written(tmp_path)
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me")
    entry = entry.replace("/ABS", str(tmp_path))
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"][entry] = "0" * 64
    (out / MANIFEST).write_text(json.dumps(manifest))
    write_bundle({"compose.yaml": PLAN["compose.yaml"]}, out)
    assert victim.read_text() == "keep me"
    assert not (out / "configs").exists()  # the real stale file went, as before


def test_plain_relative_paths():
    assert is_plain_relative("configs/prometheus/rules/a.yml")
    for bad in ("", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", "a\\b", "a\0b"):
        assert not is_plain_relative(bad), bad


def test_a_symlinked_directory_inside_the_bundle_is_not_written_through(tmp_path):
    out = written(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "configs" / "prometheus" / "prometheus.yml").unlink()
    (out / "configs" / "prometheus").rmdir()
    (out / "configs" / "prometheus").symlink_to(elsewhere)
    assert "symbolic link" in bundle_problem(PLAN, out)
    with pytest.raises(StackError, match="symbolic link"):
        write_bundle(PLAN, out)
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_file_inside_the_bundle_is_not_replaced_through(tmp_path):
    out = written(tmp_path)
    target = tmp_path / "precious"
    target.write_text("mine")
    (out / "compose.yaml").unlink()
    (out / "compose.yaml").symlink_to(target)
    with pytest.raises(StackError, match="symbolic link"):
        write_bundle({**PLAN, "compose.yaml": b"other\n"}, out)
    assert target.read_text() == "mine"


def test_an_out_that_is_a_file_or_foreign_directory_is_refused_before_writing(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    assert "not a directory" in bundle_problem(PLAN, file)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    assert "not written by stackctl" in bundle_problem(PLAN, foreign)
    assert bundle_problem(PLAN, tmp_path / "new") is None
    assert bundle_problem(PLAN, written(tmp_path)) is None


def test_files_get_their_mode_whatever_the_umask(tmp_path):
    plan = {**PLAN, "configs/x/entry.sh": b"#!/bin/sh\n"}
    old = os.umask(0o077)
    try:
        out = tmp_path / "build"
        write_bundle(plan, out)  # every file created
        modes = {rel: stat.S_IMODE((out / rel).stat().st_mode) for rel in plan}
        write_bundle({rel: data + b"# changed\n" for rel, data in plan.items()}, out)  # every file replaced
        replaced = {rel: stat.S_IMODE((out / rel).stat().st_mode) for rel in plan}
    finally:
        os.umask(old)
    expected = {"compose.yaml": 0o644, "configs/prometheus/prometheus.yml": 0o644, "configs/x/entry.sh": 0o755}
    assert modes == expected and replaced == expected


def test_a_file_that_exists_is_replaced_by_a_new_one_never_rewritten_in_place(tmp_path):
    """A container may hold the old file open: it must keep reading the old bytes, whole."""
    out = written(tmp_path)
    with (out / "compose.yaml").open("rb") as reader:
        write_bundle({**PLAN, "compose.yaml": b"services: {a: {}}\n"}, out)
        assert reader.read() == PLAN["compose.yaml"]
    assert (out / "compose.yaml").read_bytes() == b"services: {a: {}}\n"


def test_a_torn_file_left_by_a_crash_is_rewritten_by_the_next_write(tmp_path):
    out = written(tmp_path)
    (out / "configs/prometheus/prometheus.yml").write_bytes(b"glo")  # the manifest still names the full file
    result = write_bundle(PLAN, out)
    assert (out / "configs/prometheus/prometheus.yml").read_bytes() == PLAN["configs/prometheus/prometheus.yml"]
    assert result.written == ("configs/prometheus/prometheus.yml",)


def test_a_file_added_to_a_bundle_in_use_appears_whole(tmp_path, monkeypatch):
    """Once a bundle exists, containers may mount it (Grafana polls its dashboards): a new file is written under a
    temporary name and renamed into place, never created in place and filled."""
    from stackctl.shells import fs

    out = written(tmp_path)
    created: list[Path] = []
    monkeypatch.setattr(fs, "_create", lambda path, data, mode: created.append(path))
    write_bundle({**PLAN, "grafana/dashboards/new.json": b"{}\n"}, out)
    assert created == [] and (out / "grafana/dashboards/new.json").read_bytes() == b"{}\n"
    write_bundle(PLAN, tmp_path / "fresh")
    assert sorted(p.relative_to(tmp_path / "fresh").as_posix() for p in created) == sorted(PLAN)
