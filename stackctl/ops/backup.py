"""`stackctl backup`: each enabled service's data captured the way its catalog entry declares (ServiceSpec.backup),
into one archive, while the stack keeps running (a service stops only for the moment its files must be copied).

Each kind of strategy is one class here, looked up by the declaration's type (STRATEGIES); it knows how to capture
its service's data and how to put it back (stackctl.ops.restore runs the restore as a whole: checks, staging, the
swap, the journal). None knows a service by name: ports, volumes, users and credentials come from the catalog.
"""

from __future__ import annotations

import json
import secrets as _random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from stackctl import __version__
from stackctl.clients.alertmanager import Alertmanager
from stackctl.clients.elasticsearch import Elasticsearch
from stackctl.clients.grafana import Grafana
from stackctl.clients.http import ApiError
from stackctl.clients.kibana import Kibana
from stackctl.clients.prometheus import Prometheus
from stackctl.core import catalog
from stackctl.core.archive import (STACK_SECTION, Manifest, NotKept, Segment, archive_name, iso, parse_archive_name,
                                   utc_now)
from stackctl.core.config import ResolvedService, Stack
from stackctl.core.endpoints import host_url
from stackctl.core.errors import StackError
from stackctl.core.readiness import READY, ContainerInfo
from stackctl.core.secrets import required_secrets
from stackctl.ops.context import Runtime
from stackctl.shells.archive import (ArchiveWriter, Sealing, SegmentWriter, Unsealing, generate_identity,
                                     list_archives, peek, seal_with_key_file, seal_with_passphrase)
from stackctl.shells.fs import MANIFEST as BUNDLE_MANIFEST
from stackctl.shells.fs import atomic_write

Events = Callable[[str], None]
Progress = Callable[[str, int], None]  # (service, bytes just copied)


def _quiet_event(message: str) -> None:
    pass


def _quiet_progress(service: str, count: int) -> None:
    pass


@dataclass
class Capture:
    """What a strategy works with while backing up or restoring: the stack, the shells, how to report."""

    stack: Stack
    runtime: Runtime
    events: Events = _quiet_event
    progress: Progress = _quiet_progress

    def url(self, svc: ResolvedService) -> str:
        return host_url(self.stack, svc.key)

    def credentials(self, svc: ResolvedService) -> tuple[str, str] | None:
        auth = svc.spec.backup.auth if svc.spec.backup else None
        if auth is None:
            return None
        user = getattr(svc.settings, auth.user_setting) if auth.user_setting else auth.user
        return user, self.runtime.store(self.stack).read(auth.secret)

    def api(self, cls, svc: ResolvedService, timeout: float = 60.0):
        return cls(self.url(svc), auth=self.credentials(svc), timeout=timeout)

    def container(self, svc: ResolvedService) -> ContainerInfo:
        found = self.runtime.engine.container_of(self.stack.config.project, svc.name)
        if found is None:
            raise StackError(f"{svc.spec.title} has no container in {self.stack.config.project}: run 'stackctl up' first")
        return found

    def volume(self, svc: ResolvedService, name: str) -> tuple[str, str]:
        """(engine volume name, mount path in the service's container) of one of its catalog volumes."""
        volume = next((v for v in svc.spec.volumes if v.name == name), None)
        if volume is None:
            raise StackError(f"the catalog gives {svc.spec.title} no volume named {name}")
        return svc.spec.docker_volume(self.stack.config.project, volume), volume.path

    def wait_ready(self, svc: ResolvedService, timeout: float = 180) -> None:
        """Until the service is ready again: its own readiness endpoint polled directly when the catalog declares a
        published one (a healthcheck reports only every few seconds), else its container's health."""
        ready = next((c for c in svc.spec.verify if isinstance(c, catalog.Ready) and c.port and c.auth is None
                      and c.port in svc.host_ports), None)
        if ready is not None:
            url = host_url(self.stack, svc.key, ready.port) + ready.path
            deadline = self.runtime.clock() + timeout
            first = self.runtime.engine.container_of(self.stack.config.project, svc.name)
            while self.runtime.clock() < deadline:
                ok, _ = self.runtime.probe(url)
                if ok:
                    return
                container = self.runtime.engine.container_of(self.stack.config.project, svc.name)
                if (container is None or container.state in ("exited", "dead", "restarting")
                        or (first is not None and container.restart_count > first.restart_count)):
                    break  # it stopped or crashed: its healthcheck and logs (below) say why
                self.runtime.sleep(0.1)
        self.wait_settled(svc, timeout)  # no direct probe, or it never answered: the healthcheck says why

    def wait_settled(self, svc: ResolvedService, timeout: float = 180) -> None:
        """Until the service's container is ready the way `up` waits for it (its healthcheck says healthy)."""
        from stackctl.ops.lifecycle import explain_failure, wait_until_ready

        ok, final = wait_until_ready(self.stack, lambda: self.runtime.engine.containers(self.stack.config.project),
                                     self.runtime.probe, timeout, only={svc.name},
                                     interval=self.runtime.poll_interval, clock=self.runtime.clock,
                                     sleep=self.runtime.sleep)
        if not ok:
            failed = any(s.phase == "failed" for s in final)
            raise StackError(f"{svc.spec.title} did not become healthy" + ("" if failed else f" within {timeout:.0f}s"),
                             details=explain_failure(self.runtime, final), exit_code=1)

    def reporter(self, svc: ResolvedService) -> Callable[[int], None]:
        return lambda count: self.progress(svc.key, count)


