"""Reading and writing backup archives: one file per backup, the manifest first, then each service's data as a tar
stream compressed with zstandard, optionally encrypted with age (pyrage). The manifest's model is
stackctl.core.archive; this module owns the bytes.

Layout of `<project>-<time>.stackctl`:

    [zstd skippable frame (magic 0x184D2A5E, 4-byte little-endian length F)]
        "STACKCTL-BACKUP 1\n"
        header: one line of JSON (encryption, manifest length and SHA-256, a plain summary for `backup list`)
        manifest: JSON, or an age file of that JSON when encrypted
        zero padding up to F
    [data section]: each service's segment, one after another, where the manifest says
        segment = a tar stream cut into independent zstd frames (8 MiB of it each, with checksums; their lengths
        in the manifest, so they compress and decompress in parallel), or an age file of those frames

A plain archive is therefore a valid zstd stream: `zstd -dc FILE | tar -tiv` lists every service's files. The
manifest is written last into space reserved at the front (relocated once when it outgrows it), so data streams
straight from the services into the file once. An archive is written as `.<name>.partial` under an exclusive lock
and renamed when whole: a crash leaves no file that looks like a backup.

Encryption is age's: with a key file the data is encrypted to its recipients (public keys; an identity file gives
its own); with a passphrase, pyrage has no streaming passphrase mode, so the archive is encrypted to a one-time age
identity that is itself age-encrypted with the passphrase (scrypt) in the header. Age authenticates what it
decrypts: a tampered encrypted archive fails to decrypt. A plain archive carries SHA-256 checksums of its manifest
and of every member, and zstd checksums of every frame, which find corruption but cannot prove who wrote it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import struct
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from stackctl.core.archive import (DIR, FILE, HARDLINK, SYMLINK, ArchiveError, Manifest, Member, Segment,
                                   check_members)
from stackctl.core.errors import StackError

MAGIC = b"STACKCTL-BACKUP 1\n"
SKIPPABLE = 0x184D2A5E  # a zstd skippable frame: decompressors pass over it
RESERVE = 64 * 1024  # bytes reserved at the front for header and manifest
MAX_PREAMBLE = 256 * 1024 * 1024
CHUNK = 1024 * 1024
FRAME = 8 * 1024 * 1024  # bytes of tar stream per zstd frame: frames compress and decompress in parallel
IN_FLIGHT = 4  # frames being compressed or decompressed ahead
LEVEL = 3  # zstd's default level: fast, and within a few percent of level 9 on TSDB blocks
PARTIAL = ".partial"
BLOCK = 512

Progress = Callable[[int], None]  # called with the number of bytes just processed


def _quiet(count: int) -> None:
    pass


# --- encryption -----------------------------------------------------------------------------------------------


@dataclass
class Sealing:
    """How an archive being written is encrypted: to these age recipients; with a passphrase, the one-time
    identity they belong to travels in the header, encrypted with the passphrase."""

    recipients: list
    method: str  # "key" or "passphrase"
    wrapped_identity: bytes = b""


def seal_with_passphrase(passphrase: str) -> Sealing:
    import pyrage

    if len(passphrase) < 8:
        raise StackError("the passphrase is too short: use at least 8 characters (a sentence is better)")
    identity = pyrage.x25519.Identity.generate()
    wrapped = pyrage.passphrase.encrypt(str(identity).encode(), passphrase)
    return Sealing([identity.to_public()], "passphrase", wrapped)


def _key_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StackError(f"cannot read the key file {path}: {getattr(error, 'strerror', None) or error}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def seal_with_key_file(path: Path) -> Sealing:
    """An age identity file (AGE-SECRET-KEY-1..., as `age-keygen` writes) encrypts to its public key; a recipients
    file (age1... lines) to those keys, so the machine taking backups needs no secret key."""
    import pyrage

    recipients = []
    for line in _key_lines(path):
        try:
            if line.startswith("AGE-SECRET-KEY-"):
                recipients.append(pyrage.x25519.Identity.from_str(line).to_public())
            else:
                recipients.append(pyrage.x25519.Recipient.from_str(line))
        except Exception:
            raise StackError(f"{path}: a line is neither an age identity (AGE-SECRET-KEY-1...) nor an age recipient "
                             "(age1...); make one with `age-keygen` or `stackctl backup keygen`") from None
    if not recipients:
        raise StackError(f"{path} holds no age key")
    return Sealing(recipients, "key")


def generate_identity() -> tuple[str, str]:
    """A new age identity: (secret key line, public key)."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


