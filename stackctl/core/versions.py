"""Image references and the versions read from their tags: what decides version-dependent flags and keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")

# The image reference grammar of the Docker engine (distribution/reference, regexp.go): an optional registry host,
# lower-case path components, an optional tag, an optional digest.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
# A registry mirror: a host (with port) and optionally a path prefix on it.
MIRROR = re.compile(rf"{DOMAIN}(?:/{_PATH_COMPONENT})*")


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
        """Split a reference; ValueError when the Docker engine would not accept it."""
        match = _REFERENCE.fullmatch(text)
        if not match or not _name_ok(match.group("name")):
            raise ValueError(f"not a valid image reference: {text!r} (repository names are lower case: "
                             "[registry[:port]/]name[:tag][@digest])")
        return cls(match.group("name"), match.group("tag"), match.group("digest"))

    def __str__(self) -> str:
        text = self.repository + (f":{self.tag}" if self.tag else "")
        return text + (f"@{self.digest}" if self.digest else "")

    @property
    def version(self) -> Version | None:
        return Version.parse(self.tag) if self.tag else None


def _name_ok(name: str) -> bool:
    """The engine reads the first component as a registry host only when it has a dot or a colon or is
    localhost; otherwise it is a path component and must be lower case."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return True
    return re.fullmatch(_PATH_COMPONENT, first) is not None


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