class Strategy:
    """How one kind of declaration captures and restores a service. `kind` says how a restore puts the data back:
    "swap" (staged in the service's volume, swapped in while it is stopped: the restore does it, from `volume`
    and `owner`) or "import" (sent through the service's API once it runs: `apply`, undone by `undo`)."""

    kind = "import"

    def capture(self, cap: Capture, svc: ResolvedService, decl: Any, out: SegmentWriter) -> tuple[list[str], dict]:
        """Write the service's data into `out`: (notes for the operator, details the restore needs)."""
        raise NotImplementedError

    # --- restoring (stackctl.ops.restore calls these; `rs` is its Restoring context) ---

    def preview(self, rs, svc: ResolvedService, decl: Any, segment: Segment) -> list[str]:
        """What restoring replaces or deletes in the running stack, said before the operator agrees. Read-only."""
        return []

    def stage(self, rs, svc: ResolvedService, decl: Any, segment: Segment, entry) -> None:
        """Put the segment's data where `apply` (or the swap) takes it from, checking every byte on the way. The
        default: private local staging files."""
        rs.reader.extract_to(segment, rs.staging(svc.key), rs.reporter(svc))

    def apply(self, rs, svc: ResolvedService, decl: Any, segment: Segment, entry) -> list[str]:
        """Import kinds: put the staged data into the running service; repeatable (a resumed restore calls it again
        and it does only what is left, as `entry.done` records). Returns what was restored, for the report."""
        return []

    def undo(self, rs, svc: ResolvedService, decl: Any, entry) -> None:
        """Import kinds: undo what `apply` did (as `entry` records), putting back what was there before."""

    def commit(self, rs, svc: ResolvedService, decl: Any, entry) -> None:
        """Remove what only a rollback needed, once the restore succeeded."""


# --- Prometheus: a TSDB snapshot ------------------------------------------------------------------------------


class TsdbSnapshotStrategy(Strategy):
    kind = "swap"

    def capture(self, cap, svc, decl: catalog.TsdbSnapshot, out):
        container = cap.container(svc)
        _, mount = cap.volume(svc, decl.volume)
        name = cap.api(Prometheus, svc, timeout=600).snapshot()
        path = f"{mount}/{decl.snapshots_dir}/{name}"
        cap.events(f"{svc.spec.title}: snapshot {name} taken through the admin API; copying it out")
        try:
            out.add_tar_stream(_counted(cap.runtime.engine.get_archive(container.id, path), cap.reporter(svc)),
                               strip=name)
        finally:
            # The snapshot's blocks are hard links into the live TSDB: removing them frees nothing it still uses.
            code, output = cap.runtime.engine.exec(container.id, ["rm", "-rf", path])
            if code != 0:
                cap.events(f"warning: {svc.spec.title}: could not remove the snapshot {path}: {output.strip()[:200]}")
        blocks = sorted({m.path.split("/")[0] for m in out.members if "/" in m.path})
        return ([f"{len(blocks)} TSDB block{'s' if len(blocks) != 1 else ''} from snapshot {name} (the head block "
                 "included)",
                 "restored as the whole data directory: samples written after the backup are replaced"],
                {"snapshot": name})


def _counted(chunks, report: Callable[[int], None]):
    for chunk in chunks:
        report(len(chunk))
        yield chunk


# --- Alertmanager: active silences ----------------------------------------------------------------------------

SILENCE_FIELDS = ("matchers", "startsAt", "endsAt", "createdBy", "comment")


def _silence_key(silence: dict) -> str:
    """What makes two silences the same for a restore (ids change when they are created again)."""
    matchers = sorted(json.dumps(m, sort_keys=True) for m in silence.get("matchers") or [])
    return json.dumps([matchers, _time(silence.get("endsAt")), silence.get("createdBy"), silence.get("comment")])


def _time(text: Any) -> str:
    """An RFC 3339 time normalised to UTC milliseconds (Alertmanager answers with its own precision)."""
    from stackctl.core.verify import parse_time

    moment = parse_time(text) if isinstance(text, str) else None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") if moment else str(text)


