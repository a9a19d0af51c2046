"""The stack file as commands use it: which file, loading it, and writing a new one (`stackctl init`)."""

from __future__ import annotations

from pathlib import Path

from stackctl.core import catalog
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.shells import stackfile
from stackctl.shells.fs import atomic_write

TEMPLATE = Path(__file__).resolve().parent.parent / "stack.yaml.template"


def locate(explicit: str | None) -> Path:
    return stackfile.locate(explicit)


def load(file: Path, sets: list[str], must_exist: bool = True) -> Stack:
    return stackfile.load_stack(file, sets=sets, must_exist=must_exist)


def write_new_stack_file(file: Path, preset: str, force: bool) -> None:
    """The commented reference stack file with every setting at its default, for `preset`."""
    if preset not in catalog.PRESETS:
        raise StackError(f"unknown preset {preset!r}: choose one of {', '.join(catalog.PRESETS)}")
    if file.is_dir():
        raise StackError(f"{file} is a directory; name the stack file to write, e.g. -f {file}/stack.yaml")
    if file.exists() and not force:
        raise StackError(f"{file} already exists; pass --force to overwrite it")
    if file.exists() and not file.is_file():
        raise StackError(f"{file} is not a regular file; stackctl writes the stack file only as one")
    atomic_write(file, TEMPLATE.read_text().replace("{{ preset }}", preset).encode())
