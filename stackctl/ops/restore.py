"""`stackctl restore`: an archive put back into the running stack as one transaction.

1. Check, changing nothing: the manifest (decrypted, matching its checksum and the file's length), that every
   member stays inside its target (no absolute paths, `..`, links leading out, devices), versions compatible with
   the stack's, the services running, enough free disk. `--dry-run` stops here.
2. Stage: each service's data is streamed out of the archive, every byte checked against the manifest's SHA-256,
   into a staging area: its own volume (`.stackctl-restore/<id>/new`, for data swapped in as a whole) or the private
   state directory (for data sent through an API). A failed check removes all staging: nothing live was touched.
3. Swap: a service whose data is replaced as a whole is stopped and its volume's entries are moved aside (`old/`)
   and the staged ones moved in, by a script in a helper container whose marker files say how far it got. Then the
   service starts again; if it does not become healthy, everything is rolled back.
4. Import: data that goes through an API (silences, dashboards, saved objects, Elasticsearch snapshots) is sent,
   each step recorded, after keeping what it replaces so it can be put back.
5. Commit: the old data and the staging are removed, then `stackctl verify` runs on the restored stack.

A journal in the state directory (restore/journal.json, written atomically at every step) records where a restore
is. Killed at any point, it leaves the old data or the new (the volume's markers say which, entry by entry), and a
re-run finishes it (`stackctl restore --resume`) or puts the old data back (`stackctl restore --rollback`); until
then `stackctl up` refuses to start the stack on a half-swapped volume.
"""

from __future__ import annotations

import secrets as _random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.core import catalog
from stackctl.core.archive import (COMMITTED, IMPORTING, OK, REFUSE, STACK_SECTION, STAGED, STAGING,
                                   SWAPPED, SWAPPING, WARN, ArchiveError, JournalEntry, Manifest, RestoreJournal,
                                   Segment, check_members, iso, utc_now, version_verdict)
from stackctl.core.config import ResolvedService, Stack
from stackctl.core.errors import StackError
from stackctl.core.readiness import READY
from stackctl.core.units import format_bytes
from stackctl.core.versions import Version
from stackctl.ops.backup import Capture, Events, Progress, _quiet_event, _quiet_progress, strategy_for
from stackctl.ops.context import Runtime
from stackctl.shells.archive import ArchiveReader, Unsealing
from stackctl.shells.fs import atomic_write, ensure_private_dir, free_bytes, remove_tree
from stackctl.shells.state import JournalStore

STAGE_ROOT = ".stackctl-restore"  # inside a volume being restored: never a name a service uses
HELPER_MOUNT = "/target"
MARGIN = 64 * 1024 * 1024  # free space kept beyond the data itself


def pending_journal(stack: Stack) -> RestoreJournal | None:
    """The journal of a restore that did not finish, if there is one."""
    return JournalStore.for_stack(stack).load()


def unfinished_message(journal: RestoreJournal) -> str:
    if journal.phase == STAGING:
        return (f"a restore of {journal.archive} (id {journal.id}) was interrupted while staging; nothing live was "
                "touched. Run 'stackctl restore --rollback' to remove what it staged")
    if journal.phase == COMMITTED:
        return (f"a restore of {journal.archive} (id {journal.id}) was interrupted while cleaning up after success. "
                "Run 'stackctl restore --resume' to finish")
    return (f"a restore of {journal.archive} (id {journal.id}) did not finish (phase {journal.phase}). Run 'stackctl "
            "restore --resume' to finish it (the backup's data), or 'stackctl restore --rollback' to put the previous "
            "data back")


# --- the scripts a helper container runs in a volume being swapped ---------------------------------------------
# Each is safe to run again after being killed at any point: rename(2) moves one entry at a time, atomically; the
# marker files moved-out / moved-in say whether the top-level entries are the old data, a mix on its way, or the new
# data; and the staging is deleted only after being renamed away in one step, so a half-deleted staging is never
# taken for something to finish or roll back.

_EACH = 'for e in {where}* {where}.[!.]* {where}..?*; do if [ -e "$e" ] || [ -L "$e" ]; then {action}; fi; done'
_TOP = _EACH.format(where="", action='[ "$e" = ' + STAGE_ROOT + ' ] || mv -- "$e" "{to}"')