class ActiveSilencesStrategy(Strategy):
    def capture(self, cap, svc, decl, out):
        kept = [{k: s[k] for k in SILENCE_FIELDS if k in s} | {"id": s.get("id")}
                for s in cap.api(Alertmanager, svc).silences()
                if (s.get("status") or {}).get("state") in ("active", "pending")]
        kept.sort(key=lambda s: (s.get("startsAt") or "", s.get("id") or ""))
        out.add_bytes("silences.json", json.dumps(kept, indent=1, sort_keys=True).encode())
        return [f"{len(kept)} silences (active or pending; expired ones are not kept)"], {"silences": len(kept)}

    def preview(self, rs, svc, decl, segment):
        count = segment.details.get("silences", "its")
        return [f"{svc.spec.title}: {count} silences created again (existing silences stay)"]

    def apply(self, rs, svc, decl, segment, entry):
        am = rs.api(Alertmanager, svc)
        wanted = json.loads((rs.staging(svc.key) / "silences.json").read_text())
        now = datetime.now(timezone.utc)
        present = {_silence_key(s): s.get("id") for s in am.silences()
                   if (s.get("status") or {}).get("state") in ("active", "pending")}
        created, skipped, expired = 0, 0, 0
        for silence in wanted:
            from stackctl.core.verify import parse_time

            ends = parse_time(silence.get("endsAt") or "")
            if ends is None or ends <= now:
                expired += 1
                continue
            key = _silence_key(silence)
            if key in present:  # there already, made by this restore before it was interrupted, or by anyone
                skipped += 1
                continue
            new_id = am.post_silence({k: silence[k] for k in SILENCE_FIELDS if k in silence})
            entry.done.append(new_id)
            rs.save()
            present[key] = new_id
            created += 1
        active = {s.get("id"): (s.get("status") or {}).get("state") for s in am.silences()}
        inactive = [i for i in entry.done if active.get(i) not in ("active", "pending")]
        if inactive:
            raise StackError(f"{svc.spec.title}: restored silences are not active: {', '.join(inactive)}")
        said = [f"{created} silences created again and active"]
        if skipped:
            said.append(f"{skipped} already present")
        if expired:
            said.append(f"{expired} ended since the backup (not created)")
        return ["; ".join(said)]

    def undo(self, rs, svc, decl, entry):
        am = rs.api(Alertmanager, svc)
        for silence_id in list(entry.done):
            try:
                am.expire_silence(silence_id)
            except ApiError as error:
                if error.status not in (404, 500):  # 0.25 answers 500 for an unknown or expired silence
                    raise
            entry.done.remove(silence_id)
            rs.save()


# --- Grafana: user-made folders and dashboards, and its database ------------------------------------------------


def _folders(grafana: Grafana) -> list[dict]:
    """Every folder, nested ones included, parents before children."""
    found: list[dict] = []
    seen: set[str] = set()
    queue = [("", "")]
    while queue:
        parent, _ = queue.pop(0)
        for folder in grafana.folders(parent):
            uid = folder.get("uid")
            if not uid or uid in seen:  # a Grafana without nested folders answers the top level again
                continue
            seen.add(uid)
            found.append({"uid": uid, "title": folder.get("title", ""), "parentUid": folder.get("parentUid") or parent})
            queue.append((uid, ""))
    return found


def _safe_name(uid: str) -> str:
    return uid if uid and all(c.isalnum() or c in "-_" for c in uid) and len(uid) <= 64 else ""


