"""`stackctl backup` (with `list`, `prune`, `keygen`) and `stackctl restore`: options, confirmation, progress and
the reports; the work is in stackctl.ops.backup and stackctl.ops.restore."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl.cli.context import app_context
from stackctl.cli.present import (ByteProgress, confirm_or_refuse, emit_json, err, human_bytes, out, table, verdict,
                                  verify_table, warn)
from stackctl.core.errors import StackError

backup_app = typer.Typer(help="Back up the stack's data into one archive; list and prune archives.",
                         invoke_without_command=True, no_args_is_help=False)

OUTPUT = typer.Option(None, "--output", help="Directory of the archives (default: backup.directory of stack.yaml, "
                                              "./backups).")
BUNDLE = typer.Option(None, "--out", "-o", help="Bundle directory the stack was started from.")
PASSPHRASE_FILE = typer.Option(None, "--passphrase-file", help="Encrypt (or open) with the passphrase in this file "
                                                                "(its first line).")
KEY_FILE = typer.Option(None, "--key-file", help="Encrypt to the age key in this file (an identity AGE-SECRET-KEY-1... "
                                                  "or recipients age1...); a restore needs the identity.")


def _typed_passphrase(encrypt: bool) -> str | None:
    """With --encrypt, a passphrase typed twice at the terminal."""
    if not encrypt:
        return None
    if not sys.stdin.isatty():
        raise StackError("--encrypt asks for a passphrase at the terminal; without one, pass --passphrase-file")
    first = typer.prompt("Passphrase for the archive", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise StackError("the two passphrases differ; nothing was written")
    return first


@backup_app.callback()
def backup(
    ctx: typer.Context,
    output: Optional[Path] = OUTPUT,
    services: list[str] = typer.Option([], "--services", help="Only these services ('stack' for stack.yaml and "
                                                              "secrets). Repeatable; default: everything."),
    include_secrets: bool = typer.Option(False, "--include-secrets", help="Also keep the generated secrets (the "
                                                                          "archive must then be encrypted)."),
    encrypt: bool = typer.Option(False, "--encrypt", help="Encrypt with a passphrase typed at the terminal."),
    passphrase_file: Optional[Path] = PASSPHRASE_FILE,
    key_file: Optional[Path] = KEY_FILE,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_dir: Optional[Path] = BUNDLE,
) -> None:
    """Back up every service's data (Prometheus TSDB snapshot, Alertmanager silences, Grafana dashboards and
    database, Elasticsearch snapshot, Kibana saved objects) and stack.yaml into one archive, while the stack runs."""
    if ctx.invoked_subcommand is not None:
        return
    from stackctl.ops.backup import run_backup, sealing_for

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    if encrypt and (passphrase_file or key_file):
        raise StackError("--encrypt asks for a passphrase; with --passphrase-file or --key-file it is not needed")
    sealing = sealing_for(stack, _typed_passphrase(encrypt), passphrase_file, key_file)
    with ByteProgress(plain=as_json) as progress:
        result = run_backup(stack, app_ctx.runtime, app_ctx.bundle_dir(out_dir), output, list(services),
                            include_secrets, sealing, events=progress.event if not as_json else lambda m: None,
                            progress=progress.advance)
    if as_json:
        emit_json(result.to_json())
        return
    rows = [(s.service, s.strategy, s.version, human_bytes(s.size), human_bytes(s.length), escape("; ".join(s.notes)))
            for s in result.manifest.segments]
    out.print(table(escape(f"backup of {stack.config.project}"), ("service", "strategy", "version", "data", "stored",
                                                                   "what"), rows))
    for item in result.manifest.not_kept:
        out.print(f"[yellow]not kept[/] {escape(item.service)}: {escape(item.reason)}")
    encrypted = "encrypted" if result.manifest.encrypted else "not encrypted"
    out.print(f"wrote {escape(str(result.path))} ({human_bytes(result.size)}, {encrypted}) in {result.duration:.1f}s")


@backup_app.command("list")
def list_(
    ctx: typer.Context,
    output: Optional[Path] = OUTPUT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable list."),
) -> None:
    """The project's archives, newest first (read from their headers; nothing is decrypted)."""
    from stackctl.ops.backup import backup_dir, list_backups

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    listing = list_backups(stack, output)
    if as_json:
        emit_json({
            "directory": str(backup_dir(stack, output)),
            "archives": [{"path": str(a.path), "size": a.size, "encrypted": a.encrypted, **a.summary}
                         for a in listing.archives],
            "unreadable": [{"path": str(p), "reason": r} for p, r in listing.unreadable],
            "interrupted": [str(p) for p in listing.stale_partials]})
        return
    rows = [(escape(a.path.name), str(a.summary.get("created", ""))[:19].replace("T", " "),
             escape(", ".join(a.summary.get("services") or [])), human_bytes(a.size),
             "yes" if a.encrypted else "no", "yes" if a.summary.get("includes_secrets") else "no")
            for a in listing.archives]
    out.print(table(escape(f"backups of {stack.config.project} in {backup_dir(stack, output)}"),
                    ("archive", "created (UTC)", "services", "size", "encrypted", "secrets"), rows))
    for path, reason in listing.unreadable:
        warn(f"{path.name}: {reason}")
    for path in listing.stale_partials:
        warn(f"{path.name}: left by an interrupted backup; 'stackctl backup prune' removes it")