def _prologue(restore_id: str) -> str:
    return (f"set -eu\ncd {HELPER_MOUNT}\nS='{STAGE_ROOT}/{restore_id}'\nT='{STAGE_ROOT}/.removing-{restore_id}'\n"
            'rm -rf "$T"\n')  # left by a rollback or commit killed while deleting


_REMOVE = ['mv -- "$S" "$T"', 'rm -rf "$T"', f"rmdir {STAGE_ROOT} 2>/dev/null || true", "sync", ""]


def finish_script(restore_id: str) -> str:
    return _prologue(restore_id) + "\n".join([
        '[ -d "$S" ] || { echo "stackctl: nothing staged at $S in this volume" >&2; exit 3; }',
        'if [ ! -e "$S/moved-in" ]; then',
        '  mkdir -p "$S/old" "$S/new"',
        '  if [ ! -e "$S/moved-out" ]; then',
        "    " + _TOP.format(to="$S/old/"),
        '    touch "$S/moved-out"',
        "  fi",
        "  " + _EACH.format(where='"$S/new"/', action='mv -- "$e" ./'),
        '  touch "$S/moved-in"',
        "fi",
        "sync", ""])


def rollback_script(restore_id: str) -> str:
    return _prologue(restore_id) + "\n".join([
        f'[ -d "$S" ] || {{ rmdir {STAGE_ROOT} 2>/dev/null || true; exit 0; }}',
        'mkdir -p "$S/new" "$S/old"',
        'rm -f "$S/moved-in"',  # from the first move on, the new data is no longer all in place
        'if [ -e "$S/moved-out" ]; then',
        "  " + _TOP.format(to="$S/new/"),
        '  rm -f "$S/moved-out"',
        "fi",
        _EACH.format(where='"$S/old"/', action='mv -- "$e" ./'),
        *_REMOVE])


def commit_script(restore_id: str) -> str:
    return _prologue(restore_id) + "\n".join([
        f'[ -d "$S" ] || {{ rmdir {STAGE_ROOT} 2>/dev/null || true; exit 0; }}',
        '[ -e "$S/moved-in" ] || { echo "stackctl: $S was not swapped in; not removing the old data" >&2; exit 3; }',
        *_REMOVE])


def commit_exec(mount: str, restore_id: str) -> list[str]:
    """The commit as one command run in the service's own (running) container, cheaper than a helper."""
    return ["sh", "-c", commit_script(restore_id).replace(f"cd {HELPER_MOUNT}", f"cd '{mount}'", 1)]


# --- the plan ---------------------------------------------------------------------------------------------------


@dataclass
class RestoreItem:
    service: str  # catalog key, or STACK_SECTION
    title: str
    segment: Segment
    kind: str  # swap | import | stack
    verdict: str = OK
    messages: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"service": self.service, "title": self.title, "strategy": self.segment.strategy, "kind": self.kind,
                "version": self.segment.version, "size": self.segment.size, "members": len(self.segment.members),
                "verdict": self.verdict, "messages": self.messages, "replaces": self.replaces,
                "notes": list(self.segment.notes)}


@dataclass
class RestorePlan:
    archive: Path
    manifest: Manifest
    items: list[RestoreItem]
    skipped: list[str] = field(default_factory=list)  # segments left out, and why
    warnings: list[str] = field(default_factory=list)

    @property
    def refusals(self) -> list[str]:
        return [m for item in self.items if item.verdict == REFUSE for m in item.messages]

    def to_json(self) -> dict:
        m = self.manifest
        return {"archive": str(self.archive), "project": m.project, "created": m.created,
                "stackctl_version": m.stackctl_version, "encrypted": m.encrypted,
                "items": [i.to_json() for i in self.items], "skipped": self.skipped, "warnings": self.warnings,
                "refusals": self.refusals, "not_kept": [{"service": n.service, "reason": n.reason}
                                                        for n in m.not_kept]}


def _volume_free(runtime: Runtime, stack: Stack, svc: ResolvedService, volume: str, mount: str,
                 container) -> int | None:
    """Bytes free in the filesystem holding a volume (df inside the running service, else a helper container),
    None if unknown."""
    if container is not None and container.state == "running":
        code, output = runtime.engine.exec(container.id, ["df", "-Pk", mount])
    else:
        code, output = runtime.engine.run_on_volume(stack.config.project, svc.image, volume, HELPER_MOUNT,
                                                    f"df -Pk {HELPER_MOUNT}")
    try:
        return int(output.strip().splitlines()[-1].split()[3]) * 1024 if code == 0 else None
    except (IndexError, ValueError):
        return None


