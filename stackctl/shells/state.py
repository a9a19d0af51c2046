"""The state directory: generated secrets stored once (directory 0700, files 0600), reading the secrets the user
supplies from their own files or variables, and the journal of a restore in progress. Which secrets exist is decided
in stackctl.core.secrets; what a journal holds, in stackctl.core.archive."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from stackctl.core.alerting import UserSecret, user_secrets
from stackctl.core.archive import RestoreJournal
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.secrets import env_name, required_secrets
from stackctl.shells.fs import atomic_write, ensure_private_dir

# Side files of a rotation in progress, next to the secret (0600 too): the new value before the service has it,
# the old value until the consumers were recreated with the new one.
NEXT_SUFFIX = ".next"
PREVIOUS_SUFFIX = ".previous"


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
        try:
            return self.path(name).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise StackError(f"secret {name} is missing from {self.root}; run 'stackctl render' to generate it") from None
        except OSError as error:
            raise StackError(f"cannot read secret {name} from {self.root}: {error.strerror}") from None

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

    def _prepare(self) -> None:
        state = self.root.parent
        ensure_private_dir(state)
        ensure_private_dir(self.root)
        ignore = state / ".gitignore"
        if not ignore.exists():
            atomic_write(ignore, b"# stackctl state: generated secrets. Never commit.\n*\n", mode=0o644)

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

    def compose_env(self, stack: Stack, environ: dict[str, str] | None = None,
                    pending: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for the docker compose subprocess: one variable per secret the stack uses. `pending` holds
        generated values not stored yet (a bundle being validated)."""
        supplied = user_secrets(stack.config)
        pending = pending or {}
        env = {}
        for name in required_secrets(stack):
            if name in supplied:
                value = read_user_secret(stack, supplied[name], environ)
            else:
                value = pending[name] if name in pending else self.read(name)
            env[env_name(name)] = value
        return env


def read_user_secret(stack: Stack, secret: UserSecret, environ: dict[str, str] | None = None) -> str:
    """A user-supplied secret's value from the file or variable stack.yaml names; a clear error if it is not there."""
    environ = os.environ if environ is None else environ
    if secret.from_env:
        value = environ.get(secret.from_env)
        if not value:
            raise StackError(f"{secret.setting}: environment variable {secret.from_env} is not set (it holds this secret)")
        return value.strip()
    path = secret.path(stack.file.parent)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise StackError(f"{secret.setting}: cannot read the secret file {path}: {error.strerror}") from None
    if not value:
        raise StackError(f"{secret.setting}: the secret file {path} is empty")
    return value


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
        ensure_private_dir(self.root.parent)
        ensure_private_dir(self.root)

    def save(self, journal: RestoreJournal) -> None:
        self.prepare()
        atomic_write(self.path, journal.to_bytes(), mode=0o600)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def staging(self, restore_id: str) -> Path:
        return self.root / restore_id
