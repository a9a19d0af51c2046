"""Secrets: generated once into the state directory (0700 dir, 0600 files), handed to containers as files.

Values never enter the compose file or a rendered config: compose declares each secret as sourced from an
environment variable that only the `docker compose` subprocess sees, and injects it into the container as
/run/secrets/<name> owned by the service's user with mode 0400.
"""

from __future__ import annotations

import os
import secrets as _random
import string
import time
from dataclasses import dataclass
from pathlib import Path

from stackctl import catalog
from stackctl.config import Stack
from stackctl.errors import StackError
from stackctl.fs import atomic_write, ensure_private_dir

ENV_PREFIX = "STACK_SECRET_"  # not STACKCTL_: those are config overrides
# Side files of a rotation in progress, next to the secret (0600 too): the new value before the service has it,
# the old value until the consumers were recreated with the new one.
NEXT_SUFFIX = ".next"
PREVIOUS_SUFFIX = ".previous"
_ALPHABET = string.ascii_letters + string.digits  # safe unquoted in YAML, shell, URLs and Logstash ${VAR}


def env_name(secret: str) -> str:
    return ENV_PREFIX + secret.upper()


def generate_value(kind: str) -> str:
    length = 32 if kind == "password" else 48  # key32: Kibana wants >= 32 characters
    return "".join(_random.choice(_ALPHABET) for _ in range(length))


def required_secrets(stack: Stack) -> dict[str, catalog.SecretSpec]:
    """The secrets the enabled services use, by name (sorted for stable output); user-supplied ones included."""
    specs = catalog.secret_specs()
    users: dict[str, list[str]] = {}
    for svc in stack.services.values():
        for use in svc.secrets:
            users.setdefault(use.name, []).append(svc.key)
    return {name: specs.get(name) or catalog.SecretSpec(name, None, tuple(users[name])) for name in sorted(users)}


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

    def ensure(self, stack: Stack) -> list[str]:
        """Generate every missing generated secret the stack needs; returns the names created."""
        created = []
        for name, spec in required_secrets(stack).items():
            if spec.generate and not self.exists(name):
                self.write(name, generate_value(spec.generate))
                created.append(name)
        return created

    def compose_env(self, stack: Stack, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for the docker compose subprocess: one variable per secret the stack uses."""
        supplied = user_supplied(stack)
        env = {}
        for name in required_secrets(stack):
            env[env_name(name)] = (read_user_secret(stack, supplied[name], environ) if name in supplied
                                   else self.read(name))
        return env


def read_user_secret(stack: Stack, secret, environ: dict[str, str] | None = None) -> str:
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


# --- inventory (for `stackctl secrets list`) -------------------------------------------------------------------


@dataclass(frozen=True)
class SecretEntry:
    """What `secrets list` shows about one secret: where it comes from, who reads it, whether it is there. Never
    its value."""

    name: str
    origin: str  # "generated": made once by stackctl into the state dir | "user": supplied from a file or variable
    kind: str | None  # password | key32 for generated secrets
    used_by: tuple[str, ...]  # compose names of this stack's services reading /run/secrets/<name>
    present: bool
    age_seconds: float | None  # since the file was last written (None: no file)
    source: str  # the file or variable holding the value
    mode: str | None = None  # permission bits of a stored secret's file, e.g. "0600"

    def to_json(self) -> dict:
        return {
            "name": self.name, "origin": self.origin, "kind": self.kind, "used_by": list(self.used_by),
            "present": self.present, "age_seconds": None if self.age_seconds is None else round(self.age_seconds),
            "source": self.source, "mode": self.mode,
        }


def user_supplied(stack: Stack) -> dict:
    """The stack's user-supplied secrets by name (`{from_file: PATH}` / `{from_env: VAR}` in stack.yaml)."""
    from stackctl import provisioning

    finder = getattr(provisioning, "user_secrets", None)
    return dict(finder(stack.config)) if finder is not None else {}


def inventory(stack: Stack, store: SecretStore, environ: dict[str, str] | None = None) -> list[SecretEntry]:
    """Every secret this stack uses: generated ones (state dir) first, then user-supplied ones."""
    environ = dict(os.environ if environ is None else environ)
    entries = []
    for name, spec in required_secrets(stack).items():
        users = tuple(svc.name for svc in stack.services.values() if any(use.name == name for use in svc.secrets))
        present = store.exists(name)
        mode = store.mode(name)
        entries.append(SecretEntry(
            name=name, origin="generated" if spec.generate else "user", kind=spec.generate, used_by=users,
            present=present, age_seconds=store.age_seconds(name) if present else None, source=str(store.path(name)),
            mode=None if mode is None else f"{mode:04o}",
        ))
    known = {entry.name for entry in entries}
    for name, secret in user_supplied(stack).items():
        if name in known:
            continue
        users = tuple(svc.name for svc in stack.services.values() if any(use.name == name for use in svc.secrets))
        if not users and "alertmanager" in stack.services:
            users = (stack.services["alertmanager"].name,)  # receivers' secrets are Alertmanager's
        path = secret.path(stack.file.parent)
        if path is not None:
            present = path.is_file()
            age = time.time() - path.stat().st_mtime if present else None
            source = f"file {path}"
        else:
            present = bool(environ.get(secret.from_env or ""))
            age = None
            source = f"environment variable {secret.from_env}"
        entries.append(SecretEntry(name=name, origin="user", kind=None, used_by=users, present=present,
                                   age_seconds=age, source=source))
    return entries