def plan_restore(stack: Stack, runtime: Runtime, reader: ArchiveReader, services: list[str] = ()) -> RestorePlan:
    """Everything checked before anything is touched; refusals are in the plan (RestorePlan.refusals)."""
    manifest = reader.manifest
    names = list(services)
    for name in names:
        if name != STACK_SECTION and manifest.segment(_key(name)) is None:
            raise StackError(f"the backup holds no data of {name}: it holds {', '.join(manifest.services)}")
    plan = RestorePlan(reader.path, manifest, [])
    if manifest.project != stack.config.project:
        plan.warnings.append(f"the backup is of project {manifest.project}; it is restored into "
                             f"{stack.config.project}")
    wanted = {_key(n) for n in names} if names else None
    containers = {c.service: c for c in runtime.engine.containers(stack.config.project)}
    from stackctl.ops.lifecycle import statuses

    ready = {s.service for s in statuses(stack, runtime) if s.phase == READY} if containers else set()
    for segment in manifest.segments:
        if segment.service == STACK_SECTION:
            if wanted is not None and STACK_SECTION in wanted:
                plan.items.append(_stack_item(stack, runtime, segment, containers))
            elif segment.member("stack.yaml") and stack.file.is_file():
                _compare_stack_file(stack, segment, plan)
            continue
        if wanted is not None and segment.service not in wanted:
            continue
        svc = stack.services.get(segment.service)
        if svc is None or svc.spec.backup is None:
            message = f"{segment.title}: not enabled in this stack, not restored"
            if wanted is not None:
                raise StackError(message.replace(", not restored", f" ({stack.file})"))
            plan.skipped.append(message)
            continue
        plan.items.append(_service_item(stack, runtime, reader, svc, segment, containers, ready))
    if wanted is not None and STACK_SECTION in wanted and len(plan.items) > 1:
        for item in plan.items:
            if item.kind == "stack":
                item.verdict = REFUSE
                item.messages.append("restore the stack files alone (--services stack), bring the stack up with "
                                     "them, then restore the data")
    return plan


def _key(name: str) -> str:
    if name == STACK_SECTION:
        return name
    try:
        return catalog.spec_for(name).key
    except KeyError:
        raise StackError(f"unknown service {name!r}") from None


def _service_item(stack, runtime, reader, svc: ResolvedService, segment: Segment, containers, ready) -> RestoreItem:
    decl = svc.spec.backup
    strategy = strategy_for(svc)
    item = RestoreItem(svc.key, svc.spec.title, segment, strategy.kind)
    refuse = []
    if segment.strategy != type(decl).__name__:
        refuse.append(f"{svc.spec.title}: the backup holds a {segment.strategy}; this stackctl restores it as a "
                      f"{type(decl).__name__}")
    if isinstance(decl, catalog.NotKept):
        refuse.append(f"{svc.spec.title}: {decl.reason}")
    verdict, message = version_verdict(svc.spec.title, Version.parse(segment.version), svc.version,
                                       decl.majors_forward, decl.refuse_older)
    if verdict == REFUSE:
        refuse.append(message)
    elif verdict == WARN:
        item.verdict = WARN
        item.messages.append(message)
    problems = check_members(list(segment.members))
    refuse += [f"{svc.spec.title}: {p}" for p in problems[:10]]
    if svc.name not in containers:
        refuse.append(f"{svc.spec.title} has no container: bring the stack up first ('stackctl up')")
    elif strategy.kind == "import" and svc.name not in ready:
        refuse.append(f"{svc.spec.title} is not running and healthy: its data goes back through its API "
                      "('stackctl status' says why)")
    if not refuse:
        ctx = Capture(stack, runtime)
        if strategy.kind == "swap":
            volume, mount = ctx.volume(svc, decl.volume)
            free = _volume_free(runtime, stack, svc, volume, mount, containers.get(svc.name))
            needed = segment.size + segment.size // 20 + MARGIN
            if free is not None and free < needed:
                refuse.append(f"{svc.spec.title}: its volume {volume} has {format_bytes(free)} free; staging the "
                              f"backup next to the current data needs {format_bytes(needed)}")
            item.replaces.append(f"{svc.spec.title}: the whole data directory (volume {volume}) is replaced by the "
                                 f"backup's ({format_bytes(segment.size)}); {svc.spec.title} is stopped for the swap")
        else:
            item.replaces += strategy.preview(_Preview(ctx, reader), svc, decl, segment)
    if refuse:
        item.verdict = REFUSE
        item.messages = refuse + item.messages
    return item


