"""What the stack's secrets are (pure): which ones the enabled services read, who reads each, how a missing one is
made, and the environment variable that carries it to `docker compose`.

Values never enter the compose file or a rendered config: compose declares each secret as sourced from an
environment variable that only the `docker compose` subprocess sees, and injects it into the container as
/run/secrets/<name> owned by the service's user with mode 0400. The state directory that stores generated values
is a shell (stackctl.shells.state).
"""

from __future__ import annotations

import secrets as _random
import string
from dataclasses import dataclass

from stackctl.core.config import Stack

ENV_PREFIX = "STACK_SECRET_"  # not STACKCTL_: those are config overrides
_ALPHABET = string.ascii_letters + string.digits  # safe unquoted in YAML, shell, URLs and Logstash ${VAR}
_LENGTHS = {"password": 32, "key32": 48}  # key32: Kibana wants at least 32 characters


def env_name(secret: str) -> str:
    return ENV_PREFIX + secret.upper()


def generate_value(kind: str) -> str:
    return "".join(_random.choice(_ALPHABET) for _ in range(_LENGTHS[kind]))


@dataclass(frozen=True)
class SecretSpec:
    """One secret of this stack: how a missing value is made (None: the user supplies it) and who reads it."""

    name: str
    generate: str | None
    consumers: tuple[str, ...]  # keys of the enabled services reading /run/secrets/<name>, catalog order


def required_secrets(stack: Stack) -> dict[str, SecretSpec]:
    """The secrets the enabled services read, by name (sorted for stable output); user-supplied ones included.

    The one place a secret's consumers are worked out: everything else asks this."""
    consumers: dict[str, list[str]] = {}
    kinds: dict[str, str | None] = {}
    for svc in stack.services.values():
        for use in svc.secrets:
            consumers.setdefault(use.name, []).append(svc.key)
            kinds.setdefault(use.name, use.generate)
    return {name: SecretSpec(name, kinds[name], tuple(consumers[name])) for name in sorted(consumers)}


def missing_values(stack: Stack, exists) -> dict[str, str]:
    """New values for every generated secret the stack needs that `exists(name)` says is not stored yet."""
    return {name: generate_value(spec.generate) for name, spec in required_secrets(stack).items()
            if spec.generate and not exists(name)}
