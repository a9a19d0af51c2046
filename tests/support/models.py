"""Loading stack-file data into the typed model in tests, with no environment overrides."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.core.config import StackConfig, load_config
from stackctl.core.errors import ConfigError


def load(data: dict[str, Any]) -> StackConfig:
    return load_config(data, "stack.yaml", environ={})


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(data)
    return info.value


def to_data(obj: Any) -> Any:
    """The inverse of stackctl.core.schema.build: a config tree as plain YAML-able data, keys in field order."""
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {f.metadata.get("key", f.name): to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_data(v) for v in obj]
    return obj