class GrafanaContentStrategy(Strategy):
    def capture(self, cap, svc, decl: catalog.GrafanaContent, out):
        grafana = cap.api(Grafana, svc)
        user_made, provisioned_folders = [], set()
        for hit in grafana.search_dashboards():
            full = grafana.dashboard(hit["uid"])
            if full is None:  # deleted since the search
                continue
            meta = full.get("meta") or {}
            if meta.get("provisionedExternalId"):  # provisioning creates it again (meta.provisioned is not enough)
                provisioned_folders.add(meta.get("folderUid") or "")
                continue
            user_made.append({"dashboard": full["dashboard"], "folderUid": meta.get("folderUid") or "",
                              "folderTitle": meta.get("folderTitle") or ""})
        folders = [f for f in _folders(grafana) if f["uid"] not in provisioned_folders]
        out.add_bytes("api/folders.json", json.dumps(folders, indent=1, sort_keys=True).encode())
        for i, item in enumerate(sorted(user_made, key=lambda d: d["dashboard"].get("uid") or "")):
            name = _safe_name(item["dashboard"].get("uid") or "") or f"dashboard-{i}"
            out.add_bytes(f"api/dashboards/{name}.json", json.dumps(item, indent=1, sort_keys=True).encode())
        seconds = self._copy_database(cap, svc, decl, out)
        return ([f"{len(user_made)} dashboards and {len(folders)} folders made by users (provisioned ones are "
                 "created again by provisioning)",
                 f"{decl.database} copied with Grafana stopped for {seconds:.1f}s; a restore uses the dashboards and "
                 "folders, the database copy is for recovering users, alerting and preferences by hand"],
                {"dashboards": len(user_made), "folders": len(folders)})

    def _copy_database(self, cap, svc, decl, out) -> float:
        """Grafana's SQLite file, copied while Grafana is stopped (a consistent file), then Grafana started again."""
        container = cap.container(svc)
        _, mount = cap.volume(svc, decl.volume)
        engine = cap.runtime.engine
        cap.events(f"{svc.spec.title}: stopping it for the moment its database is copied")
        started = time.monotonic()
        engine.stop(container.id)
        try:
            out.add_tar_stream(_counted(engine.get_archive(container.id, f"{mount}/{decl.database}"),
                                        cap.reporter(svc)), prefix="database/")
        finally:
            engine.start(container.id)
            stopped_for = time.monotonic() - started
            cap.wait_ready(svc)
        cap.events(f"{svc.spec.title}: running again (stopped for {stopped_for:.1f}s)")
        return stopped_for

    def preview(self, rs, svc, decl, segment):
        return [f"{svc.spec.title}: {segment.details.get('dashboards', 'its')} dashboards and "
                f"{segment.details.get('folders', 'its')} folders created or replaced through the API (provisioned "
                "ones untouched; the database copy in the archive is not restored)"]

    def stage(self, rs, svc, decl, segment, entry):
        # Only the API part is restored: the database copy stays in the archive (it is still read and checked).
        rs.reader.extract_to(segment, rs.staging(svc.key), rs.reporter(svc), only=lambda path: path.startswith("api/"))

    def apply(self, rs, svc, decl, segment, entry):
        grafana = rs.api(Grafana, svc)
        staged = rs.staging(svc.key) / "api"
        record = entry.extra  # what to undo: created folders and dashboards, replaced dashboards' earlier versions
        record.setdefault("created_folders", [])
        record.setdefault("created_dashboards", [])
        record.setdefault("replaced", {})
        existing = {f["uid"]: f for f in _folders(grafana)}
        by_title = {}
        for folder in existing.values():
            by_title.setdefault(folder["title"], folder["uid"])
        for folder in json.loads((staged / "folders.json").read_text()):
            if folder["uid"] in existing:
                continue
            parent = folder.get("parentUid") or ""
            grafana.create_folder(folder["uid"], folder["title"], parent if parent in existing else "")
            existing[folder["uid"]] = folder
            record["created_folders"].append(folder["uid"])
            rs.save()
        restored, conflicts, moved = 0, [], []
        for path in sorted((staged / "dashboards").glob("*.json")) if (staged / "dashboards").is_dir() else []:
            item = json.loads(path.read_text())
            dashboard = item["dashboard"]
            uid = dashboard.get("uid") or ""
            if uid in entry.done:
                restored += 1
                continue
            folder_uid = item.get("folderUid") or ""
            if folder_uid and folder_uid not in existing:
                # Its folder came from provisioning, which gives folders new uids: find it by title.
                folder_uid = by_title.get(item.get("folderTitle") or "", "")
                if not folder_uid:
                    moved.append(dashboard.get("title") or uid)
            current = grafana.dashboard(uid) if uid else None
            if current is not None and (current.get("meta") or {}).get("provisionedExternalId"):
                conflicts.append(dashboard.get("title") or uid)
                continue
            if current is not None and uid not in record["replaced"] and uid not in record["created_dashboards"]:
                record["replaced"][uid] = {"dashboard": current["dashboard"],
                                           "folderUid": (current.get("meta") or {}).get("folderUid") or ""}
            elif current is None and uid not in record["created_dashboards"]:
                record["created_dashboards"].append(uid)
            rs.save()
            grafana.save_dashboard(dashboard, folder_uid, f"restored by stackctl from {rs.archive_name}")
            entry.done.append(uid)
            rs.save()
            restored += 1
        said = [f"{restored} dashboards and {len(record['created_folders'])} new folders restored through the API"]
        if moved:
            said.append(f"{len(moved)} put in the General folder, theirs no longer exists: {', '.join(moved)}")
        if conflicts:
            said.append(f"not restored, provisioning now owns their uid: {', '.join(conflicts)}")
        return ["; ".join(said)]

    def undo(self, rs, svc, decl, entry):
        grafana = rs.api(Grafana, svc)
        record = entry.extra
        for uid, previous in list(record.get("replaced", {}).items()):
            grafana.save_dashboard(previous["dashboard"], previous["folderUid"], "restore undone by stackctl")
            del record["replaced"][uid]
            rs.save()
        for uid in list(record.get("created_dashboards", [])):
            grafana.delete_dashboard(uid)
            record["created_dashboards"].remove(uid)
            rs.save()
        for uid in reversed(list(record.get("created_folders", []))):
            grafana.delete_folder(uid)
            record["created_folders"].remove(uid)
            rs.save()
        entry.done.clear()


# --- Elasticsearch: a snapshot through the snapshot API --------------------------------------------------------


def _repository_names(snapshot: str) -> tuple[str, str]:
    """(repository name, its directory under path.repo) for a snapshot of stackctl's: one repository each, so
    copying its directory copies that snapshot and nothing else."""
    return f"{snapshot}-repository", snapshot


