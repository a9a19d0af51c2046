"""Secrets: generated once into the state directory (0700 dir, 0600 files), handed to containers as files.

Values never enter the compose file or a rendered config: compose declares each secret as sourced from an
environment variable that only the `docker compose` subprocess sees, and injects it into the container as
/run/secrets/<name> owned by the service's user with mode 0400.
"""

from __future__ import annotations

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
_ALPHABET = string.ascii_letters + string.digits  # safe unquoted in YAML, shell, URLs and Logstash ${VAR}


def env_name(secret: str) -> str:
    return ENV_PREFIX + secret.upper()


def generate_value(kind: str) -> str:
    length = 32 if kind == "password" else 48  # key32: Kibana wants >= 32 characters
    return "".join(_random.choice(_ALPHABET) for _ in range(length))


def required_secrets(stack: Stack) -> dict[str, catalog.SecretSpec]:
    """The secrets the enabled services use, by name (sorted for stable output)."""
    specs = catalog.secret_specs()
    names = {use.name for svc in stack.services.values() for use in svc.secrets}
    return {name: specs[name] for name in sorted(names)}


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

    def compose_env(self, stack: Stack) -> dict[str, str]:
        """Environment for the docker compose subprocess: one variable per secret the stack uses."""
        return {env_name(name): self.read(name) for name in required_secrets(stack)}
