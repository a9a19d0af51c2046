"""The bundle writer touches only what is inside the bundle: a manifest edited to name ../x or an absolute path
deletes nothing outside, and a symbolic link placed inside the bundle is never written or removed through."""

from __future__ import annotations

import json
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
