"""What `stackctl secrets` shows: every secret the stack uses, where its value comes from, who reads it, whether
it is there; and one value on request. Never a value anywhere else."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from stackctl.core import catalog
from stackctl.core.user_secrets import user_secrets
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.schema import closest
from stackctl.core.secrets import required_secrets
from stackctl.shells.state import SecretStore


@dataclass(frozen=True)
class SecretEntry:
    """What `secrets list` shows about one secret. Never its value."""

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


def inventory(stack: Stack, store: SecretStore, environ: dict[str, str] | None = None) -> list[SecretEntry]:
    """Every secret this stack uses, by name: generated ones from the state directory, user-supplied ones from
    the file or variable stack.yaml names."""
    environ = dict(os.environ if environ is None else environ)
    supplied = user_secrets(stack.config)
    entries = []
    for name, spec in required_secrets(stack).items():
        users = tuple(stack.services[key].name for key in spec.consumers)
        secret = supplied.get(name)
        if secret is None:
            mode = store.mode(name)
            present = mode is not None
            entries.append(SecretEntry(
                name=name, origin="generated" if spec.generate else "user", kind=spec.generate, used_by=users,
                present=present, age_seconds=store.age_seconds(name) if present else None,
                source=str(store.path(name)), mode=None if mode is None else f"{mode:04o}"))
            continue
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


def known_names(stack: Stack) -> list[str]:
    return sorted(set(catalog.generated_secrets()) | set(user_secrets(stack.config)))


def check_known(stack: Stack, name: str) -> None:
    known = known_names(stack)
    if name not in known:
        hint = closest(name, known)
        raise StackError(f"unknown secret {name!r}" + (f" ({hint})" if hint else "")
                         + "; 'stackctl secrets list' shows this stack's secrets")


def stored_value(stack: Stack, store: SecretStore, name: str) -> str:
    """A generated secret's value; user-supplied ones are refused (stackctl keeps no copy of them)."""
    check_known(stack, name)
    supplied = user_secrets(stack.config)
    if name in supplied:
        secret = supplied[name]
        where = f"the file {secret.path(stack.file.parent)}" if secret.from_file else \
            f"the environment variable {secret.from_env}"
        raise StackError(f"{name} is supplied by you from {where}: stackctl keeps no copy of it")
    if name not in required_secrets(stack) and not store.exists(name):
        raise StackError(f"{name} is not used by any service enabled in {stack.file}, and has no stored value")
    return store.read(name)
