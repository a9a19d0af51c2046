"""The backup archive, the pure part: the manifest (what was captured, per service, with a SHA-256 of every member),
the rules a member must obey to be restored (no escaping its target), the version rules between an archive and the
stack it is restored onto, archive names, and the journal a restore keeps so that a re-run can finish or roll back.

Reading and writing archives is a shell (stackctl.shells.archive); the layout on disk is described there.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from stackctl.core.errors import StackError
from stackctl.core.versions import Version

FORMAT = "stackctl-backup"
FORMAT_VERSION = 1
SUFFIX = ".stackctl"  # every archive's file name ends with this
STACK_SECTION = "stack"  # the pseudo-service holding stack.yaml (and, when asked, the secrets)

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
MEMBER_TYPES = (FILE, DIR, SYMLINK, HARDLINK)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"(?P<project>[a-z0-9][a-z0-9_-]*)-(?P<stamp>\d{8}T\d{6}Z)" + re.escape(SUFFIX))
MAX_PATH = 4096


class ArchiveError(StackError):
    """The archive cannot be trusted or read: corrupted, truncated, tampered with, foreign, or wrongly decrypted.
    Nothing was changed when this is raised."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def archive_name(project: str, moment: datetime) -> str:
    """`<project>-<UTC time>.stackctl`: sorts by time, says whose it is."""
    return f"{project}-{moment.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}{SUFFIX}"


def parse_archive_name(name: str) -> tuple[str, str] | None:
    """(project, stamp) of a name archive_name made; None for any other file."""
    match = _NAME.fullmatch(name)
    return (match["project"], match["stamp"]) if match else None