@dataclass
class Unsealing:
    """What may open encrypted archives: a passphrase and/or an identity file."""

    passphrase: str | None = None
    key_file: Path | None = None

    def identities(self, header: dict) -> list:
        import pyrage

        encryption = header.get("encryption") or {}
        if encryption.get("method") == "passphrase":
            if self.passphrase is None:
                raise ArchiveError("the archive is encrypted with a passphrase: give it with --passphrase-file "
                                   "(or type it when asked)", exit_code=2)
            try:
                wrapped = base64.b64decode(encryption["wrapped_identity"], validate=True)
                identity = pyrage.passphrase.decrypt(wrapped, self.passphrase).decode()
                return [pyrage.x25519.Identity.from_str(identity)]
            except (KeyError, ValueError, TypeError):
                raise ArchiveError("the archive's header is malformed: its key cannot be read") from None
            except pyrage.DecryptError:
                raise ArchiveError("wrong passphrase: the archive's key does not decrypt with it") from None
        if self.key_file is None:
            raise ArchiveError("the archive is encrypted to an age key: give its identity file with --key-file",
                               exit_code=2)
        identities = []
        for line in _key_lines(self.key_file):
            if line.startswith("AGE-SECRET-KEY-"):
                try:
                    identities.append(pyrage.x25519.Identity.from_str(line))
                except Exception:
                    raise StackError(f"{self.key_file}: an AGE-SECRET-KEY line is not a valid age identity") from None
        if not identities:
            raise StackError(f"{self.key_file} holds no age identity (AGE-SECRET-KEY-1...): a recipients file can "
                             "encrypt backups but not open them")
        return identities


# --- streams ----------------------------------------------------------------------------------------------------


class _Slice(io.RawIOBase):
    """Reads `length` bytes of `handle` from `start` (its own position, so several can share one file)."""

    def __init__(self, handle: BinaryIO, start: int, length: int):
        self.handle, self.position, self.left = handle, start, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        size = min(len(buffer), self.left)
        data = os.pread(self.handle.fileno(), size, self.position)
        if not data:
            raise ArchiveError("the archive ends early: it is truncated")
        buffer[: len(data)] = data
        self.position += len(data)
        self.left -= len(data)
        return len(data)


class _Pipe:
    """A pipe between a producer thread (age) and the caller: the reader end is a file object; an exception in the
    thread is raised in the caller when it closes the pipe."""

    def __init__(self):
        read_fd, write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb", buffering=CHUNK)
        self.writer = os.fdopen(write_fd, "wb", buffering=CHUNK)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def run(self, work: Callable[[], None], close_writer: bool) -> None:
        def target() -> None:
            try:
                work()
            except BaseException as error:  # handed to the caller
                self.error = error
            finally:
                if close_writer:
                    with contextlib.suppress(OSError):
                        self.writer.close()

        self.thread = threading.Thread(target=target, daemon=True, name="stackctl age")
        self.thread.start()


class Cursor:
    """Reads an iterator of byte chunks (an engine's HTTP stream, a decompressor's output) without copying: `take`
    hands out slices of the chunks as they came."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = iter(chunks)
        self.pending = memoryview(b"")

    def _fill(self) -> bool:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return False
            self.pending = memoryview(chunk)
        return True

    def take(self, size: int):
        """Up to `size` bytes (a memoryview), at least one unless the stream ended (then empty)."""
        if not self._fill():
            return memoryview(b"")
        piece, self.pending = self.pending[:size], self.pending[size:]
        return piece

    def exact(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            piece = self.take(left)
            if not piece:
                raise EOFError(f"the tar stream ends {left} bytes early")
            parts.append(piece)
            left -= len(piece)
        return b"".join(parts)

    def rest(self) -> Iterator:
        while self._fill():
            piece, self.pending = self.pending, memoryview(b"")
            yield piece


def prefetch(chunks: Iterable[bytes], depth: int = 8) -> Iterator[bytes]:
    """The same chunks, produced by a thread of their own `depth` ahead: reading (an engine's HTTP stream, a
    decompressor) overlaps with what the consumer does (hashing, compressing, sending). An exception in the
    producer is raised in the consumer."""
    import queue

    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        box.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as error:  # handed to the consumer
            box.put(error)

    thread = threading.Thread(target=produce, daemon=True, name="stackctl prefetch")
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def ordered_map(work: Callable[[bytes], bytes], items: Iterable[bytes], threads: int) -> Iterator[bytes]:
    """work(item) for each item, `threads` at a time, in order, IN_FLIGHT ahead. zstandard's one-shot compress and
    decompress release the GIL, so frames run in parallel with each other and with the caller's hashing and I/O."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="stackctl zstd") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


