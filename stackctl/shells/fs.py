"""The filesystem writer: atomic writes with explicit permissions, the staging directory a bundle is validated in,
and applying a validated bundle. Everything stackctl writes goes through here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stackctl import __version__
from stackctl.core.errors import StackError

MANIFEST = ".stackctl-bundle.json"  # bundle file list with hashes and the stackctl version; written last
INCOMPLETE = ".stackctl-rendering"  # present while a write is in progress


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_private_dir(path: Path) -> None:
    """A directory only its owner can enter (0700), created if missing, tightened if too open."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def cache_dir(*parts: str) -> Path:
    """stackctl's directory under the user's cache ($XDG_CACHE_HOME or ~/.cache), private to the user."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stackctl"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def template_cache():
    """A cache of compiled templates (Jinja's bytecode, checked against each template's source), so a render does
    not compile 30 templates again; None when no cache directory can be made (rendering just compiles)."""
    import sys

    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:  # a full or read-only cache costs only speed
                pass

    try:
        directory = cache_dir(f"templates-jinja{jinja2.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")
    except OSError:
        return None
    return QuietCache(str(directory))


def _mode_for(rel: str) -> int:
    return 0o755 if rel.endswith(".sh") else 0o644


def write_tree(plan: dict[str, bytes], root: Path) -> None:
    """Write a plan into an empty directory (a staging copy: no atomicity needed, nobody reads it yet)."""
    for rel, data in plan.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(_mode_for(rel))


def free_bytes(path: Path) -> int:
    """Bytes free for unprivileged writes on the filesystem holding `path` (its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def remove_tree(path: Path) -> None:
    """Remove a directory stackctl made (staging), whatever is in it; a missing one is fine."""
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(prefix: str = "stackctl-staging-") -> Iterator[Path]:
    """A private temporary directory, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class WriteResult:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(out: Path) -> dict[str, str] | None:
    """The file list the last complete write left. Only entries that are plain relative paths inside the bundle
    count: a manifest edited to name ../x or /etc/x must not make stackctl delete files elsewhere."""
    try:
        files = json.loads((out / MANIFEST).read_text())["files"]
    except (ValueError, KeyError, TypeError, OSError):
        return None
    if not isinstance(files, dict):
        return None
    return {rel: digest for rel, digest in files.items() if isinstance(rel, str) and is_plain_relative(rel)}


def is_plain_relative(rel: str) -> bool:
    """A relative POSIX path of plain names: no absolute path, no '..' or '.', no empty part, no backslash."""
    parts = rel.split("/")
    return bool(rel) and "\\" not in rel and "\0" not in rel and all(p not in ("", ".", "..") for p in parts)


def _inside(out: Path, rel: str) -> Path:
    """`out/rel`, refusing a path that leaves `out` or passes through a symbolic link below it (a link inside
    the bundle would make a write or a removal land somewhere else)."""
    if not is_plain_relative(rel):
        raise StackError(f"refusing to write {rel!r} in the bundle: not a plain relative path")
    current = out
    for part in rel.split("/")[:-1]:
        current = current / part
        if current.is_symlink():
            raise StackError(f"{current} is a symbolic link: stackctl writes only real directories inside the "
                             f"bundle; remove it (or render into another --out)")
    target = out / rel
    if target.is_symlink():
        raise StackError(f"{target} is a symbolic link: stackctl replaces only real files inside the bundle")
    return target


def bundle_problem(plan: dict[str, bytes], out: Path) -> str | None:
    """Why `out` cannot take this plan (checked before anything is written), or None."""
    if out.is_symlink() and not out.exists():
        return f"{out} is a dangling symbolic link"
    if not out.exists():
        return None
    if not out.is_dir():
        return f"{out} is not a directory; choose another --out"
    if _read_manifest(out) is None and (out / MANIFEST).exists():
        return f"{out}/{MANIFEST} is not a bundle manifest stackctl wrote; remove it or choose another --out"
    if not (out / MANIFEST).exists() and not (out / INCOMPLETE).exists() and any(out.iterdir()):
        return f"{out} exists and was not written by stackctl; choose another --out or remove it"
    try:
        for rel in plan:
            _inside(out, rel)
    except StackError as error:
        return error.message
    return None


def write_bundle(plan: dict[str, bytes], out: Path) -> WriteResult:
    """Make `out` hold exactly `plan`: changed files replaced atomically, unchanged ones untouched, stale removed.

    Files are replaced one by one rather than the directory swapped: running containers bind-mount directories
    of the bundle, and a swapped directory would leave them looking at the old, deleted one. A marker file says a
    write is under way; if a crash leaves it, the next render rewrites every file.
    """
    if out.exists() and not out.is_dir():
        raise StackError(f"{out} is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    marker = out / INCOMPLETE
    interrupted = marker.exists()
    # After a crash the old manifest still lists what the last complete write left: trusted for removing stale
    # files, never for skipping unchanged ones.
    previous = _read_manifest(out)
    if previous is None:
        if manifest_path.exists() or (any(out.iterdir()) and not interrupted):
            raise StackError(f"{out} exists and was not written by stackctl; choose another --out or remove it")
        previous = {}
    atomic_write(marker, b"stackctl render in progress\n")
    first_write = not previous  # no complete bundle was ever here, so no container mounts it yet
    written, unchanged = [], []
    for rel, data in plan.items():
        target = _inside(out, rel)
        if (not interrupted and previous.get(rel) == _digest(data) and target.is_file()
                and target.read_bytes() == data):
            unchanged.append(rel)
            continue
        if first_write and not (target.exists() or target.is_symlink()):
            _create(target, data, _mode_for(rel))
        else:  # a running container may have this directory mounted: it sees the old file or the new, whole
            atomic_write(target, data, mode=_mode_for(rel))
        written.append(rel)
    removed = []
    for rel in sorted(set(previous) - set(plan)):
        _inside(out, rel).unlink(missing_ok=True)
        removed.append(rel)
    _remove_empty_dirs(out)
    manifest = {"files": {rel: _digest(data) for rel, data in plan.items()}, "stackctl": __version__}
    manifest_data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    if interrupted or not manifest_path.is_file() or manifest_path.read_bytes() != manifest_data:
        atomic_write(manifest_path, manifest_data)
    marker.unlink()
    return WriteResult(tuple(written), tuple(unchanged), tuple(removed))


def _create(path: Path, data: bytes, mode: int) -> None:
    """A file of a bundle written for the first time: nothing mounts it yet, so it is written in place, without the
    temporary file and fsync of atomic_write (a first render creates ~140 files). A crash in between leaves the
    in-progress marker, and every render compares each file's bytes anyway, so a torn file is rewritten by the next."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        handle.write(data)


def _remove_empty_dirs(out: Path) -> None:
    # Bottom-up, looking at each directory as it is now: a directory whose last subdirectory was just removed
    # is empty too (a walk listed in advance still saw that subdirectory).
    for dirpath, _, _ in os.walk(out, topdown=False):
        path = Path(dirpath)
        if path != out and not any(path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)


def bundle_is_current(plan: dict[str, bytes], out: Path) -> bool:
    """True when `out` already holds exactly this plan (nothing to write)."""
    if (out / INCOMPLETE).exists():
        return False
    previous = _read_manifest(out)
    return previous == {rel: _digest(data) for rel, data in plan.items()} and all(
        (out / rel).is_file() for rel in plan)
