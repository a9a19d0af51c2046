"""YAML in and out through libyaml where PyYAML has it (several times faster than the pure-Python code), with the
pure-Python classes as the fallback. Both produce the same bytes for what stackctl dumps (tests/core pins that).
"""

from __future__ import annotations

from typing import Any

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str | bytes) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)


def dump(data: Any, width: int = 120) -> str:
    """Block-style YAML with sorted keys: the same data always gives the same text."""
    return yaml.dump(data, Dumper=Dumper, sort_keys=True, default_flow_style=False, width=width, allow_unicode=False)
