"""Values with units, each kind parsed and checked by exactly one function: durations, sizes, heaps, ports.

Every pattern is a full match (`re.fullmatch`): a `$` would also match before a trailing newline.
"""

from __future__ import annotations

import re
from datetime import datetime

from stackctl.core.schema import SchemaError

# Prometheus and Alertmanager durations (Go's model.ParseDuration): units largest first, each at most once
# ("1h30m", never "30m1h").
_DURATION = re.compile(r"(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}

# Docker memory limits: 512m, 1g, 1536m, 2gb (binary units, as the engine reads them).
_MEMORY = re.compile(r"(\d+)([kmg]?)b?", re.IGNORECASE)
_BINARY = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MIN_MEMORY = 6 * 1024**2  # the engine refuses a limit below 6 MiB

# Prometheus --storage.tsdb.retention.size: 512MB, 10GB (Prometheus reads these as powers of 1024).
_RETENTION_SIZE = re.compile(r"(\d+)(B|KB|MB|GB|TB|PB|EB)")
_RETENTION_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5, "EB": 1024**6}

# JVM -Xms/-Xmx: 512m, 1g.
_HEAP = re.compile(r"(\d+)([mg])", re.IGNORECASE)

# Elasticsearch time units as ILM reads them: 7d, 12h.
_ES_DURATION = re.compile(r"(\d+)(d|h|m|s)")


def is_duration(text: str) -> bool:
    return isinstance(text, str) and _DURATION.fullmatch(text) is not None


def duration_seconds(text: str) -> float:
    """'1h30m' -> 5400.0; ValueError for anything Prometheus would not read."""
    if not is_duration(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def check_duration(value: str, *path, minimum: float = 0.0) -> float:
    """A Prometheus duration at `path`, in seconds; SchemaError otherwise (or when below `minimum` seconds)."""
    if not is_duration(value):
        raise SchemaError(path, f"must be a duration like 30s, 5m, 1h30m or 15d, units largest first "
                                f"(got {value!r})")
    seconds = duration_seconds(value)
    if seconds < minimum or (minimum > 0 and seconds == 0):
        raise SchemaError(path, f"must be at least {format_seconds(minimum)} (got {value})")
    return seconds


def format_seconds(seconds: float) -> str:
    """5400 -> '1h30m' (the shortest Prometheus duration)."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = "", int(seconds)
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


def memory_bytes(text: str) -> int:
    """'1536m' -> 1610612736; ValueError for anything the engine would not read."""
    match = _MEMORY.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a memory size: {text!r}")
    return int(match.group(1)) * _BINARY[match.group(2).lower()]


def _check_size(value: str, path: tuple, parse, kind: str, minimum: int, at_least: str) -> int:
    """One parser's value at `path` in bytes; SchemaError when it does not parse or is below `minimum`."""
    try:
        size = parse(value)
    except ValueError:
        raise SchemaError(path, f"must be {kind} (got {value!r})") from None
    if size < minimum:
        raise SchemaError(path, f"must be {at_least} (got {value})")
    return size


def check_memory(value: str, *path) -> int:
    return _check_size(value, path, memory_bytes, "a memory size like 512m or 2g", MIN_MEMORY,
                       "at least 6m, the smallest limit Docker accepts")


def retention_size_bytes(text: str) -> int:
    match = _RETENTION_SIZE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a retention size: {text!r}")
    return int(match.group(1)) * _RETENTION_UNITS[match.group(2)]


def check_retention_size(value: str, *path) -> int:
    return _check_size(value, path, retention_size_bytes, "a size like 512MB or 10GB", 1,
                       "above 0 (leave it empty for no size limit)")


def heap_bytes(text: str) -> int:
    match = _HEAP.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a JVM heap size: {text!r}")
    return int(match.group(1)) * _BINARY[match.group(2).lower()]


def check_heap(value: str, *path, minimum: int = 64 * 1024**2) -> int:
    return _check_size(value, path, heap_bytes, "a JVM heap size like 512m or 1g", minimum,
                       f"at least {minimum // 1024**2}m")


def check_es_duration(value: str, *path) -> None:
    match = _ES_DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise SchemaError(path, f"must be an Elasticsearch duration like 7d or 12h (got {value!r})")


# host:port, the host a name or a bracketed IPv6 address.
HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})")


def check_host_port(value: str, *path, what: str = "host:port") -> None:
    match = HOST_PORT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise SchemaError(path, f"must be {what}, got {value!r}")
    check_port(int(match.group("port")), *path)


def check_port(value: int | None, *path) -> None:
    if value is not None and not 1 <= value <= 65535:
        raise SchemaError(path, f"must be a port between 1 and 65535 (got {value})")


def format_bytes(count: float) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 3.2 MiB, 1.1 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Prometheus and the Docker engine write it (nanoseconds, `Z`, trailing zeros dropped) ->
    an aware datetime; None when not one."""
    match = _TIME.fullmatch(text or "")
    if not match:
        return None
    whole, fraction, zone = match.groups()
    fraction = (fraction or ".")[:7].ljust(7, "0")  # microseconds, 6 digits (Python 3.10 takes only 3 or 6)
    return datetime.fromisoformat(whole + fraction + ("+00:00" if zone == "Z" else zone))