@dataclass
class _Preview:
    """The little a strategy's preview may use: API clients, volumes; no staging, no journal."""

    ctx: Capture
    reader: ArchiveReader

    def api(self, cls, svc, timeout: float = 60.0):
        return self.ctx.api(cls, svc, timeout)

    def volume(self, svc, name):
        return self.ctx.volume(svc, name)


def _stack_item(stack: Stack, runtime: Runtime, segment: Segment, containers) -> RestoreItem:
    item = RestoreItem(STACK_SECTION, "Stack files", segment, "stack")
    secrets = [m.path for m in segment.members if m.path.startswith("secrets/")]
    if containers:
        item.verdict = REFUSE
        item.messages.append(f"the stack files are restored only while {stack.config.project} has no containers: "
                             "run 'stackctl down' first (volumes may stay)")
    if secrets and runtime.engine.volumes(stack.config.project):
        item.verdict = REFUSE
        item.messages.append("the backup's secrets would replace the ones the existing volumes were set up with "
                             "(Grafana and Elasticsearch keep their first passwords), locking stackctl out: restore "
                             "the secrets only into a project without volumes ('stackctl down --volumes')")
    if segment.member("stack.yaml"):
        item.replaces.append(f"{stack.file} (the current one is kept next to it as *.before-restore-<id>)")
    if secrets:
        item.replaces.append(f"{len(secrets)} generated secrets in {runtime.store(stack).root}")
    return item


def _compare_stack_file(stack: Stack, segment: Segment, plan: RestorePlan) -> None:
    import hashlib

    member = segment.member("stack.yaml")
    if member and hashlib.sha256(stack.file.read_bytes()).hexdigest() != member.sha256:
        plan.warnings.append("the backup was taken with another stack.yaml than this one; its copy is restored "
                             "only with --services stack")


# --- running it ---------------------------------------------------------------------------------------------------


class Restoring(Capture):
    """What a restore in progress works with: the Capture facilities plus the archive (while staging), the journal
    and the private staging directory."""

    def __init__(self, stack: Stack, runtime: Runtime, journal: RestoreJournal, reader: ArchiveReader | None,
                 events: Events, progress: Progress):
        super().__init__(stack, runtime, events, progress)
        self.journal, self.reader = journal, reader
        self.phases: dict[str, float] = {}
        self.journals = JournalStore.for_stack(stack)
        self.root = self.journals.staging(journal.id)
        self.archive_name = Path(journal.archive).name
        self._manifest: Manifest | None = reader.manifest if reader else None

    def save(self) -> None:
        self.journals.save(self.journal)

    def staging(self, key: str) -> Path:
        path = self.root / key
        ensure_private_dir(path)
        return path

    def write_staging(self, key: str, name: str, data: bytes) -> None:
        atomic_write(self.staging(key) / name, data, mode=0o600)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            try:
                self._manifest = Manifest.from_bytes((self.root / "manifest.json").read_bytes())
            except (OSError, ArchiveError) as error:
                raise StackError(f"the restore's staged manifest in {self.root} is unreadable ({error}); "
                                 "it cannot go on without it") from None
        return self._manifest

    def segment(self, key: str) -> Segment | None:
        return self.manifest.segment(key)


@dataclass
class RestoreResult:
    restored: dict[str, list[str]]  # per service: what was restored
    duration: float
    journal_id: str
    verify: Any = None  # a VerifyReport, when verify ran
    warnings: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step took

    @property
    def ok(self) -> bool:
        return self.verify is None or self.verify.ok

    def to_json(self) -> dict:
        return {"ok": self.ok, "id": self.journal_id, "duration": round(self.duration, 3),
                "phases": {k: round(v, 3) for k, v in self.phases.items()},
                "restored": self.restored, "warnings": self.warnings,
                "verify": self.verify.to_json() if self.verify is not None else None}