ZERO_BLOCK = bytes(BLOCK)


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\n` records of a pax extended header."""
    records, position = {}, 0
    while position < len(data):
        space = data.index(b" ", position)
        length = int(data[position:space])
        if length <= 0:
            raise tarfile.HeaderError("bad pax record length")
        key, _, value = data[space + 1:position + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def tar_entries(cursor: Cursor) -> Iterator[tuple[tarfile.TarInfo, Iterator]]:
    """Each entry of a tar stream (ustar, pax and GNU long names, as Go's archive/tar and Python's tarfile write
    them) with an iterator over its data, read straight from the cursor; it stops at the end-of-archive block. A
    header whose checksum is wrong raises tarfile.HeaderError. Data a consumer leaves unread is skipped."""
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        block = cursor.exact(BLOCK)
        if block == ZERO_BLOCK:
            return
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            payload = cursor.exact(info.size)
            cursor.exact(-info.size % BLOCK)
            if info.type == tarfile.XHDTYPE:
                pax = _pax_records(payload)
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = payload.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.GNUTYPE_LONGLINK:
                long_link = payload.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if "path" in pax or long_name:
            info.name = pax.get("path") or long_name
        if "linkpath" in pax or long_link:
            info.linkname = pax.get("linkpath") or long_link
        if "size" in pax:
            info.size = int(pax["size"])
        if "mtime" in pax:
            info.mtime = float(pax["mtime"])
        pax, long_name, long_link = {}, None, None
        if info.isdir():
            info.name = info.name.rstrip("/")
        size = info.size if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) else 0
        data = _entry_data(cursor, size)
        yield info, data
        for _ in data:  # what the consumer left
            pass


def _entry_data(cursor: Cursor, size: int) -> Iterator:
    left = size
    while left:
        piece = cursor.take(min(left, CHUNK))
        if not piece:
            raise EOFError("the tar stream ends inside a file")
        left -= len(piece)
        yield piece
    padding = -size % BLOCK
    if padding:
        cursor.exact(padding)


# --- tar headers ----------------------------------------------------------------------------------------------


def tar_header(name: str, member: Member, uid: int = 0, gid: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid = member.mode, member.mtime, uid, gid
    info.uname = info.gname = ""
    if member.type == FILE:
        info.size = member.size
    elif member.type == DIR:
        info.type = tarfile.DIRTYPE
    elif member.type == SYMLINK:
        info.type, info.linkname = tarfile.SYMTYPE, member.target
    elif member.type == HARDLINK:
        info.type, info.linkname = tarfile.LNKTYPE, member.target
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


TAR_END = b"\0" * (2 * BLOCK)


def member_from_tarinfo(info: tarfile.TarInfo, path: str) -> Member:
    """The member a tar entry describes (checksum not known yet); other entry types keep their tar type name."""
    kind = {tarfile.REGTYPE: FILE, tarfile.AREGTYPE: FILE, tarfile.DIRTYPE: DIR, tarfile.SYMTYPE: SYMLINK,
            tarfile.LNKTYPE: HARDLINK, tarfile.CONTTYPE: FILE}.get(info.type)
    if kind is None:
        kind = {tarfile.CHRTYPE: "char-device", tarfile.BLKTYPE: "block-device", tarfile.FIFOTYPE: "fifo"}.get(
            info.type, f"tar type {info.type!r}")
    return Member(path=path, type=kind, size=info.size if kind == FILE else 0, mode=info.mode & 0o7777,
                  mtime=int(info.mtime), target=info.linkname if kind in (SYMLINK, HARDLINK) else "")


# --- writing --------------------------------------------------------------------------------------------------


class SegmentWriter:
    """One service's data: members appended as a tar stream, cut into zstd frames of FRAME bytes (compressed by a
    pool while this thread reads and hashes), written (through age when encrypting) into the archive file."""

    def __init__(self, archive: "ArchiveWriter", service: str):
        import queue

        self.archive, self.service = archive, service
        self.members: list[Member] = []
        self.frames: list[int] = []
        self.start = archive.handle.tell()
        self.pipe: _Pipe | None = None
        self.target: BinaryIO = archive.handle
        if archive.sealing is not None:
            import pyrage

            self.pipe = pipe = _Pipe()
            recipients, handle = archive.sealing.recipients, archive.handle
            pipe.run(lambda: pyrage.encrypt_io(pipe.reader, handle, recipients), close_writer=False)
            self.target = pipe.writer
        self.pieces: list = []
        self.buffered = 0
        # The tar stream's frames go to a thread that compresses them (in a pool) and writes them in order.
        self.inbox: queue.Queue = queue.Queue(maxsize=IN_FLIGHT)
        self.failure: BaseException | None = None
        self.writer = threading.Thread(target=self._compress_and_write, daemon=True, name="stackctl frames")
        self.writer.start()
        self.progress = archive.progress

    def _compress_and_write(self) -> None:
        import zstandard

        level = self.archive.level

        def frames():
            while True:
                frame = self.inbox.get()
                if frame is None:
                    return
                yield frame

        def compress(data: bytes) -> bytes:
            return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)

        try:
            for compressed in ordered_map(compress, frames(), self.archive.threads):
                self.target.write(compressed)
                self.frames.append(len(compressed))
        except BaseException as error:  # reported by close()
            self.failure = error
            for _ in frames():  # let the producer finish
                pass

    def _write(self, data) -> None:
        if self.failure is not None:
            raise StackError(f"compressing {self.service}'s data failed: {self.failure}")
        self.pieces.append(data)
        self.buffered += len(data)
        if self.buffered >= FRAME:
            joined = b"".join(self.pieces)
            cut = len(joined) - len(joined) % FRAME
            for offset in range(0, cut, FRAME):
                self.inbox.put(joined[offset:offset + FRAME])
            self.pieces = [joined[cut:]] if cut < len(joined) else []
            self.buffered = len(joined) - cut

    def add_file(self, path: str, size: int, chunks: Iterable[bytes], mode: int = 0o644, mtime: int = 0) -> Member:
        """Stream `size` bytes from `chunks` as a file member, hashing them on the way."""
        header = Member(path, FILE, size, "0" * 64, mode, mtime)
        self._write(tar_header(path, header))
        digest = hashlib.sha256()
        written = 0
        for chunk in chunks:
            if not chunk:
                continue
            written += len(chunk)
            if written > size:
                raise StackError(f"{self.service}: {path} grew while it was being copied; try the backup again")
            digest.update(chunk)
            self._write(chunk)
            self.progress(len(chunk))
        if written != size:
            raise StackError(f"{self.service}: {path} is {written} bytes, its header said {size}; try the backup again")
        self._write(tar_padding(size))
        member = Member(path, FILE, size, digest.hexdigest(), mode, mtime)
        self.members.append(member)
        return member

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> Member:
        return self.add_file(path, len(data), [data], mode, mtime)

    def add_tar_stream(self, chunks: Iterable[bytes], strip: str = "", prefix: str = "") -> None:
        """Append every entry of a tar stream (as the Docker engine makes it), renamed: the leading directory
        `strip` removed (the directory itself is the restore target, not a member), `prefix` put in front.
        Devices, fifos and entries outside `strip` are refused rather than kept. The stream is read by a thread of
        its own while this one hashes and compresses."""
        from stackctl.core.archive import member_problem

        try:
            for info, data in tar_entries(Cursor(prefetch(chunks))):
                name = info.name.rstrip("/")
                if strip:
                    if name == strip:
                        continue
                    if not name.startswith(strip + "/"):
                        raise StackError(f"{self.service}: the engine's copy holds {name[:200]!r}, outside {strip}")
                    name = name[len(strip) + 1:]
                path = f"{prefix}{name}"
                member = member_from_tarinfo(info, path)
                problem = member_problem(path)
                if problem or member.type not in (FILE, DIR, SYMLINK, HARDLINK):
                    raise StackError(f"{self.service}: refusing to back up {name[:200]!r}: "
                                     f"{problem or 'a ' + member.type}")
                if member.type == HARDLINK:
                    target = info.linkname
                    if strip and target.startswith(strip + "/"):
                        target = target[len(strip) + 1:]
                    member = Member(path, HARDLINK, mode=member.mode, mtime=member.mtime, target=prefix + target)
                if member.type == FILE:
                    self.add_file(path, info.size, data, member.mode, member.mtime)
                else:
                    self.add_entry(member)
        except (tarfile.TarError, EOFError) as error:
            raise StackError(f"{self.service}: the engine's copy is not a whole tar stream ({error})") from None

    def add_entry(self, member: Member) -> Member:
        """A directory or a link (no data)."""
        self._write(tar_header(member.path, member))
        self.members.append(member)
        return member

    def close(self) -> tuple[tuple[Member, ...], int, int, tuple[int, ...]]:
        """End the tar stream and the last frame; (members, offset in the data section, length, frame lengths)."""
        self._write(TAR_END)
        if self.pieces:
            self.inbox.put(b"".join(self.pieces))
            self.pieces, self.buffered = [], 0
        self.inbox.put(None)
        self.writer.join()
        self.target.flush()
        if self.pipe is not None:
            self.pipe.writer.close()
            self.pipe.thread.join()
            self.pipe.reader.close()
            if self.pipe.error is not None:
                raise StackError(f"encrypting {self.service}'s data failed: {self.pipe.error}")
        if self.failure is not None:
            raise StackError(f"compressing {self.service}'s data failed: {self.failure}")
        end = self.archive.handle.tell()
        problems = check_members(self.members)
        if problems:  # what the service handed over could not be restored safely: refuse to write it
            raise StackError(f"{self.service}'s data cannot be backed up as it is: " + "; ".join(problems[:5]))
        return tuple(self.members), self.start - self.archive.data_offset, end - self.start, tuple(self.frames)

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self.inbox.put(None, timeout=10)
        self.writer.join(timeout=30)
        if self.pipe is not None:
            with contextlib.suppress(Exception):
                self.pipe.writer.close()
            self.pipe.thread.join(timeout=10)
            with contextlib.suppress(Exception):
                self.pipe.reader.close()


class ArchiveWriter:
    """Writes one archive into `directory`: segments first (into space after a reserved front), then `finish`
    writes the header and manifest in front and renames the file into place."""

    def __init__(self, directory: Path, name: str, sealing: Sealing | None = None, level: int = LEVEL,
                 threads: int = 1, progress: Progress = _quiet, reserve: int = RESERVE):
        self.directory, self.name, self.sealing, self.level, self.threads = directory, name, sealing, level, threads
        self.progress = progress
        self.path = directory / name
        self.partial = directory / f".{name}{PARTIAL}"
        self.reserve = reserve
        self.data_offset = 8 + reserve
        directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise StackError(f"{self.path} already exists; wait a second or choose another --output")
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.handle = os.fdopen(fd, "w+b", buffering=CHUNK)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # `backup prune` leaves locked partial files alone
        self.handle.seek(self.data_offset)

    @contextlib.contextmanager
    def segment(self, service: str) -> Iterator[SegmentWriter]:
        writer = SegmentWriter(self, service)
        try:
            yield writer
        except BaseException:
            writer.abandon()
            raise
        self.last = writer.close()  # (members, offset, length, frames)

    def finish(self, manifest: Manifest, summary: dict[str, Any]) -> Path:
        """Write header and manifest in front (the manifest's data_length is set here), fsync, rename."""
        self.handle.flush()
        data_length = self.handle.seek(0, os.SEEK_END) - self.data_offset
        manifest = Manifest(**{**manifest.__dict__, "data_length": data_length})
        manifest.check_layout()
        body = manifest.to_bytes()
        header: dict[str, Any] = {"manifest_sha256": hashlib.sha256(body).hexdigest(), "summary": summary}
        if self.sealing is not None:
            import pyrage

            body = pyrage.encrypt(body, self.sealing.recipients)
            header["encryption"] = {"method": self.sealing.method}
            if self.sealing.wrapped_identity:
                header["encryption"]["wrapped_identity"] = base64.b64encode(self.sealing.wrapped_identity).decode()
        header["manifest_length"] = len(body)
        preamble = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body
        if len(preamble) > MAX_PREAMBLE:
            raise StackError(f"the manifest is {len(preamble)} bytes: too many files to list in one archive")
        if len(preamble) > self.reserve:
            self._relocate(len(preamble))
        frame = struct.pack("<II", SKIPPABLE, self.reserve)
        os.pwrite(self.handle.fileno(), frame + preamble + b"\0" * (self.reserve - len(preamble)), 0)
        os.fsync(self.handle.fileno())
        os.replace(self.partial, self.path)
        self.handle.close()
        _fsync_dir(self.directory)
        return self.path

    def _relocate(self, needed: int) -> None:
        """The manifest outgrew the reserved front: copy the data section behind a larger one (once)."""
        reserve = max(needed + RESERVE, 2 * self.reserve)
        fd = self.handle.fileno()
        length = os.fstat(fd).st_size - self.data_offset
        # Copy backwards in chunks so the regions may overlap: the file grows by the difference.
        shift = reserve - self.reserve
        position = length
        while position > 0:
            size = min(CHUNK * 8, position)
            position -= size
            data = os.pread(fd, size, self.data_offset + position)
            os.pwrite(fd, data, self.data_offset + position + shift)
        self.reserve, self.data_offset = reserve, 8 + reserve

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.handle.close()
        self.partial.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- reading --------------------------------------------------------------------------------------------------


@dataclass
class ArchiveInfo:
    """What the front of an archive says, before any decryption: for `backup list`."""

    path: Path
    size: int
    summary: dict[str, Any]
    encrypted: bool


def _read_front(handle: BinaryIO, path: Path) -> tuple[int, dict, bytes]:
    """(reserved size, header, manifest section bytes) of an open archive; ArchiveError when it is not one."""
    frame = handle.read(8)
    if len(frame) < 8:
        raise ArchiveError(f"{path} is not a stackctl backup (too short)")
    magic, reserve = struct.unpack("<II", frame)
    if magic != SKIPPABLE or reserve > MAX_PREAMBLE:
        raise ArchiveError(f"{path} is not a stackctl backup (it does not start like one)")
    front = handle.read(reserve)
    if len(front) < reserve:
        raise ArchiveError(f"{path} ends inside its header: it is truncated")
    if not front.startswith(MAGIC):
        raise ArchiveError(f"{path} is not a stackctl backup (no stackctl header)")
    line_end = front.find(b"\n", len(MAGIC))
    try:
        header = json.loads(front[len(MAGIC):line_end])
        length = int(header["manifest_length"])
        if not isinstance(header.get("summary"), dict) or not 0 < length <= reserve:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ArchiveError(f"{path}: the archive's header is corrupted") from None
    start = line_end + 1
    body = front[start:start + length]
    if len(body) < length or front[start + length:].count(0) != reserve - start - length:
        raise ArchiveError(f"{path}: the archive's header area is corrupted (bytes after the manifest are not zero)")
    return reserve, header, body


def peek(path: Path) -> ArchiveInfo:
    """The plain summary at the front of an archive (no decryption, no checks of the data)."""
    with open(path, "rb") as handle:
        _, header, _ = _read_front(handle, path)
        size = os.fstat(handle.fileno()).st_size
    return ArchiveInfo(path, size, header["summary"], "encryption" in header)


class ArchiveReader:
    """An archive opened for restoring: the manifest decrypted and checked against the file, and each service's
    members streamed with every check a restore relies on."""

    def __init__(self, path: Path, unsealing: Unsealing | None = None):
        self.path = path
        try:
            self.handle = open(path, "rb")
        except OSError as error:
            raise StackError(f"cannot open {path}: {error.strerror or error}") from None
        try:
            self._open(unsealing or Unsealing())
        except BaseException:
            self.handle.close()
            raise

    def _open(self, unsealing: Unsealing) -> None:
        reserve, self.header, body = _read_front(self.handle, self.path)
        self.identities = None
        if "encryption" in self.header:
            import pyrage

            self.identities = unsealing.identities(self.header)
            try:
                body = pyrage.decrypt(body, self.identities)
            except pyrage.DecryptError:
                raise ArchiveError("the manifest does not decrypt with this key: wrong key file, or the archive was "
                                   "tampered with") from None
        if hashlib.sha256(body).hexdigest() != self.header.get("manifest_sha256"):
            raise ArchiveError(f"{self.path}: the manifest does not match its checksum: corrupted or tampered with")
        self.manifest = Manifest.from_bytes(body)
        if self.manifest.encrypted != (self.identities is not None):
            raise ArchiveError(f"{self.path}: the manifest and the header disagree on encryption: tampered with")
        self.data_offset = 8 + reserve
        actual = os.fstat(self.handle.fileno()).st_size - self.data_offset
        if actual < self.manifest.data_length:
            raise ArchiveError(f"{self.path} is truncated: {actual} bytes of data, the manifest says "
                               f"{self.manifest.data_length}")
        if actual > self.manifest.data_length:
            raise ArchiveError(f"{self.path} has {actual - self.manifest.data_length} bytes more than its manifest "
                               "says: appended to or tampered with")

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _plain_stream(self, segment: Segment) -> Iterator[Iterator[bytes]]:
        """The segment's tar stream as chunks (one a frame), decrypted and decompressed on the fly, frames in
        parallel; a frame that does not decompress, or anything after the last, raises."""
        import zstandard

        raw: Any = io.BufferedReader(_Slice(self.handle, self.data_offset + segment.offset, segment.length),
                                     buffer_size=CHUNK)
        pipe = None
        if self.identities is not None:
            import pyrage

            pipe = _Pipe()
            identities, source = self.identities, raw
            pipe.run(lambda: pyrage.decrypt_io(source, pipe.writer, identities), close_writer=True)
            raw = pipe.reader

        def short() -> ArchiveError:
            if pipe is not None:
                pipe.thread.join(timeout=30)
                if pipe.error is not None:
                    return ArchiveError(f"{segment.service}: its data does not decrypt: corrupted or tampered with")
            return ArchiveError(f"{segment.service}: its data ends inside a frame: truncated or tampered with")

        def frames() -> Iterator[bytes]:
            for length in segment.frames:
                frame = raw.read(length)
                if len(frame) != length:
                    raise short()
                yield frame
            if raw.read(1):
                raise ArchiveError(f"{segment.service}: data after its last frame: tampered with")
            if pipe is not None:  # age checks the whole stream's authenticity at its end
                pipe.thread.join(timeout=30)
                if pipe.error is not None:
                    raise short()

        def decompress(frame: bytes) -> bytes:
            if not 0 <= zstandard.frame_content_size(frame) <= FRAME:  # never allocate what a header claims
                raise ArchiveError(f"{segment.service}: a frame claims more data than stackctl writes in one: "
                                   "corrupted or tampered with")
            return zstandard.ZstdDecompressor().decompress(frame, max_output_size=FRAME)

        try:
            yield ordered_map(decompress, frames(), 2)
        finally:
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.reader.close()
                pipe.thread.join(timeout=30)

    def members(self, segment: Segment, progress: Progress = _quiet) -> Iterator[tuple[Member, Iterator[bytes]]]:
        """Each member of the segment with its data (files: chunks to consume before the next member), checked:
        the tar stream must hold exactly the manifest's members, in order, with their types, sizes, links and
        SHA-256. Any difference raises ArchiveError, at the latest when a file's last chunk is read, so a consumer
        that stages what it gets must throw its staging away on that error."""
        problems = check_members(list(segment.members))
        if problems:
            raise ArchiveError(f"{segment.service}: " + "; ".join(problems[:5]) + ": nothing was restored")
        import zstandard

        expected = iter(segment.members)
        try:
            with self._plain_stream(segment) as stream:
                cursor = Cursor(stream)
                for info, data in tar_entries(cursor):
                    want = next(expected, None)
                    got = member_from_tarinfo(info, info.name)
                    if want is None or not _same_entry(got, want):
                        raise ArchiveError(f"{segment.service}: the data holds {got.type} {info.name[:200]!r} where the "
                                           f"manifest says {_describe(want)}: corrupted or tampered with")
                    if want.type != FILE:
                        yield want, iter(())
                        continue
                    chunks = _checked_chunks(segment.service, want, data, progress)
                    yield want, chunks
                    for _ in chunks:  # whatever the consumer left is still checked
                        pass
                missing = next(expected, None)
                if missing is not None:
                    raise ArchiveError(f"{segment.service}: {missing.path!r} is in the manifest but not in the data: "
                                       "the archive is truncated or tampered with")
                # Everything after the tar's end must be zeros, and the frames must end where the manifest says.
                for rest in cursor.rest():
                    if bytes(rest).count(0) != len(rest):
                        raise ArchiveError(f"{segment.service}: data after the end of its files: tampered with")
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as error:
            raise ArchiveError(f"{segment.service}: the data is corrupted ({type(error).__name__}: {error})") from None
        except OSError as error:
            raise ArchiveError(f"{segment.service}: reading its data failed: {error}") from None
        except StackError:
            raise
        except Exception as error:  # pyrage reports a failed decryption as its own exception types
            if type(error).__module__.startswith("pyrage") or "Decrypt" in type(error).__name__:
                raise ArchiveError(f"{segment.service}: its data does not decrypt: corrupted or tampered with") from None
            raise

    def verify(self, segment: Segment, progress: Progress = _quiet) -> None:
        """Read the whole segment, checking everything, writing nothing."""
        for _, chunks in self.members(segment, progress):
            for _ in chunks:
                pass

    def retar(self, segment: Segment, rename: Callable[[str], str | None], uid: int, gid: int,
              progress: Progress = _quiet, parents: tuple[str, ...] = ()) -> Iterator:
        """The segment as a new tar stream for the engine to extract, built only from checked members: each named
        rename(path) (None: left out, though still read and checked), owned by uid:gid, after the directories
        `parents`. It raises ArchiveError, ending the stream, the moment a check fails."""
        for parent in parents:
            yield tar_header(parent, Member(parent, DIR, mode=0o755), uid, gid)
        for member, chunks in self.members(segment, progress):
            name = rename(member.path)
            if name is None:
                continue
            if member.type == HARDLINK:
                member = Member(member.path, HARDLINK, mode=member.mode, mtime=member.mtime,
                                target=rename(member.target) or "")
            yield tar_header(name, member, uid, gid)
            yield from chunks
            padding = tar_padding(member.size)
            if padding:
                yield padding
        yield TAR_END

    def extract_to(self, segment: Segment, directory: Path, progress: Progress = _quiet,
                   only: Callable[[str], bool] = lambda path: True) -> None:
        """Write the segment's files (those `only` accepts; the others are still read and checked) under
        `directory` (private staging: files 0600), checked on the way; only files and directories belong in such a
        segment. A failed check leaves what was written for the caller to remove."""
        for member, chunks in self.members(segment, progress):
            if not only(member.path):
                continue
            target = directory / member.path
            if member.type == DIR:
                target.mkdir(parents=True, exist_ok=True, mode=0o700)
                continue
            if member.type != FILE:
                raise ArchiveError(f"{segment.service}: {member.path!r} is a {member.type}; this kind of data holds "
                                   "only files")
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)


def _describe(member: Member | None) -> str:
    return "nothing more" if member is None else f"{member.type} {member.path[:200]!r}"


def _same_entry(got: Member, want: Member) -> bool:
    return (got.path == want.path and got.type == want.type and got.size == want.size
            and got.target == want.target)


def _checked_chunks(service: str, member: Member, data: Iterator, progress: Progress) -> Iterator:
    """The member's data, its last piece held back until the whole matched its SHA-256: a consumer never gets all
    of a file whose bytes are wrong."""
    digest = hashlib.sha256()
    held = None
    for piece in data:
        digest.update(piece)
        progress(len(piece))
        if held is not None:
            yield held
        held = piece
    if digest.hexdigest() != member.sha256:
        raise ArchiveError(f"{service}: {member.path!r} does not match its SHA-256: corrupted or tampered with")
    if held is not None:
        yield held


@dataclass
class Listing:
    """Archives of a project in a directory, newest first, and leftovers of interrupted backups."""

    archives: list[ArchiveInfo] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    stale_partials: list[Path] = field(default_factory=list)


def list_archives(directory: Path, project: str | None = None) -> Listing:
    from stackctl.core.archive import parse_archive_name

    listing = Listing()
    if not directory.is_dir():
        return listing
    for path in sorted(directory.iterdir(), reverse=True):
        if path.name.startswith(".") and path.name.endswith(PARTIAL):
            named = parse_archive_name(path.name[1:-len(PARTIAL)])
            if named and (project is None or named[0] == project) and not _locked(path):
                listing.stale_partials.append(path)
            continue
        named = parse_archive_name(path.name)
        if not named or (project is not None and named[0] != project) or not path.is_file():
            continue
        try:
            listing.archives.append(peek(path))
        except (ArchiveError, OSError) as error:
            listing.unreadable.append((path, getattr(error, "message", None) or str(error)))
    return listing


def _locked(path: Path) -> bool:
    """A partial archive still being written holds an exclusive lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