class SearchSnapshotStrategy(Strategy):
    def capture(self, cap, svc, decl: catalog.SearchSnapshot, out):
        container = cap.container(svc)
        volume, mount = cap.volume(svc, decl.volume)
        es = cap.api(Elasticsearch, svc, timeout=120)
        snapshot = f"stackctl-{datetime.now(timezone.utc).strftime('%Y%m%dt%H%M%Sz')}-{_random.token_hex(3)}"
        repository, directory = _repository_names(snapshot)
        location = f"{mount}/{directory}"
        _own_volume(cap, svc, volume, mount)
        es.put_fs_repository(repository, location)
        try:
            info = es.create_snapshot(repository, snapshot, list(decl.indices))
            if info.get("state") != "SUCCESS":
                failures = "; ".join(str(f.get("reason")) for f in info.get("failures") or [])[:300]
                raise StackError(f"{svc.spec.title}: snapshot {snapshot} ended {info.get('state')}"
                                 + (f": {failures}" if failures else ""))
            cap.events(f"{svc.spec.title}: snapshot {snapshot} taken ({len(info.get('indices') or [])} indices); "
                       "copying the repository out")
            out.add_tar_stream(_counted(cap.runtime.engine.get_archive(container.id, location), cap.reporter(svc)),
                               strip=directory, prefix="repository/")
        finally:
            try:
                es.delete_snapshot(repository, snapshot)
                es.delete_repository(repository)
            except ApiError as error:
                cap.events(f"warning: {svc.spec.title}: could not remove snapshot {snapshot}: {error.message}")
            cap.runtime.engine.exec(container.id, ["rm", "-rf", location])
        streams, indices = list(info.get("data_streams") or []), list(info.get("indices") or [])
        plain = [i for i in indices if not i.startswith(".ds-")]
        return ([f"snapshot {snapshot}: {len(streams)} data streams and {len(plain)} other indices "
                 f"({', '.join(decl.indices)}), without global state or security"],
                {"snapshot": snapshot, "data_streams": streams, "indices": plain})

    def preview(self, rs, svc, decl, segment):
        streams, indices = self._conflicts(rs, svc, segment)
        said = [f"{svc.spec.title}: snapshot {segment.details.get('snapshot')} restored "
                f"({len(segment.details.get('data_streams') or [])} data streams, "
                f"{len(segment.details.get('indices') or [])} other indices)"]
        if streams or indices:
            said.append(f"{svc.spec.title}: DELETED first and replaced by the backup's: "
                        + ", ".join(streams + indices))
        return said

    def _conflicts(self, rs, svc, segment) -> tuple[list[str], list[str]]:
        es = rs.api(Elasticsearch, svc)
        streams = segment.details.get("data_streams") or []
        present = set(es.data_streams()) if streams else set()  # all of them: a list of names 404s on one missing
        indices = [i for i in segment.details.get("indices") or [] if es.index_exists(i)]
        return sorted(present & set(streams)), indices

    def stage(self, rs, svc, decl, segment, entry):
        volume, mount = rs.volume(svc, decl.volume)
        directory = _repository_names(segment.details["snapshot"])[1]
        uid, gid = svc.spec.uid, svc.spec.gid
        _own_volume(rs, svc, volume, mount)
        chunks = rs.reader.retar(segment, lambda path: f"{directory}/{path[len('repository/'):]}"
                                 if path.startswith("repository/") else None, uid, gid, rs.reporter(svc),
                                 parents=(directory,))
        rs.runtime.engine.copy_into_volume(rs.stack.config.project, svc.image, volume, mount, chunks)
        entry.extra["staged_dir"] = f"{mount}/{directory}"

    def apply(self, rs, svc, decl, segment, entry):
        es = rs.api(Elasticsearch, svc, timeout=300)
        snapshot = segment.details["snapshot"]
        repository = _repository_names(snapshot)[0]
        _, mount = rs.volume(svc, decl.volume)
        if "restored" in entry.done:
            return [self._said(segment)]
        es.put_fs_repository(repository, f"{mount}/{_repository_names(snapshot)[1]}", readonly=True)
        streams, indices = self._conflicts(rs, svc, segment)
        if (streams or indices) and "safety" not in entry.done:
            # What is deleted below is kept first in a snapshot of its own, so a rollback can put it back.
            safety = f"stackctl-before-{rs.journal.id.lower()}"  # snapshot names are lowercase
            repository_of_safety, directory = _repository_names(safety)
            es.put_fs_repository(repository_of_safety, f"{mount}/{directory}")
            info = es.create_snapshot(repository_of_safety, safety, streams + indices)
            if info.get("state") != "SUCCESS":
                raise StackError(f"{svc.spec.title}: the safety snapshot of what the restore replaces ended "
                                 f"{info.get('state')}; nothing was deleted")
            entry.extra["safety"] = {"snapshot": safety, "indices": streams + indices}
            entry.done.append("safety")
            rs.save()
        if streams:
            es.delete_data_streams(streams)
        for index in indices:
            es.delete_index(index)
        targets = list(segment.details.get("data_streams") or []) + list(segment.details.get("indices") or [])
        if targets:
            result = es.restore_snapshot(repository, snapshot, targets)
            shards = result.get("shards") or {}
            if shards.get("failed"):
                raise StackError(f"{svc.spec.title}: {shards['failed']} of {shards.get('total')} shards failed to "
                                 f"restore from {snapshot}")
        entry.done.append("restored")
        rs.save()
        return [self._said(segment)]

    @staticmethod
    def _said(segment) -> str:
        return (f"snapshot {segment.details.get('snapshot')} restored: "
                f"{len(segment.details.get('data_streams') or [])} data streams, "
                f"{len(segment.details.get('indices') or [])} other indices")

    def undo(self, rs, svc, decl, entry):
        es = rs.api(Elasticsearch, svc, timeout=300)
        safety = entry.extra.get("safety")
        segment = rs.segment(svc.key)
        if "restored" in entry.done or "safety" in entry.done:
            streams = set(segment.details.get("data_streams") or []) if segment else set()
            present = sorted(set(es.data_streams()) & streams) if streams else []
            if present:
                es.delete_data_streams(present)
            for index in (segment.details.get("indices") or []) if segment else []:
                if es.index_exists(index):
                    es.delete_index(index)
        if safety:
            es.restore_snapshot(_repository_names(safety["snapshot"])[0], safety["snapshot"], safety["indices"])
        entry.done.clear()
        rs.save()
        self.commit(rs, svc, decl, entry)

    def commit(self, rs, svc, decl, entry):
        es = rs.api(Elasticsearch, svc, timeout=300)
        volume, mount = rs.volume(svc, decl.volume)
        segment = rs.segment(svc.key)
        names = []
        if segment is not None:
            names.append(_repository_names(segment.details["snapshot"]))
        safety = entry.extra.get("safety")
        if safety:
            es.delete_snapshot(_repository_names(safety["snapshot"])[0], safety["snapshot"])
            names.append(_repository_names(safety["snapshot"]))
        for repository, _ in names:
            es.delete_repository(repository)
        script = " ; ".join(f"rm -rf '{mount}/{directory}'" for _, directory in names) or "true"
        rs.runtime.engine.run_on_volume(rs.stack.config.project, svc.image, volume, mount, script)


