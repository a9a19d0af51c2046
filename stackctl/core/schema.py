"""Typed loading of plain YAML data into dataclasses: unknown keys rejected, types checked, paths in errors.

The config model (stackctl.config) is plain dataclasses with type hints and defaults; this module turns the parsed
YAML mapping into them. Field validators are ordinary `__post_init__` methods raising ValueError; the message is
reported at that object's key path.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
import unicodedata
from typing import Any, Union, get_args, get_origin, get_type_hints

MAX_STRING = 4096  # no setting needs more; longer values are refused before they reach a template


class SchemaError(Exception):
    """One invalid value: `path` is the key path as a tuple of keys and list indexes."""

    def __init__(self, path: tuple, problem: str, hint: str = ""):
        super().__init__(problem)
        self.path, self.problem, self.hint = path, problem, hint


def format_path(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def closest(name: str, candidates) -> str:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else ""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin is dict or (dataclasses.is_dataclass(tp)):
        return "a mapping"
    if _is_optional(tp):
        return _type_name(next(a for a in get_args(tp) if a is not type(None)))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def convert(value: Any, tp: Any, path: tuple = ()) -> Any:
    """Convert `value` (from YAML) to type `tp`, raising SchemaError at `path` when it does not fit."""
    if _is_optional(tp):
        if value is None:
            return None
        tp = next(a for a in get_args(tp) if a is not type(None))
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin is typing.Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise SchemaError(path, f"must be one of {', '.join(map(str, allowed))}, got {value!r}",
                              closest(str(value), map(str, allowed)))
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(path, f"must be a list, got {_describe(value)}")
        (item_type,) = get_args(tp)
        return [convert(item, item_type, path + (i,)) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(path, f"must be a mapping, got {_describe(value)}")
        key_type, item_type = get_args(tp)
        return {convert(k, key_type, path + (k,)): convert(v, item_type, path + (k,)) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise SchemaError(path, f"must be true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, f"must be a number, got {_describe(value)}")
        if not math.isfinite(value):  # .nan and .inf are YAML numbers, but a threshold of NaN never fires
            raise SchemaError(path, f"must be a finite number, got {value}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SchemaError(path, f"must be a string, got {_describe(value)}")
        return check_text(str(value), path)
    if tp is Any:
        return value
    raise TypeError(f"unsupported schema type {tp!r} at {format_path(path)}")  # a bug in the model, not input


def check_text(text: str, path: tuple = ()) -> str:
    """A setting's text: no control characters (newlines included: every setting is one line), no surrogates or
    noncharacters (YAML cannot carry them), at most MAX_STRING characters. The message never repeats the value (it may be a secret
    pasted into the wrong key)."""
    if len(text) > MAX_STRING:
        raise SchemaError(path, f"is {len(text)} characters long; at most {MAX_STRING} are accepted")
    for position, char in enumerate(text):
        code = ord(char)
        if unicodedata.category(char) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            raise SchemaError(path, f"contains a control or invalid character ({char!r} at position {position + 1}); "
                                    "settings are single-line text")
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{value!r} ({_type_name(type(value))})"


def build(cls: type, data: Any, path: tuple = ()) -> Any:
    """Build dataclass `cls` from a mapping; missing keys take the field defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SchemaError(path, f"must be a mapping, got {_describe(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    keys = {f.metadata.get("key", f.name): f.name for f in fields.values()}
    kwargs = {}
    for key, value in data.items():
        if key not in keys:
            raise SchemaError(path + (key,), "unknown key", closest(str(key), keys))
        name = keys[key]
        kwargs[name] = convert(value, hints[name], path + (key,))
    for name, field in fields.items():
        if name not in kwargs and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SchemaError(path + (field.metadata.get("key", name),), "is required")
    try:
        return cls(**kwargs)
    except SchemaError as error:
        raise SchemaError(path + error.path, error.problem, error.hint) from None
    except ValueError as error:
        raise SchemaError(path, str(error)) from None


def to_data(obj: Any) -> Any:
    """The inverse of build: a dataclass tree as plain YAML-able data (keys in field order)."""
    if dataclasses.is_dataclass(obj):
        return {f.metadata.get("key", f.name): to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_data(v) for v in obj]
    return obj
