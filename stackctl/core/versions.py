"""Image references and the versions read from their tags: what decides version-dependent flags and keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "Version | None":
        match = _VERSION.match(text)
        if not match:
            return None
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:  # also compares with plain tuples in templates: version >= (3, 0)
        if isinstance(other, tuple):
            return self._key() < tuple(other) + (0,) * (3 - len(other))
        if isinstance(other, Version):
            return self._key() < other._key()
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return self._key() == tuple(other) + (0,) * (3 - len(other))
        if isinstance(other, Version):
            return self._key() == other._key()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into repository (with any registry host) and tag."""

    repository: str
    tag: str | None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> "ImageRef":
        digest = None
        if "@" in text:
            text, digest = text.split("@", 1)
        last = text.rsplit("/", 1)[-1]
        if ":" in last:
            repository, tag = text.rsplit(":", 1)
            return cls(repository, tag, digest)
        return cls(text, None, digest)

    def __str__(self) -> str:
        text = self.repository + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")

    @property
    def version(self) -> Version | None:
        return Version.parse(self.tag) if self.tag else None


def with_mirror(repository: str, mirror: str) -> str:
    """Point an upstream repository at a registry mirror: the mirror replaces the registry host.

    prom/prometheus -> MIRROR/prom/prometheus; docker.elastic.co/elasticsearch/elasticsearch -> MIRROR/elasticsearch/elasticsearch
    """
    if not mirror:
        return repository
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        repository = rest
    return mirror.rstrip("/") + "/" + repository