def open_archive(path: Path, unsealing: Unsealing | None = None) -> ArchiveReader:
    if not path.is_file():
        raise StackError(f"{path}: no such archive")
    return ArchiveReader(path, unsealing)


def run_restore(stack: Stack, runtime: Runtime, bundle: Path, reader: ArchiveReader, plan: RestorePlan,
                events: Events = _quiet_event, progress: Progress = _quiet_progress,
                run_verify: bool = True) -> RestoreResult:
    """Stage everything (checking every byte), then swap and import, then commit and verify. A failed check while
    staging leaves nothing changed; a failure later rolls back; a kill leaves the journal for --resume/--rollback."""
    if plan.refusals:
        raise StackError("the restore is refused, nothing was changed:\n  " + "\n  ".join(plan.refusals))
    if not plan.items:
        raise StackError("nothing to restore: " + ("; ".join(plan.skipped) or "the backup holds no service data"))
    existing = pending_journal(stack)
    if existing is not None:
        raise StackError(unfinished_message(existing))
    started = time.monotonic()
    journal = RestoreJournal(id=f"{utc_now().strftime('%Y%m%dT%H%M%SZ')}-{_random.token_hex(3)}",
                             archive=str(reader.path.absolute()), project=stack.config.project, started=iso(utc_now()),
                             phase=STAGING)
    rs = Restoring(stack, runtime, journal, reader, events, progress)
    for item in plan.items:
        entry = JournalEntry(item.service, item.kind)
        if item.kind == "swap":
            svc = stack.services[item.service]
            entry.volume = rs.volume(svc, svc.spec.backup.volume)[0]
            entry.image, entry.owner = svc.image, f"{svc.spec.uid}:{svc.spec.gid}"
        journal.entries.append(entry)
    rs.journals.prepare()
    needed = sum(i.segment.size for i in plan.items if i.kind != "swap") + MARGIN
    if free_bytes(rs.journals.root) < needed:
        raise StackError(f"{rs.journals.root} has too little free space to stage {format_bytes(needed)}; nothing "
                         "was changed")
    rs.save()
    mark = time.monotonic()
    try:
        rs.write_staging("", "manifest.json", plan.manifest.to_bytes())
        for item in plan.items:
            events(f"{item.title}: staging and checking {format_bytes(item.segment.size)}")
            _stage(rs, item)
        for segment in unselected(plan):  # every checksum is checked before anything is touched
            events(f"{segment.title}: checking (not restored)")
            reader.verify(segment, lambda count: progress(segment.service, count))
    except BaseException as error:
        events("staging failed: removing what was staged")
        try:
            _discard_staging(rs)
        except Exception as cleanup:  # keep the journal: --rollback can clean up later
            raise StackError(f"{_reason(error)}; removing the staged data failed too ({_reason(cleanup)}): run "
                             "'stackctl restore --rollback'") from None
        if isinstance(error, StackError):
            raise type(error)(f"{error.message}; nothing was changed", details=error.details) from None
        if isinstance(error, OSError):  # local staging: the disk filled up, or the state directory is unwritable
            raise StackError(f"staging in {rs.root} failed: {error.strerror or error}; nothing was changed") from None
        raise
    journal.phase = STAGED
    rs.save()
    rs.phases["stage"] = time.monotonic() - mark
    return _complete(rs, bundle, started, run_verify)


def unselected(plan: RestorePlan) -> list[Segment]:
    chosen = {item.service for item in plan.items}
    return [s for s in plan.manifest.segments if s.service not in chosen]


def check_archive(reader: ArchiveReader, progress: Progress = _quiet_progress) -> None:
    """Read every segment through every check, writing nothing (what --dry-run does besides planning)."""
    for segment in reader.manifest.segments:
        reader.verify(segment, lambda count, service=segment.service: progress(service, count))


def _reason(error: BaseException) -> str:
    return error.message if isinstance(error, StackError) else f"{type(error).__name__}: {error}"


def _stage(rs: Restoring, item: RestoreItem) -> None:
    entry = rs.journal.entry(item.service)
    if item.kind == "stack":
        rs.reader.extract_to(item.segment, rs.staging(STACK_SECTION), lambda count: rs.progress(STACK_SECTION, count))
        return
    svc = rs.stack.services[item.service]
    if item.kind == "swap":
        _stage_into_volume(rs, svc, item.segment, entry)
    else:
        strategy_for(svc).stage(rs, svc, svc.spec.backup, item.segment, entry)