@backup_app.command()
def prune(
    ctx: typer.Context,
    keep: int = typer.Option(..., "--keep", help="How many of the newest archives to keep (at least 1)."),
    output: Optional[Path] = OUTPUT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deleting."),
    as_json: bool = typer.Option(False, "--json", help="Print what was deleted as JSON."),
) -> None:
    """Delete all but the newest N archives of this project (and leftovers of interrupted backups)."""
    from stackctl.ops.backup import delete_archives, prune_plan

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    kept, doomed, partials = prune_plan(stack, keep, output)
    if doomed:
        confirm_or_refuse(f"Delete {len(doomed)} archives of {stack.config.project} ("
                          + ", ".join(p.name for p in doomed) + ")? This cannot be undone",
                          "prune deletes backups: pass --yes to confirm when not running interactively", yes)
    delete_archives(doomed + partials)
    if as_json:
        emit_json({"kept": [str(p) for p in kept], "deleted": [str(p) for p in doomed],
                                   "interrupted_removed": [str(p) for p in partials]})
        return
    out.print(f"kept {len(kept)} archives, deleted {len(doomed)}"
              + (f" and {len(partials)} leftovers of interrupted backups" if partials else ""))


@backup_app.command()
def keygen(
    file: Path = typer.Argument(..., help="Where to write the new age identity (mode 0600)."),
) -> None:
    """Make an age key for encrypted backups: the identity (keep it safe, restores need it) goes into FILE, the
    public key is printed (a recipients file with it lets a machine take backups without the identity)."""
    from stackctl.ops.backup import write_new_key

    public = write_new_key(file)
    out.print(f"wrote {escape(str(file))}; public key {public}")


