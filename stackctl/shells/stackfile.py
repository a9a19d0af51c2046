"""Reading the stack file: which file (option, STACKCTL_FILE, ./stack.yaml), and its text, refused unless it is a
regular file of sane size. The text is handed to the pure model (stackctl.core.config)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from stackctl.core.config import Stack, load_config, parse_yaml, resolve
from stackctl.core.errors import StackError

DEFAULT_FILE = "stack.yaml"
MAX_STACK_FILE = 1024 * 1024  # a stack file is a few kilobytes; refuse to read a huge one into memory


def locate(explicit: str | None, environ: dict[str, str] | None = None) -> Path:
    """The stack file: --file, else STACKCTL_FILE, else ./stack.yaml."""
    environ = os.environ if environ is None else environ
    return Path(explicit or environ.get("STACKCTL_FILE") or DEFAULT_FILE)


def read_stack_text(file: Path) -> str:
    try:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode):
            raise StackError(f"{file}: not a regular file; the stack file must be a plain YAML file")
        if info.st_size > MAX_STACK_FILE:
            raise StackError(f"{file}: {info.st_size} bytes is too large for a stack file "
                             f"(at most {MAX_STACK_FILE // 1024} KiB)")
        with file.open("rb") as handle:
            data = handle.read(MAX_STACK_FILE + 1)
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise StackError(f"{file}: not UTF-8 text; the stack file must be a plain YAML file") from None
    except OSError as error:
        raise StackError(f"{file}: cannot read the stack file: {error.strerror or error}") from None


def load_stack(file: Path, environ: dict[str, str] | None = None, sets: list[str] | None = None,
               must_exist: bool = True) -> Stack:
    """Load and resolve the stack file with the environment's STACKCTL_* overrides and --set options."""
    environ = dict(os.environ if environ is None else environ)
    if not file.exists() and not file.is_symlink():
        if must_exist:
            raise StackError(f"{file}: no stack file here; run 'stackctl init' to write one "
                             f"(or pass -f PATH / set STACKCTL_FILE)")
        data, lines = {}, {}
    else:
        data, lines = parse_yaml(read_stack_text(file), str(file))
    origins: dict[tuple, str] = {}
    config = load_config(data, str(file), lines, environ, sets, origins_out=origins)
    return resolve(config, file.absolute(), lines, origins, source=str(file))