def _run(rs: Restoring, entry: JournalEntry, script: str, what: str) -> str:
    code, output = rs.runtime.engine.run_on_volume(rs.stack.config.project, entry.image, entry.volume, HELPER_MOUNT,
                                                   script)
    if code != 0:
        raise StackError(f"{entry.service}: {what} in volume {entry.volume} failed (exit {code})",
                         details=output.strip()[-2000:])
    return output


def _stage_into_volume(rs: Restoring, svc: ResolvedService, segment: Segment, entry: JournalEntry) -> None:
    """Stream the checked members into <volume>/.stackctl-restore/<id>/new, owned by the service's user (the tar
    headers carry the owner; the id is new, so nothing of an earlier attempt is in the way). A thread of its own
    decompresses and checks while this one sends."""
    from stackctl.shells.archive import prefetch

    uid, gid = svc.spec.uid, svc.spec.gid
    root = f"{STAGE_ROOT}/{rs.journal.id}"
    prefix = f"{root}/new/"
    stream = _Recorded(prefetch(rs.reader.retar(segment, lambda path: prefix + path, uid, gid, rs.reporter(svc),
                                                parents=(STAGE_ROOT, root, prefix.rstrip("/")))))
    try:
        rs.runtime.engine.copy_into_volume(rs.stack.config.project, svc.image, entry.volume, HELPER_MOUNT, stream)
    except Exception:
        stream.reraise()  # a failed check ends the upload: that is the reason to tell, not how the upload ended
        raise
    stream.reraise()
    if not stream.finished:
        raise StackError(f"{svc.spec.title}: the engine stopped reading the staged data before its end")


class _Recorded:
    """An iterator that remembers the exception that ended it, whatever the consumer (an HTTP upload) made of it."""

    def __init__(self, chunks):
        self.chunks, self.failure, self.finished = chunks, None, False

    def __iter__(self):
        try:
            yield from self.chunks
            self.finished = True
        except GeneratorExit:  # the consumer stopped reading: not a failure of ours
            raise
        except BaseException as error:
            self.failure = error
            raise

    def reraise(self) -> None:
        if self.failure is not None:
            raise self.failure


def _discard_staging(rs: Restoring) -> None:
    """Before any swap: remove staged data from volumes, local staging and the journal."""
    for entry in rs.journal.entries:
        if entry.kind == "swap" and rs.runtime.engine.volume_exists(entry.volume):
            _run(rs, entry, rollback_script(rs.journal.id), "removing the staged data")
        elif entry.kind == "import":
            svc = rs.stack.services.get(entry.service)
            if svc is not None and "staged_dir" in entry.extra:
                strategy_for(svc).commit(rs, svc, svc.spec.backup, entry)
    remove_tree(rs.root)
    rs.journals.remove()


def _complete(rs: Restoring, bundle: Path, started: float, run_verify: bool) -> RestoreResult:
    """From STAGED (or wherever a resumed restore stands) to committed and verified."""
    journal = rs.journal
    restored: dict[str, list[str]] = {}
    phases = rs.phases
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = now - mark
        mark = now

    try:
        if journal.phase in (STAGED, SWAPPING):
            journal.phase = SWAPPING
            rs.save()
            _swap_all(rs)
            journal.phase = SWAPPED
            rs.save()
            lap("swap")
        if journal.phase == SWAPPED:
            _start_stopped(rs)
            journal.phase = IMPORTING
            rs.save()
            lap("start")
        if journal.phase == IMPORTING:
            for entry in journal.entries:
                restored[entry.service] = _import(rs, entry)
            journal.phase = COMMITTED
            rs.save()
            lap("import")
    except KeyboardInterrupt:
        raise StackError("interrupted. " + unfinished_message(journal), exit_code=130) from None
    except StackError as error:
        rs.events(f"the restore failed ({error.message}); rolling back")
        try:
            _roll_back(rs)
        except Exception as second:
            raise StackError(f"the restore failed: {error.message}; rolling back failed too: {_reason(second)}. "
                             + unfinished_message(journal), details=error.details) from None
        raise StackError(f"the restore failed and was rolled back: the previous data is in place. {error.message}",
                         details=error.details, exit_code=error.exit_code) from None
    warnings = _commit(rs)
    lap("commit")
    result = RestoreResult(restored, time.monotonic() - started, journal.id, warnings=warnings, phases=phases)
    if run_verify:
        from stackctl.ops.verify import verify

        # verify expects the stack as `up` leaves it: healthy by the services' own healthchecks, which report a few
        # seconds after a restarted service answers (Prometheus answers ready before it has its scrape targets).
        for name in journal.stopped:
            rs.wait_settled(next(s for s in rs.stack.services.values() if s.name == name))
        rs.events("running stackctl verify on the restored stack")
        result.verify = verify(rs.stack, rs.runtime, bundle)
        lap("verify")
    result.duration = time.monotonic() - started
    return result