def restore(
    ctx: typer.Context,
    archive: Optional[Path] = typer.Argument(None, help="The archive to restore."),
    services: list[str] = typer.Option([], "--services", help="Only these services ('stack' for stack.yaml and "
                                                              "secrets). Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the archive and say what would be restored; change "
                                                          "nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before replacing data."),
    resume: bool = typer.Option(False, "--resume", help="Finish a restore that was interrupted."),
    rollback: bool = typer.Option(False, "--rollback", help="Undo a restore that was interrupted: the previous data "
                                                            "back."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Do not run 'stackctl verify' afterwards."),
    passphrase_file: Optional[Path] = PASSPHRASE_FILE,
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="The age identity file that opens the archive."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan and the result as JSON."),
    out_dir: Optional[Path] = BUNDLE,
) -> None:
    """Put a backup back into the running stack: every byte is checked before anything is touched, data is staged,
    then swapped in (or imported through the service's API), and 'stackctl verify' runs on the result. It replaces
    data, so it asks first unless --yes. Exit 1 when verify fails afterwards, 2 when the archive is refused."""
    from stackctl.ops import restore as ops

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    runtime = app_ctx.runtime
    bundle = app_ctx.bundle_dir(out_dir)
    if resume or rollback:
        if resume and rollback:
            raise StackError("--resume and --rollback exclude each other")
        if archive is not None or services or dry_run:
            raise StackError("--resume and --rollback take no archive, --services or --dry-run: they act on the "
                             "interrupted restore the state directory records")
        journal = ops.pending_journal(stack)
        if journal is None:
            raise StackError("no interrupted restore to resume or roll back")
        what = "Finish" if resume else "Undo"
        confirm_or_refuse(f"{what} the interrupted restore {journal.id} of {journal.archive}?",
                          f"--{'resume' if resume else 'rollback'} changes data: pass --yes to confirm when not "
                          "running interactively", yes)
        runtime.engine.ping()
        with ByteProgress(plain=as_json) as progress:
            events = progress.event if not as_json else (lambda m: None)
            if rollback:
                restore_id = ops.rollback(stack, runtime, events)
                if as_json:
                    emit_json({"ok": True, "rolled_back": restore_id})
                else:
                    out.print(f"restore {restore_id} rolled back: the previous data is in place")
                return
            result = ops.resume(stack, runtime, bundle, events, run_verify=not no_verify)
        _report(result, as_json, None)
        return
    if archive is None:
        raise StackError("name the archive to restore ('stackctl backup list' shows them)")
    journal = ops.pending_journal(stack)
    if journal is not None and not dry_run:
        raise StackError(ops.unfinished_message(journal))
    runtime.engine.ping()
    from stackctl.ops.backup import needs_passphrase, unsealing_for

    typed = None
    if sys.stdin.isatty() and needs_passphrase(stack, archive, passphrase_file, key_file):
        typed = typer.prompt(f"Passphrase of {archive.name}", hide_input=True)
    reader = ops.open_archive(archive, unsealing_for(stack, typed, passphrase_file, key_file))
    with reader:
        plan = ops.plan_restore(stack, runtime, reader, list(services))
        if dry_run and not plan.refusals:
            totals = {s.service: s.size for s in plan.manifest.segments}
            with ByteProgress(totals, plain=as_json) as progress:
                ops.check_archive(reader, progress.advance)
        if as_json and dry_run:
            emit_json({"ok": not plan.refusals, "dry_run": True, **plan.to_json()})
            if plan.refusals:
                raise typer.Exit(2)
            return
        if not as_json:
            _print_plan(plan)
        if plan.refusals:
            raise StackError("the restore is refused, nothing was changed:\n  " + "\n  ".join(plan.refusals))
        if dry_run:
            if not as_json:
                out.print("dry run: every checksum of the archive matches; nothing was changed")
            return
        if not plan.items:
            raise StackError("nothing to restore: " + ("; ".join(plan.skipped) or "the backup holds no service data"))
        confirm_or_refuse(f"Replace the data listed above in {stack.config.project} with the backup's?",
                          "restore replaces data: pass --yes to confirm when not running interactively", yes)
        totals = {item.service: item.segment.size for item in plan.items}
        with ByteProgress(totals, plain=as_json) as progress:
            result = ops.run_restore(stack, runtime, bundle, reader, plan,
                                     events=progress.event if not as_json else (lambda m: None),
                                     progress=progress.advance, run_verify=not no_verify)
    _report(result, as_json, plan)


def _print_plan(plan) -> None:
    manifest = plan.manifest
    out.print(f"archive {escape(str(plan.archive))}: project {escape(manifest.project)}, made "
              f"{escape(manifest.created[:19].replace('T', ' '))} UTC by stackctl {escape(manifest.stackctl_version)}"
              + (", encrypted" if manifest.encrypted else ""))
    rows = [(escape(i.service), escape(i.segment.strategy), escape(i.segment.version), human_bytes(i.segment.size),
             verdict("ok" if i.verdict == "ok" else ("warning" if i.verdict == "warning" else "failed"), i.verdict),
             escape("; ".join(i.replaces)))
            for i in plan.items]
    out.print(table("restore plan", ("service", "strategy", "backed-up version", "data", "check", "replaces"), rows))
    for message in [m for i in plan.items if i.verdict == "warning" for m in i.messages] + plan.warnings:
        warn(message)
    for message in plan.skipped:
        err.print(f"[dim]{escape(message)}[/]")
    for item in manifest.not_kept:
        err.print(f"[yellow]{escape(item.service)} is not in the backup[/]: {escape(item.reason)}")


def _report(result, as_json: bool, plan) -> None:
    if as_json:
        body = result.to_json()
        if plan is not None:
            body["plan"] = plan.to_json()
        emit_json(body)
    else:
        for service, lines in result.restored.items():
            out.print(f"[green]restored[/] {escape(service)}: {escape('; '.join(lines))}")
        for warning in result.warnings:
            warn(warning)
        if result.verify is not None:
            out.print(verify_table(result.verify.results, escape(f"stackctl verify after the restore {result.journal_id}")))
            passed = sum(r.status == "passed" for r in result.verify.results)
            failed = [r for r in result.verify.results if r.status == "failed"]
            out.print(f"restore {result.journal_id} done in {result.duration:.1f}s; verify: {passed} passed, "
                      f"{len(failed)} failed")
        else:
            out.print(f"restore {result.journal_id} done in {result.duration:.1f}s (verify not run)")
    if not result.ok:
        raise typer.Exit(1)
