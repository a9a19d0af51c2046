"""The state directory: generated secrets stored once (directory 0700, files 0600), reading the secrets the user
supplies from their own files or variables, and the journal of a restore in progress. Which secrets exist is decided
in stackctl.core.secrets; what a journal holds, in stackctl.core.archive."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from stackctl.core.user_secrets import UserSecret, user_secrets
from stackctl.core.archive import RestoreJournal
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.secrets import env_name, required_secrets
from stackctl.shells.fs import atomic_write, ensure_private_dir

# The state directory holds this file from the moment stackctl creates it: stackctl changes permissions of, and
# writes into, only a directory that carries it (or one written by an earlier stackctl: the legacy .gitignore).
STATE_MARKER = ".stackctl-state"
_GITIGNORE = b"# stackctl state: generated secrets. Never commit.\n*\n"
MAX_SECRET = 64 * 1024  # a secret is a password, a key or a URL: more than this is a mistake (or /dev/zero)

# Side files of a rotation in progress, next to the secret (0600 too): the new value before the service has it,
# the old value until the consumers were recreated with the new one.
NEXT_SUFFIX = ".next"
PREVIOUS_SUFFIX = ".previous"


def ownership_problem(state: Path, inner: Path) -> str | None:
    """Why stackctl must not use the state directory `state` (and its subdirectory `inner`) as it is now."""
    for path in (state, inner):
        if path.is_symlink():
            return f"{path} is a symbolic link; stackctl keeps secrets only in a directory it created itself"
        if path.exists() and not path.is_dir():
            return f"{path} is not a directory"
    if not state.exists() or (state / STATE_MARKER).is_file():
        return None
    legacy = state / ".gitignore"
    if legacy.is_file() and legacy.read_bytes() == _GITIGNORE:
        return None  # written by an earlier stackctl; marked on the next write
    return (f"{state} exists and was not created by stackctl: it would be made private (0700) and git-ignored. "
            "Point state_dir at a new directory, or remove this one")


def prepare_state(state: Path, inner: Path) -> None:
    """Create (or tighten) the state directory and `inner` (0700), marked as stackctl's and git-ignored; refuse a
    directory stackctl does not own."""
    problem = ownership_problem(state, inner)
    if problem:
        raise StackError(f"state_dir: {problem}")
    ensure_private_dir(state)
    ensure_private_dir(inner)
    for name, data in ((".gitignore", _GITIGNORE),
                       (STATE_MARKER, b"This directory was created by stackctl for its state (secrets).\n")):
        if not (state / name).exists():
            atomic_write(state / name, data, mode=0o644)


@dataclass
class SecretStore:
    root: Path  # <state dir>/secrets

    @classmethod
    def for_stack(cls, stack: Stack) -> "SecretStore":
        return cls(stack.state_dir / "secrets")

    def path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def read(self, name: str) -> str:
        path = self.path(name)
        if not path.exists():
            raise StackError(f"secret {name} is missing from {self.root}; run 'stackctl render' to generate it")
        value = read_secret_file(path, f"secret {name}")
        if not value:
            raise StackError(f"secret {name} in {path} is empty; delete the file and run 'stackctl render' to "
                             "generate a new one (if its service already started with the old value, restore that "
                             "value instead)")
        return value

    def write(self, name: str, value: str) -> None:
        self._prepare()
        atomic_write(self.path(name), value.encode(), mode=0o600)

    def write_all(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self.write(name, value)

    def age_seconds(self, name: str) -> float:
        return time.time() - self.path(name).stat().st_mtime

    def mode(self, name: str) -> int | None:
        """Permission bits of the secret's file (None when it is missing)."""
        try:
            return self.path(name).stat().st_mode & 0o777
        except FileNotFoundError:
            return None

    # --- rotation side files ---------------------------------------------------------------------------------

    def side_path(self, name: str, suffix: str) -> Path:
        return self.root / (name + suffix)

    def read_side(self, name: str, suffix: str) -> str | None:
        try:
            return self.side_path(name, suffix).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    def write_side(self, name: str, suffix: str, value: str) -> None:
        self._prepare()
        atomic_write(self.side_path(name, suffix), value.encode(), mode=0o600)

    def remove_side(self, name: str, suffix: str) -> None:
        self.side_path(name, suffix).unlink(missing_ok=True)

    @property
    def state(self) -> Path:
        return self.root.parent

    def ownership_problem(self) -> str | None:
        """Why stackctl must not use the state directory as it is now (None: it may)."""
        return ownership_problem(self.state, self.root)

    def _prepare(self) -> None:
        prepare_state(self.state, self.root)

    def known_values(self, stack: Stack, environ: dict[str, str] | None = None) -> dict[str, bytes]:
        """The values stackctl can see now: stored generated ones, and user-supplied ones that are readable."""
        supplied = user_secrets(stack.config)
        values = {}
        for name in required_secrets(stack):
            try:
                if name in supplied:
                    values[name] = read_user_secret(stack, supplied[name], environ).encode()
                elif self.exists(name):
                    values[name] = self.read(name).encode()
            except StackError:  # not readable yet: `up` reports that; nothing to compare here
                continue
        return values

    def values(self, stack: Stack, environ: dict[str, str] | None = None,
               pending: dict[str, str] | None = None) -> dict[str, str]:
        """Every secret the stack uses, by name: stored generated values (or `pending` ones, generated but not
        stored yet) and the user's. Raises StackError naming the first that cannot be read."""
        supplied = user_secrets(stack.config)
        pending = pending or {}
        values = {}
        for name in required_secrets(stack):
            if name in supplied:
                values[name] = read_user_secret(stack, supplied[name], environ)
            else:
                values[name] = pending[name] if name in pending else self.read(name)
        return values

    def compose_env(self, stack: Stack, environ: dict[str, str] | None = None,
                    pending: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for the docker compose subprocess: one variable per secret the stack uses. `pending` holds
        generated values not stored yet (a bundle being validated)."""
        return {env_name(name): value for name, value in self.values(stack, environ, pending).items()}


def read_user_secret(stack: Stack, secret: UserSecret, environ: dict[str, str] | None = None) -> str:
    """A user-supplied secret's value from the file or variable stack.yaml names; a clear error if it is not there."""
    environ = os.environ if environ is None else environ
    if secret.from_env:
        value = environ.get(secret.from_env)
        if not value or not value.strip():
            raise StackError(f"{secret.setting}: environment variable {secret.from_env} is not set (it holds this secret)")
        if len(value.encode()) > MAX_SECRET:
            raise StackError(f"{secret.setting}: environment variable {secret.from_env} holds more than "
                             f"{MAX_SECRET // 1024} KiB; a secret is a password, a key or a URL")
        return value.strip()
    path = secret.path(stack.file.parent)
    value = read_secret_file(path, f"{secret.setting}: the secret file")
    if not value:
        raise StackError(f"{secret.setting}: the secret file {path} is empty")
    return value


def read_secret_file(path: Path, what: str) -> str:
    """A secret's text from a regular file of at most MAX_SECRET bytes: never a FIFO (it would hang), a device
    (/dev/zero never ends), a directory or binary data. Surrounding whitespace is dropped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise StackError(f"{what} {path} cannot be read: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StackError(f"{what} {path} is not a regular file")
        if info.st_size > MAX_SECRET:
            raise StackError(f"{what} {path} holds {info.st_size} bytes; a secret is at most {MAX_SECRET // 1024} KiB")
        data = os.read(fd, MAX_SECRET + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise StackError(f"{what} {path} is not UTF-8 text") from None
    if "\0" in text or len(data) > MAX_SECRET:
        raise StackError(f"{what} {path} is not a text secret (NUL bytes, or larger than {MAX_SECRET // 1024} KiB)")
    return text


@dataclass
class JournalStore:
    """Where a restore in progress keeps its journal and its private staging: <state dir>/restore (0700)."""

    root: Path

    @classmethod
    def for_stack(cls, stack: Stack) -> "JournalStore":
        return cls(stack.state_dir / "restore")

    @property
    def path(self) -> Path:
        return self.root / "journal.json"

    def load(self) -> RestoreJournal | None:
        """The journal of a restore that did not finish, or None."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StackError(f"cannot read {self.path}: {error.strerror}") from None
        return RestoreJournal.from_bytes(data, str(self.path))

    def prepare(self) -> None:
        prepare_state(self.root.parent, self.root)

    def save(self, journal: RestoreJournal) -> None:
        self.prepare()
        atomic_write(self.path, journal.to_bytes(), mode=0o600)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def staging(self, restore_id: str) -> Path:
        return self.root / restore_id