def _swap_all(rs: Restoring) -> None:
    engine = rs.runtime.engine
    for entry in rs.journal.entries:
        if entry.kind != "swap":
            continue
        svc = rs.stack.services[entry.service]
        container = engine.container_of(rs.stack.config.project, svc.name)
        if container is not None and container.state in ("running", "restarting"):
            rs.events(f"{svc.spec.title}: stopping it to swap its data")
            if svc.name not in rs.journal.stopped:
                rs.journal.stopped.append(svc.name)
                rs.save()
            engine.stop(container.id)
        _run(rs, entry, finish_script(rs.journal.id), "swapping the restored data in")
        entry.swapped = True
        rs.save()


def _start_stopped(rs: Restoring) -> None:
    engine = rs.runtime.engine
    for name in rs.journal.stopped:
        container = engine.container_of(rs.stack.config.project, name)
        if container is None:
            raise StackError(f"{name}'s container is gone; run 'stackctl up' once the restore is resolved")
        if container.state != "running":
            engine.start(container.id)
    for name in rs.journal.stopped:
        svc = next(s for s in rs.stack.services.values() if s.name == name)
        rs.wait_ready(svc)
        rs.events(f"{svc.spec.title}: running and healthy on the restored data")


def _import(rs: Restoring, entry: JournalEntry) -> list[str]:
    if entry.kind == "stack":
        return _apply_stack_files(rs)
    svc = rs.stack.services[entry.service]
    segment = rs.segment(entry.service)
    if entry.kind == "swap":
        return list(segment.notes[:1]) + [f"data directory swapped in ({format_bytes(segment.size)}, "
                                          f"{len(segment.members)} files and directories)"]
    rs.events(f"{svc.spec.title}: restoring through its API")
    said = strategy_for(svc).apply(rs, svc, svc.spec.backup, segment, entry)
    rs.save()
    return said


def _apply_stack_files(rs: Restoring) -> list[str]:
    staged = rs.root / STACK_SECTION
    said = []
    stack_yaml = staged / "stack.yaml"
    if stack_yaml.is_file():
        data = stack_yaml.read_bytes()
        target = rs.stack.file
        if target.is_file() and target.read_bytes() != data:
            atomic_write(target.with_name(f"{target.name}.before-restore-{rs.journal.id}"), target.read_bytes())
        atomic_write(target, data)
        said.append(f"{target} restored")
    secrets_dir = staged / "secrets"
    if secrets_dir.is_dir():
        store = rs.runtime.store(rs.stack)
        values = {p.name: p.read_text(encoding="utf-8") for p in sorted(secrets_dir.iterdir()) if p.is_file()}
        store.write_all(values)
        said.append(f"{len(values)} secrets restored into {store.root}")
    return said


def _commit(rs: Restoring) -> list[str]:
    """Remove the old data and the staging; failures here lose nothing (the new data is in place) and are warned
    about with what to remove by hand."""
    warnings = []
    engine = rs.runtime.engine
    for entry in rs.journal.entries:
        try:
            if entry.kind == "swap" and engine.volume_exists(entry.volume):
                svc = rs.stack.services[entry.service]
                container = engine.container_of(rs.stack.config.project, svc.name)
                if container is not None and container.state == "running":
                    code, output = engine.exec(container.id, commit_exec(rs.volume(svc, svc.spec.backup.volume)[1],
                                                                         rs.journal.id), user="0")
                    if code != 0:
                        raise StackError(f"removing the previous data failed: {output.strip()[-300:]}")
                else:
                    _run(rs, entry, commit_script(rs.journal.id), "removing the previous data")
            elif entry.kind == "import":
                svc = rs.stack.services[entry.service]
                strategy_for(svc).commit(rs, svc, svc.spec.backup, entry)
        except StackError as error:
            warnings.append(f"{entry.service}: cleaning up after the restore: {error.message} (remove "
                            f"{STAGE_ROOT}/{rs.journal.id} from volume {entry.volume or '-'} by hand)")
    remove_tree(rs.root)
    rs.journals.remove()
    return warnings


