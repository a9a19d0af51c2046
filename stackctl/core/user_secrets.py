"""The secrets the user supplies (pure): every setting of stack.yaml given as {from_file: PATH} or
{from_env: VARIABLE}, the secret name it travels under, and the service that reads it as /run/secrets/<name>.
stackctl keeps no copy: the value is read when the stack starts (stackctl.shells.state.read_user_secret)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class UserSecret:
    name: str  # Docker secret name; the service reads /run/secrets/<name>
    from_file: str | None
    from_env: str | None
    setting: str  # stack.yaml key path it was declared at, for messages
    service: str  # key of the service that reads it

    def path(self, stack_dir: Path) -> Path | None:
        """The file path, with ~ expanded and relative paths taken from the stack file's directory."""
        if self.from_file is None:
            return None
        path = Path(self.from_file).expanduser()
        return path if path.is_absolute() else stack_dir / path


def user_secrets(config: Any) -> dict[str, UserSecret]:
    """Every user-supplied secret of a StackConfig, by secret name, sorted: alert receivers' credentials (read by
    Alertmanager) and remote-write passwords (read by Prometheus)."""
    found: dict[str, UserSecret] = {}
    for i, receiver in enumerate(config.alerting.receivers):
        for key, ref in receiver.secret_fields.items():
            name = receiver.secret_name(key)
            found[name] = UserSecret(name, ref.from_file, ref.from_env, f"alerting.receivers[{i}].{key}",
                                     "alertmanager")
    for i, target in enumerate(config.services.prometheus.remote_write):
        if target.basic_auth is not None:
            ref = target.basic_auth.password
            found[target.secret_name] = UserSecret(
                target.secret_name, ref.from_file, ref.from_env,
                f"services.prometheus.remote_write[{i}].basic_auth.password", "prometheus")
    return dict(sorted(found.items()))