# --- members -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One entry of a service's data, as restored under that service's target directory.

    `path` is relative and normalised (no `.`, `..`, empty or absolute parts). `target` is a symlink's target
    (relative to the link's directory) or, for a hard link, the path of an earlier file member."""

    path: str
    type: str = FILE
    size: int = 0
    sha256: str = ""
    mode: int = 0o644
    mtime: int = 0
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "type": self.type, "mode": self.mode, "mtime": self.mtime}
        if self.type == FILE:
            data.update(size=self.size, sha256=self.sha256)
        if self.type in (SYMLINK, HARDLINK):
            data["target"] = self.target
        return data

    @classmethod
    def from_json(cls, data: Any) -> "Member":
        if not isinstance(data, dict):
            raise ArchiveError("the manifest is malformed: a member is not an object")
        try:
            return cls(path=str(data["path"]), type=str(data["type"]), size=int(data.get("size", 0)),
                       sha256=str(data.get("sha256", "")), mode=int(data.get("mode", 0o644)),
                       mtime=int(data.get("mtime", 0)), target=str(data.get("target", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise ArchiveError(f"the manifest is malformed: a member lacks or mistypes {error}") from None


def member_problem(path: str) -> str:
    """Why `path` cannot be a member path ("" when it can): it must stay inside the target directory."""
    if not path or len(path) > MAX_PATH:
        return "an empty or overlong path"
    if "\0" in path:
        return "a NUL byte in the path"
    if path.startswith("/"):
        return "an absolute path"
    parts = path.split("/")
    if ".." in parts:
        return "a '..' component"
    if any(part in ("", ".") for part in parts):
        return "an empty or '.' component (not a normalised path)"
    return ""


def link_target_problem(link_path: str, target: str) -> str:
    """Why a symlink at `link_path` pointing at `target` would lead outside the target directory ("" if not)."""
    if not target or "\0" in target:
        return "an empty link target"
    if target.startswith("/"):
        return f"a link to the absolute path {target}"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"a link to {target}, outside its target directory"
    return ""


def check_members(members: list[Member]) -> list[str]:
    """Every reason these members cannot be restored safely (empty when they can). Checked before anything is
    written, from the manifest alone; the data read later must match the manifest member for member."""
    problems = []
    seen: dict[str, Member] = {}
    for member in members:
        where = repr(member.path[:200])
        problem = member_problem(member.path)
        if problem:
            problems.append(f"member {where}: {problem}")
            continue
        if member.type not in MEMBER_TYPES:
            problems.append(f"member {where}: type {member.type!r} (only files, directories and links are restored; "
                            "devices, fifos and sockets never are)")
            continue
        if member.path in seen:
            problems.append(f"member {where}: listed twice")
            continue
        parents = member.path.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            parent = seen.get("/".join(parents[:i]))
            if parent is not None and parent.type != DIR:
                problems.append(f"member {where}: lies under {parent.path!r}, which is a {parent.type}, not a "
                                "directory (writing through a link is refused)")
                break
        if member.type == FILE and (member.size < 0 or not _HEX64.fullmatch(member.sha256)):
            problems.append(f"member {where}: no valid size and SHA-256")
        if member.type == SYMLINK:
            problem = link_target_problem(member.path, member.target)
            if problem:
                problems.append(f"member {where}: {problem}")
        if member.type == HARDLINK:
            target = seen.get(member.target)
            if target is None or target.type != FILE:
                problems.append(f"member {where}: a hard link to {member.target[:200]!r}, which is not an earlier "
                                "file of the same service")
        if not 0 <= member.mode <= 0o7777:
            problems.append(f"member {where}: mode {member.mode:o} is not a permission mode")
        seen[member.path] = member
    return problems


# --- the manifest ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One service's part of an archive: what was captured, how, and where its data lies in the data section."""

    service: str  # catalog key, or STACK_SECTION
    title: str
    strategy: str  # the catalog declaration's type name, e.g. TsdbSnapshot
    image: str = ""
    version: str = ""  # the image version the data was taken from
    members: tuple[Member, ...] = ()
    offset: int = 0  # of its bytes in the data section
    length: int = 0  # bytes in the data section (compressed, and encrypted when the archive is)
    started: str = ""
    finished: str = ""
    notes: tuple[str, ...] = ()  # what the operator should know (what is and is not in it)
    details: dict[str, Any] = field(default_factory=dict)  # strategy facts the restore needs (e.g. snapshot name)
    frames: tuple[int, ...] = ()  # compressed length of each of its zstd frames (before any encryption)

    @property
    def size(self) -> int:
        """Bytes of data before compression."""
        return sum(m.size for m in self.members)

    def member(self, path: str) -> Member | None:
        return next((m for m in self.members if m.path == path), None)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "title": self.title, "strategy": self.strategy, "image": self.image,
                "version": self.version, "offset": self.offset, "length": self.length, "size": self.size,
                "started": self.started, "finished": self.finished, "notes": list(self.notes),
                "details": self.details, "frames": list(self.frames), "members": [m.to_json() for m in self.members]}

    @classmethod
    def from_json(cls, data: Any) -> "Segment":
        if not isinstance(data, dict):
            raise ArchiveError("the manifest is malformed: a service entry is not an object")
        try:
            members = data["members"]
            if not isinstance(members, list):
                raise TypeError("members")
            details = data.get("details") or {}
            if not isinstance(details, dict):
                raise TypeError("details")
            return cls(service=str(data["service"]), title=str(data.get("title") or data["service"]),
                       strategy=str(data["strategy"]), image=str(data.get("image", "")),
                       version=str(data.get("version", "")), members=tuple(Member.from_json(m) for m in members),
                       offset=int(data["offset"]), length=int(data["length"]), started=str(data.get("started", "")),
                       finished=str(data.get("finished", "")), notes=tuple(str(n) for n in data.get("notes") or ()),
                       details=details, frames=tuple(int(f) for f in data["frames"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ArchiveError(f"the manifest is malformed: a service entry lacks or mistypes {error}") from None


@dataclass(frozen=True)
class NotKept:
    """A service whose data a backup does not hold, and why (said plainly in the manifest and the report)."""

    service: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    project: str
    stackctl_version: str  # of the stackctl that made the archive
    bundle_stackctl_version: str  # of the stackctl that rendered the running bundle ("" when it did not say)
    created: str
    finished: str
    encrypted: bool
    includes_secrets: bool
    segments: tuple[Segment, ...]
    not_kept: tuple[NotKept, ...] = ()
    data_length: int = 0  # bytes of the data section: a shorter file is truncated
    format_version: int = FORMAT_VERSION

    def segment(self, service: str) -> Segment | None:
        return next((s for s in self.segments if s.service == service), None)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s.service for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": self.format_version, "project": self.project,
                "stackctl_version": self.stackctl_version, "bundle_stackctl_version": self.bundle_stackctl_version,
                "created": self.created, "finished": self.finished, "encrypted": self.encrypted,
                "includes_secrets": self.includes_secrets, "data_length": self.data_length,
                "services": [s.to_json() for s in self.segments],
                "not_kept": [asdict(n) for n in self.not_kept]}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Manifest":
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ArchiveError("the manifest is not JSON: the archive is corrupted") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ArchiveError("the manifest is not a stackctl backup manifest")
        if body.get("format_version") != FORMAT_VERSION:
            raise ArchiveError(f"archive format version {body.get('format_version')!r}: this stackctl reads version "
                               f"{FORMAT_VERSION}; use the stackctl that made it")
        try:
            segments = tuple(Segment.from_json(s) for s in body["services"])
            not_kept = tuple(NotKept(str(n["service"]), str(n["reason"])) for n in body.get("not_kept") or ())
            manifest = cls(project=str(body["project"]), stackctl_version=str(body["stackctl_version"]),
                           bundle_stackctl_version=str(body.get("bundle_stackctl_version") or ""),
                           created=str(body["created"]), finished=str(body["finished"]),
                           encrypted=bool(body["encrypted"]), includes_secrets=bool(body["includes_secrets"]),
                           segments=segments, not_kept=not_kept, data_length=int(body["data_length"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ArchiveError(f"the manifest is malformed: it lacks or mistypes {error}") from None
        manifest.check_layout()
        return manifest

    def check_layout(self) -> None:
        """Segments lie inside the data section, one after another, without overlapping; services are unique; a
        plain segment is exactly its frames."""
        position = 0
        seen = set()
        for segment in self.segments:
            if segment.service in seen:
                raise ArchiveError(f"the manifest lists {segment.service} twice")
            seen.add(segment.service)
            if not segment.frames or min(segment.frames) <= 0 or (
                    not self.encrypted and sum(segment.frames) != segment.length):
                raise ArchiveError(f"the manifest's frames of {segment.service} do not make up its data: tampered or "
                                   "corrupted")
            if segment.offset != position or segment.length < 0:
                raise ArchiveError(f"the manifest places {segment.service}'s data at bytes {segment.offset}+"
                                   f"{segment.length}, not right after the previous service's: tampered or corrupted")
            position += segment.length
        if position != self.data_length:
            raise ArchiveError(f"the manifest's services add up to {position} bytes of data, not the {self.data_length} "
                               "it declares: tampered or corrupted")


# --- versions ----------------------------------------------------------------------------------------------------

OK, WARN, REFUSE = "ok", "warning", "refused"


def version_verdict(title: str, source: Version | None, target: Version | None, majors_forward: int,
                    refuse_older: bool) -> tuple[str, str]:
    """May data taken from `title` `source` be restored onto `target`? (verdict, what to tell the operator).

    `majors_forward` is how many major versions newer the target may be (the service reads older data); a target
    with an older major, or further ahead, is refused. An older minor version is refused with `refuse_older` and
    warned about otherwise."""
    if source is None or target is None:
        return WARN, f"{title}: the versions cannot be compared ({source or 'unknown'} -> {target or 'unknown'})"
    if source == target:
        return OK, ""
    if target.major < source.major or target.major - source.major > majors_forward:
        allowed = "the same major version" if majors_forward == 0 else (
            f"the same major version or up to {majors_forward} newer")
        return REFUSE, (f"{title}: the backup holds data of {source}, this stack runs {target}; it restores only onto "
                        f"{allowed}. Restore onto a stack running {title} {source.major}.x "
                        "(services.<name>.image in stack.yaml), then upgrade")
    if target < source:
        message = f"{title}: the backup holds data of {source}, newer than this stack's {target}"
        if refuse_older:
            return REFUSE, message + f"; {title} does not read data of newer versions. Run {source} or newer"
        return WARN, message + "; an older version may not read everything in it"
    if target.major != source.major:
        return WARN, f"{title}: data of {source} is restored onto {target}, a new major version that converts it"
    return OK, ""


# --- the restore journal ------------------------------------------------------------------------------------------

# Phases of a restore, in order. Before SWAPPING nothing live was touched; from COMMITTED on nothing of the old data
# is left to go back to.
STAGING, STAGED, SWAPPING, SWAPPED, IMPORTING, COMMITTED = (
    "staging", "staged", "swapping", "swapped", "importing", "committed")
PHASES = (STAGING, STAGED, SWAPPING, SWAPPED, IMPORTING, COMMITTED)


@dataclass
class JournalEntry:
    """One service's part of a restore: `kind` is "swap" (data staged in its volume, then swapped in with the
    service stopped) or "import" (sent through its API once running); `done` lists what an import already did."""

    service: str
    kind: str
    volume: str = ""
    image: str = ""
    owner: str = ""  # uid:gid the swapped data belongs to
    swapped: bool = False
    done: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # what an import must know to be undone


@dataclass
class RestoreJournal:
    """What a restore in progress has done, kept in the state directory (written atomically at every step), so a
    restore killed at any point can be finished (`stackctl restore --resume`) or undone (`--rollback`)."""

    id: str
    archive: str
    project: str
    started: str
    phase: str
    entries: list[JournalEntry] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # compose names the restore stopped (started again at the end)

    def entry(self, service: str) -> JournalEntry | None:
        return next((e for e in self.entries if e.service == service), None)

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "RestoreJournal":
        try:
            body = json.loads(data)
            entries = [JournalEntry(**e) for e in body.pop("entries")]
            journal = cls(**body, entries=entries)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise StackError(f"{where} is not a restore journal stackctl can read; look at it, and remove it only once "
                             "you know the data of the services in it is whole") from None
        if journal.phase not in PHASES:
            raise StackError(f"{where}: unknown restore phase {journal.phase!r}")
        return journal