def _own_volume(ctx, svc: ResolvedService, volume: str, mount: str) -> None:
    """A fresh named volume belongs to root; the service's user must be able to write its repository there."""
    code, output = ctx.runtime.engine.run_on_volume(
        ctx.stack.config.project, svc.image, volume, mount, f"chown {svc.spec.uid}:{svc.spec.gid} '{mount}' && "
                                                            f"chmod 0770 '{mount}'")
    if code != 0:
        raise StackError(f"{svc.spec.title}: cannot prepare volume {volume} for snapshots: {output.strip()[:200]}")


# --- Kibana: saved objects ------------------------------------------------------------------------------------


def _ndjson_ids(data: bytes) -> list[tuple[str, str]]:
    ids = []
    for line in data.splitlines():
        if line.strip():
            item = json.loads(line)
            if isinstance(item, dict) and item.get("type") and item.get("id"):
                ids.append((str(item["type"]), str(item["id"])))
    return ids


class SavedObjectsStrategy(Strategy):
    def capture(self, cap, svc, decl: catalog.SavedObjects, out):
        data, summary = cap.api(Kibana, svc, timeout=300).export_saved_objects(list(decl.types))
        out.add_bytes("saved-objects.ndjson", data)
        count = summary.get("exportedCount", len(_ndjson_ids(data)))
        missing = sorted(f"{r.get('type')}/{r.get('id')}" for r in summary.get("missingReferences") or [])
        notes = [f"{count} saved objects ({', '.join(decl.types)})"]
        if missing:
            notes.append(f"already broken in Kibana: references to {', '.join(missing)}, which do not exist; the "
                         "objects holding them import with that error")
        return notes, {"objects": count, "missing_references": missing}

    def preview(self, rs, svc, decl, segment):
        return [f"{svc.spec.title}: {segment.details.get('objects', 'its')} saved objects imported, replacing those "
                "with the same ids"]

    def apply(self, rs, svc, decl, segment, entry):
        kibana = rs.api(Kibana, svc)
        staged = rs.staging(svc.key)
        data = (staged / "saved-objects.ndjson").read_bytes()
        if "imported" in entry.done:
            return [f"{len(_ndjson_ids(data))} saved objects imported"]
        if "safety" not in entry.done:
            before, _ = kibana.export_saved_objects(list(decl.types))
            rs.write_staging(svc.key, "before.ndjson", before)
            entry.done.append("safety")
            rs.save()
        said = [f"{len(_ndjson_ids(data))} saved objects imported (objects with the same ids replaced)"]
        if data.strip():
            answer = kibana.import_saved_objects(data)
            known = set(segment.details.get("missing_references") or [])
            broken, failed = [], []
            for error in answer.get("errors") or []:
                detail = error.get("error") or {}
                refs = {f"{r.get('type')}/{r.get('id')}" for r in detail.get("references") or []}
                name = f"{error.get('type')}/{error.get('id')}"
                if detail.get("type") == "missing_references" and refs and refs <= known:
                    broken.append(name)  # as broken as it was when backed up
                else:
                    failed.append(f"{name}: {detail.get('type')}" + (f" ({detail['message']})"
                                                                      if detail.get("message") else ""))
            if failed:
                raise StackError(f"{svc.spec.title}: the import of saved objects failed: {'; '.join(failed)[:400]}")
            if broken:
                said.append(f"not imported, broken before the backup (missing references): {', '.join(broken)}")
        entry.done.append("imported")
        rs.save()
        return said

    def undo(self, rs, svc, decl, entry):
        if "safety" not in entry.done:
            return
        kibana = rs.api(Kibana, svc)
        staged = rs.staging(svc.key)
        before = (staged / "before.ndjson").read_bytes()
        restored = (staged / "saved-objects.ndjson").read_bytes()
        if before.strip():
            kibana.import_saved_objects(before)
        had = set(_ndjson_ids(before))
        for kind, object_id in _ndjson_ids(restored):
            if (kind, object_id) not in had:
                kibana.delete_saved_object(kind, object_id)
        entry.done.clear()
        rs.save()


class NotKeptStrategy(Strategy):
    def capture(self, cap, svc, decl, out):  # never called: nothing is captured
        raise StackError(f"{svc.spec.title}: {decl.reason}")


STRATEGIES: dict[type, Strategy] = {
    catalog.TsdbSnapshot: TsdbSnapshotStrategy(),
    catalog.ActiveSilences: ActiveSilencesStrategy(),
    catalog.GrafanaContent: GrafanaContentStrategy(),
    catalog.SearchSnapshot: SearchSnapshotStrategy(),
    catalog.SavedObjects: SavedObjectsStrategy(),
    catalog.NotKept: NotKeptStrategy(),
}


def strategy_for(svc: ResolvedService) -> Strategy:
    return STRATEGIES[type(svc.spec.backup)]


# --- the backup as a whole ------------------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    duration: float
    size: int
    stopped: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"ok": True, "archive": str(self.path), "size": self.size, "duration": round(self.duration, 3),
                "encrypted": self.manifest.encrypted, "includes_secrets": self.manifest.includes_secrets,
                "services": [{"service": s.service, "strategy": s.strategy, "version": s.version,
                              "size": s.size, "stored": s.length, "members": len(s.members), "notes": list(s.notes)}
                             for s in self.manifest.segments],
                "not_kept": [{"service": n.service, "reason": n.reason} for n in self.manifest.not_kept]}


