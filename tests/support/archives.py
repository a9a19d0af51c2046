"""Archives for tests: written with the real writer (optionally without its refusal of unsafe members, to make the
malicious archives a restore must refuse), and damaged in the ways archives get damaged."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

from stackctl.core.archive import DIR, FILE, Manifest, Member, Segment
from stackctl.shells import archive as shell
from stackctl.shells.archive import TAR_END, ArchiveWriter, Sealing, tar_header, tar_padding

Entry = tuple[Member, bytes]


def entry(path: str, data: bytes = b"", kind: str = FILE, target: str = "", mode: int = 0o644) -> Entry:
    size = len(data) if kind == FILE else 0
    digest = hashlib.sha256(data).hexdigest() if kind == FILE else ""
    return Member(path, kind, size, digest, mode, 1_700_000_000, target), data


@contextlib.contextmanager
def unchecked():
    """Let the writer write members it would refuse (the reader must refuse them on its own)."""
    original = shell.check_members
    shell.check_members = lambda members: []
    try:
        yield
    finally:
        shell.check_members = original


def write(directory: Path, segments: dict[str, list[Entry]], sealing: Sealing | None = None,
          name: str = "test-20260820T100000Z.stackctl", tar_names: dict[str, str] | None = None,
          versions: dict[str, str] | None = None, strategies: dict[str, str] | None = None, **manifest) -> Path:
    """An archive holding `segments` (service -> entries). `tar_names` renames entries in the tar stream only (the
    manifest keeps the member's own path): data tampered with behind the manifest's back."""
    writer = ArchiveWriter(directory, name, sealing)
    try:
        return _write(writer, segments, sealing, tar_names, versions, strategies, manifest)
    except BaseException:
        writer.abort()
        raise


def _write(writer, segments, sealing, tar_names, versions, strategies, manifest) -> Path:
    built = []
    for service, entries in segments.items():
        with writer.segment(service) as out:
            for member, data in entries:
                header = (tar_names or {}).get(member.path, member.path)
                out._write(tar_header(header, member))
                if member.type == FILE:
                    out._write(data + tar_padding(len(data)))
                out.members.append(member)
        members, offset, length, frames = writer.last
        built.append(Segment(service, service.title(), (strategies or {}).get(service, "TsdbSnapshot"),
                             f"img:{(versions or {}).get(service, '2.42.0')}", (versions or {}).get(service, "2.42.0"),
                             members, offset, length, "s", "f", frames=frames))
    fields = dict(project="test", stackctl_version="0.1.0", bundle_stackctl_version="0.1.0", created="c",
                  finished="f", encrypted=sealing is not None, includes_secrets=False, segments=tuple(built))
    fields.update(manifest)
    return writer.finish(Manifest(**fields), {"project": fields["project"], "created": "c",
                                               "services": list(segments)})


def data_offset(path: Path) -> int:
    with path.open("rb") as handle:
        _, reserve = struct.unpack("<II", handle.read(8))
    return 8 + reserve


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def truncate(path: Path, drop: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - drop)


TSDB = [entry("01H", kind=DIR, mode=0o755), entry("01H/chunks", kind=DIR, mode=0o755),
        entry("01H/chunks/000001", b"chunk-bytes" * 1000), entry("01H/index", b"index" * 100),
        entry("01H/meta.json", b'{"ulid":"01H"}'), entry("01H/tombstones", b"\x00" * 9)]

__all__ = ["TAR_END", "entry", "unchecked", "write", "data_offset", "flip", "truncate", "TSDB"]
