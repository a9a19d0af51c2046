"""The state directory and secret files: stackctl owns only a state directory it created, and reads a secret only
from a regular text file of sane size."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from stackctl.core.errors import StackError
from stackctl.shells.state import MAX_SECRET, STATE_MARKER, SecretStore, read_secret_file


def test_a_state_directory_stackctl_creates_is_marked_private_and_ignored(tmp_path):
    store = SecretStore(tmp_path / "state" / "secrets")
    store.write("a", "value-1")
    assert (tmp_path / "state" / STATE_MARKER).is_file()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert "*" in (tmp_path / "state" / ".gitignore").read_text().splitlines()
    assert store.ownership_problem() is None


def test_an_existing_directory_it_did_not_create_is_left_alone(tmp_path):
    state = tmp_path / "mine"
    state.mkdir(mode=0o755)
    (state / "notes.txt").write_text("x")
    store = SecretStore(state / "secrets")
    assert "was not created by stackctl" in store.ownership_problem()
    with pytest.raises(StackError, match="not created by stackctl"):
        store.write("a", "value-1")
    assert stat.S_IMODE(state.stat().st_mode) == 0o755
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]


def test_a_state_directory_of_an_earlier_stackctl_is_adopted(tmp_path):
    state = tmp_path / ".stackctl"
    (state / "secrets").mkdir(parents=True)
    (state / ".gitignore").write_bytes(b"# stackctl state: generated secrets. Never commit.\n*\n")
    store = SecretStore(state / "secrets")
    assert store.ownership_problem() is None
    store.write("a", "value-1")
    assert (state / STATE_MARKER).is_file()


@pytest.mark.parametrize("make", ["symlink", "file", "secrets-symlink"])
def test_links_and_files_are_refused(tmp_path, make):
    state = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    if make == "symlink":
        state.symlink_to(elsewhere)
    elif make == "file":
        state.write_text("x")
    else:
        SecretStore(state / "secrets").write("a", "value-1")
        (state / "secrets" / "a").unlink()
        (state / "secrets").rmdir()
        (state / "secrets").symlink_to(elsewhere)
    store = SecretStore(state / "secrets")
    assert store.ownership_problem()
    with pytest.raises(StackError):
        store.write("b", "value-2")
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755 and list(elsewhere.iterdir()) == []


def test_an_empty_stored_secret_is_an_error_not_a_password(tmp_path):
    store = SecretStore(tmp_path / "state" / "secrets")
    store.write("a", "value-1")
    store.path("a").write_text("  \n")
    with pytest.raises(StackError, match="is empty"):
        store.read("a")


# --- secret files ----------------------------------------------------------------------------------------------


def test_a_secret_file_is_read_as_stripped_text(tmp_path):
    (tmp_path / "s").write_text("  hunter2-long-enough \n")
    assert read_secret_file(tmp_path / "s", "secret") == "hunter2-long-enough"


@pytest.mark.parametrize("kind, words", [
    ("directory", "not a regular file"), ("device", "not a regular file"), ("large", "at most 64 KiB"),
    ("binary", "not UTF-8 text"), ("nul", "not a text secret"), ("missing", "cannot be read"),
])
def test_what_is_not_a_secret_file_is_refused(tmp_path, kind, words):
    path = tmp_path / "secret"
    if kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "large":
        path.write_bytes(b"x" * (MAX_SECRET + 1))
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00\x01")
    elif kind == "nul":
        path.write_bytes(b"abc\x00def")
    with pytest.raises(StackError, match=words):
        read_secret_file(path, "secret")


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list = []

    def read() -> None:
        try:
            read_secret_file(fifo, "secret")
        except StackError as error:
            outcome.append(error.message)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO hung"
    assert outcome and "not a regular file" in outcome[0]