def backup_dir(stack: Stack, output: Path | None) -> Path:
    """--output, else backup.directory of stack.yaml (relative to the stack file)."""
    if output is not None:
        return output.absolute()
    return (stack.file.parent / stack.config.backup.directory).absolute()


def selected(stack: Stack, names: list[str]) -> tuple[list[ResolvedService], bool]:
    """(services whose data is captured, whether the stack files are) for --services NAMES (default: all)."""
    from stackctl.ops.lifecycle import service_names

    wanted = [n for n in names if n != STACK_SECTION]
    keys = {catalog.BY_NAME[n].key for n in service_names(stack, wanted)} if names else None
    services = []
    for svc in stack.services.values():
        if keys is not None and svc.key not in keys:
            continue
        if svc.spec.backup is None:
            if keys is not None:
                raise StackError(f"{svc.spec.title} keeps no data of its own: there is nothing to back up")
            continue
        services.append(svc)
    return services, not names or STACK_SECTION in names


def bundle_version(bundle: Path) -> str:
    try:
        return str(json.loads((bundle / BUNDLE_MANIFEST).read_text()).get("stackctl") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def run_backup(stack: Stack, runtime: Runtime, bundle: Path, output: Path | None = None, services: list[str] = (),
               include_secrets: bool = False, sealing: Sealing | None = None, events: Events = _quiet_event,
               progress: Progress = _quiet_progress) -> BackupResult:
    """Capture the selected services into one new archive in the backup directory; nothing is left behind when it
    fails (the partial file is removed)."""
    chosen, with_stack = selected(stack, list(services))
    if not with_stack and all(isinstance(svc.spec.backup, catalog.NotKept) for svc in chosen):
        reasons = "; ".join(f"{svc.spec.title}: {svc.spec.backup.reason}" for svc in chosen)
        raise StackError("nothing to back up" + (f": {reasons}" if reasons else ""))
    from stackctl.shells.state import JournalStore

    journal = JournalStore.for_stack(stack).load()
    if journal is not None:
        raise StackError(f"a restore ({journal.id}, phase {journal.phase}) did not finish, so the data may be half "
                         "swapped: run 'stackctl restore --resume' or 'stackctl restore --rollback' before a backup")
    if include_secrets and sealing is None:
        raise StackError("--include-secrets puts passwords into the archive, so it must be encrypted: pass "
                         "--passphrase-file FILE or --key-file FILE (or --encrypt to type a passphrase)")
    if include_secrets and not with_stack:
        raise StackError("--include-secrets needs the stack files in the backup: add 'stack' to --services")
    runtime.engine.ping()
    from stackctl.ops.lifecycle import statuses

    capturing = [svc for svc in chosen if not isinstance(svc.spec.backup, catalog.NotKept)]
    now = statuses(stack, runtime, {svc.name for svc in capturing}) if capturing else []
    not_ready = [s for s in now if s.phase != READY]
    if not_ready:
        raise StackError("not every service to back up is running and healthy: "
                         + ", ".join(f"{s.service} ({s.state}, {s.health})" for s in not_ready)
                         + "; run 'stackctl up' first", exit_code=1)
    started = utc_now()
    clock = time.monotonic()
    directory = backup_dir(stack, output)
    cap = Capture(stack, runtime, events, progress)
    try:
        writer = ArchiveWriter(directory, archive_name(stack.config.project, started), sealing,
                               progress=lambda count: None)
    except OSError as error:
        raise StackError(f"cannot write an archive into {directory}: {error.strerror or error}") from None
    segments, not_kept = [], []
    try:
        for svc in chosen:
            decl = svc.spec.backup
            if isinstance(decl, catalog.NotKept):
                not_kept.append(NotKept(svc.key, decl.reason))
                events(f"{svc.spec.title}: not kept: {decl.reason}")
                continue
            events(f"{svc.spec.title}: backing up ({type(decl).__name__})")
            begun = iso(utc_now())
            with writer.segment(svc.key) as out:
                notes, details = strategy_for(svc).capture(cap, svc, decl, out)
            members, offset, length, frames = writer.last
            segments.append(Segment(svc.key, svc.spec.title, type(decl).__name__, svc.image, str(svc.version),
                                    members, offset, length, begun, iso(utc_now()), tuple(notes), details, frames))
        for svc in stack.services.values():
            if svc.spec.backup is None and not svc.spec.oneshot and not services:
                not_kept.append(NotKept(svc.key, "keeps no data of its own (its configuration comes from stack.yaml)"))
        if with_stack:
            segments.append(_capture_stack(stack, runtime, writer, include_secrets))
        manifest = Manifest(project=stack.config.project, stackctl_version=__version__,
                            bundle_stackctl_version=bundle_version(bundle), created=iso(started),
                            finished=iso(utc_now()), encrypted=sealing is not None, includes_secrets=include_secrets,
                            segments=tuple(segments), not_kept=tuple(not_kept))
        summary = {"project": stack.config.project, "created": iso(started), "stackctl_version": __version__,
                   "services": [s.service for s in segments], "encrypted": sealing is not None,
                   "includes_secrets": include_secrets, "size": sum(s.size for s in segments)}
        path = writer.finish(manifest, summary)
    except OSError as error:  # the disk filled up, the directory went away: nothing is kept
        writer.abort()
        raise StackError(f"writing the archive in {directory} failed: {error.strerror or error}; nothing was kept"
                         ) from None
    except BaseException:
        writer.abort()
        raise
    final = Manifest(**{**manifest.__dict__, "data_length": sum(s.length for s in segments)})
    return BackupResult(path, final, time.monotonic() - clock, path.stat().st_size)


def _capture_stack(stack: Stack, runtime: Runtime, writer: ArchiveWriter, include_secrets: bool) -> Segment:
    begun = iso(utc_now())
    notes = ["stack.yaml as it is now"]
    with writer.segment(STACK_SECTION) as out:
        if stack.file.is_file():
            out.add_bytes("stack.yaml", stack.file.read_bytes())
        else:
            notes = ["no stack.yaml: the stack runs on defaults"]
        if include_secrets:
            store = runtime.store(stack)
            names = [n for n, spec in required_secrets(stack).items() if spec.generate and store.exists(n)]
            for name in names:
                out.add_bytes(f"secrets/{name}", store.read(name).encode(), mode=0o600)
            notes.append(f"{len(names)} generated secrets (the archive is encrypted); secrets you supply from your "
                         "own files or variables are not included")
        else:
            notes.append("no secrets (pass --include-secrets, with encryption, to keep them)")
    members, offset, length, frames = writer.last
    return Segment(STACK_SECTION, "Stack files", "StackFiles", "", __version__, members, offset, length, begun,
                   iso(utc_now()), tuple(notes), {"secrets": include_secrets}, frames)


# --- list and prune -------------------------------------------------------------------------------------------


def list_backups(stack: Stack, output: Path | None = None):
    return list_archives(backup_dir(stack, output), stack.config.project)


def prune_plan(stack: Stack, keep: int, output: Path | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """(archives kept, archives to delete, leftovers of interrupted backups to delete): the newest `keep` archives
    of this project stay; nothing else in the directory is touched."""
    if keep < 1:
        raise StackError("--keep must be at least 1: prune never deletes every backup")
    listing = list_backups(stack, output)
    archives = sorted(listing.archives, key=lambda a: parse_archive_name(a.path.name)[1], reverse=True)
    return ([a.path for a in archives[:keep]], [a.path for a in archives[keep:]], list(listing.stale_partials))


def delete_archives(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# --- encryption settings ----------------------------------------------------------------------------------------


def read_passphrase(path: Path) -> str:
    """The first line of a passphrase file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise StackError(f"cannot read the passphrase file {path}: {getattr(error, 'strerror', None) or error}") from None
    if not lines or not lines[0]:
        raise StackError(f"the passphrase file {path} is empty")
    return lines[0]


def _configured(stack: Stack, value: str) -> Path | None:
    return (stack.file.parent / value) if value else None


def configured_encryption(stack: Stack, passphrase_file: Path | None, key_file: Path | None) -> tuple[Path | None,
                                                                                                    Path | None]:
    """(passphrase file, key file): the command line's, else stack.yaml's backup section."""
    if passphrase_file and key_file:
        raise StackError("pass --passphrase-file or --key-file, not both")
    if passphrase_file or key_file:
        return passphrase_file, key_file
    return (_configured(stack, stack.config.backup.passphrase_file), _configured(stack, stack.config.backup.key_file))


def sealing_for(stack: Stack, passphrase: str | None, passphrase_file: Path | None,
                key_file: Path | None) -> Sealing | None:
    """How a new archive is encrypted: a typed passphrase, else the files (command line, then stack.yaml); None:
    plain."""
    if passphrase is not None:
        return seal_with_passphrase(passphrase)
    passphrase_file, key_file = configured_encryption(stack, passphrase_file, key_file)
    if key_file:
        return seal_with_key_file(key_file)
    if passphrase_file:
        return seal_with_passphrase(read_passphrase(passphrase_file))
    return None


def unsealing_for(stack: Stack, passphrase: str | None, passphrase_file: Path | None,
                  key_file: Path | None) -> Unsealing:
    """What may open an archive: a typed passphrase, the passphrase file and the key file (either from the
    command line or stack.yaml)."""
    passphrase_file = passphrase_file or _configured(stack, stack.config.backup.passphrase_file)
    key_file = key_file or _configured(stack, stack.config.backup.key_file)
    if passphrase is None and passphrase_file is not None:
        passphrase = read_passphrase(passphrase_file)
    return Unsealing(passphrase, key_file)


def needs_passphrase(stack: Stack, archive: Path, passphrase_file: Path | None, key_file: Path | None) -> bool:
    """The archive is encrypted and nothing given opens it without typing a passphrase."""
    if passphrase_file or key_file or stack.config.backup.passphrase_file or stack.config.backup.key_file:
        return False
    try:
        return peek(archive).encrypted
    except (StackError, OSError):
        return False  # opening it says what is wrong


def write_new_key(file: Path) -> str:
    """A new age identity written to `file` (0600, never overwriting); its public key."""
    if file.exists():
        raise StackError(f"{file} exists; choose another file (an age identity is never overwritten)")
    secret, public = generate_identity()
    atomic_write(file, f"# stackctl backup key, public key: {public}\n{secret}\n".encode(), mode=0o600)
    return public
