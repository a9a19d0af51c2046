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