def _roll_back(rs: Restoring) -> None:
    """Undo imports (newest first), then swap the old data back into stopped services and start them again."""
    journal = rs.journal
    if journal.phase == COMMITTED:
        raise StackError("the restore was committed: the previous data is gone. Restore an older backup instead")
    for entry in reversed(journal.entries):
        if entry.kind == "import" and (entry.done or entry.extra):
            svc = rs.stack.services[entry.service]
            strategy_for(svc).undo(rs, svc, svc.spec.backup, entry)
            rs.save()
    engine = rs.runtime.engine
    for entry in journal.entries:
        if entry.kind != "swap":
            continue
        svc = rs.stack.services[entry.service]
        if not engine.volume_exists(entry.volume):
            continue
        container = engine.container_of(rs.stack.config.project, svc.name)
        # Before the swap began the live data was never moved: the service may keep running while staging goes.
        if journal.phase != STAGED and container is not None and container.state in ("running", "restarting"):
            if svc.name not in journal.stopped:
                journal.stopped.append(svc.name)
                rs.save()
            engine.stop(container.id)
        _run(rs, entry, rollback_script(journal.id), "putting the previous data back")
        entry.swapped = False
        rs.save()
    for name in journal.stopped:
        container = engine.container_of(rs.stack.config.project, name)
        if container is not None and container.state != "running":
            engine.start(container.id)
    for name in journal.stopped:  # left as `up` leaves it: healthy by its own healthcheck
        rs.wait_settled(next(s for s in rs.stack.services.values() if s.name == name))
    remove_tree(rs.root)
    rs.journals.remove()


def resume(stack: Stack, runtime: Runtime, bundle: Path, events: Events = _quiet_event,
           run_verify: bool = True) -> RestoreResult:
    """Finish an interrupted restore from where its journal says it stands."""
    journal = _require_journal(stack)
    if journal.phase == STAGING:
        raise StackError(f"the restore {journal.id} was interrupted while staging, so it cannot be finished without "
                         "the archive; nothing live was touched. Run 'stackctl restore --rollback', then restore again")
    _wait_for_helpers(runtime, stack)
    rs = Restoring(stack, runtime, journal, None, events, _quiet_progress)
    if journal.phase == COMMITTED:
        warnings = _commit(rs)
        return RestoreResult({}, 0.0, journal.id, warnings=warnings)
    return _complete(rs, bundle, time.monotonic(), run_verify)


def rollback(stack: Stack, runtime: Runtime, events: Events = _quiet_event) -> str:
    """Undo an interrupted restore: the previous data back in place, the staging removed. Returns its id."""
    journal = _require_journal(stack)
    _wait_for_helpers(runtime, stack)
    rs = Restoring(stack, runtime, journal, None, events, _quiet_progress)
    if journal.phase == STAGING:
        _discard_staging(rs)
    else:
        _roll_back(rs)
    return journal.id


def _require_journal(stack: Stack) -> RestoreJournal:
    journal = pending_journal(stack)
    if journal is None:
        raise StackError(f"no unfinished restore in {JournalStore.for_stack(stack).root}: nothing to resume or roll "
                         "back")
    if journal.project != stack.config.project:
        raise StackError(f"the unfinished restore in {JournalStore.for_stack(stack).root} is of project "
                         f"{journal.project}, not "
                         f"{stack.config.project}")
    return journal


def _wait_for_helpers(runtime: Runtime, stack: Stack) -> None:
    """A killed restore's helper container may still be moving files: let it finish first (it leaves the volume
    consistent with its markers), then remove it."""
    runtime.engine.wait_helpers(stack.config.project)
    runtime.engine.remove_helpers(stack.config.project)


