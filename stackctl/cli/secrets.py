"""`stackctl secrets`: list the stack's secrets, show one value on request, rotate one.

Values reach the terminal only through `show`, on stdout alone; everything else names secrets, never values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl.cli.context import app_context
from stackctl.cli.present import (ServiceProgress, confirm_or_refuse, emit_json, err, event_printer, human_duration,
                                  out, table)

secrets_app = typer.Typer(
    help="The stack's secrets: list them (never their values), show one, rotate one.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@secrets_app.command("list")
def list_secrets(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable list."),
) -> None:
    """Every secret the enabled services use: who reads it, where it comes from, whether it exists, its age."""
    from stackctl.ops.rotate import refusal
    from stackctl.ops.secrets import inventory

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    store = app_ctx.runtime.store(stack)
    rows = [(entry, refusal(stack, entry.name, store)) for entry in inventory(stack, store, app_ctx.runtime.environ)]
    if as_json:
        emit_json({
            "state_dir": str(store.root),
            "secrets": [{**entry.to_json(), "rotatable": reason is None,
                         "not_rotated_because": reason} for entry, reason in rows],
        })
        return

    def rotate_word(entry, reason) -> str:
        if reason is None:
            return "yes"
        return "no: user-supplied" if entry.origin == "user" else "no: see --json"

    out.print(table(escape(f"secrets of {stack.config.project} ({store.root})"),
                    ("secret", "used by", "origin", "present", "age", "rotate"),
                    [(entry.name, ", ".join(entry.used_by),
                      entry.origin if entry.origin == "generated" else escape(f"user ({entry.source})"),
                      "[green]yes[/]" if entry.present else "[red]missing[/]", human_duration(entry.age_seconds),
                      rotate_word(entry, reason)) for entry, reason in rows]))
    missing = [entry.name for entry, _ in rows if not entry.present and entry.origin == "generated"]
    if missing:
        err.print(f"missing: {', '.join(missing)}; 'stackctl render' generates them", markup=False)
    loose = [entry.name for entry, _ in rows if entry.mode not in (None, "0600")]
    if loose:
        err.print(f"[yellow]warning:[/] {', '.join(loose)} readable by others than you; chmod 600 them")


@secrets_app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The secret's name, as 'stackctl secrets list' shows it."),
) -> None:
    """Print one secret's value, alone on stdout (so that $(stackctl secrets show NAME) works)."""
    from stackctl.ops.secrets import stored_value

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    typer.echo(stored_value(stack, app_ctx.runtime.store(stack), name))


@secrets_app.command("rotate")
def rotate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The secret to replace with a new generated value."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before changing it and recreating services."),
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for the recreated services' health."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Replace a generated secret: change it inside the running service, store it, recreate the services using it.

    Grafana's admin password and Elasticsearch's users are changed through their APIs first (they read their
    files only on first start). kibana_encryption_key and user-supplied secrets are not rotated.
    """
    from stackctl.ops.bundle import prepare_bundle
    from stackctl.ops.rotate import RotationRun, plan_rotation
    from stackctl.ops.rotate import rotate as rotate_secret
    from stackctl.ops.secrets import check_known

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    runtime = app_ctx.runtime
    check_known(stack, name)
    plan = plan_rotation(stack, name, runtime.store(stack))
    confirm_or_refuse(f"Rotate {name}? This {plan.describe()}",
                      "rotation changes a password in use and recreates services: pass --yes to confirm when not "
                      "running interactively", yes)
    runtime.engine.ping()  # fail fast when the engine is down, before anything changes
    bundle = prepare_bundle(stack, app_ctx.bundle_dir(out_dir), runtime, tools=False).dir
    with ServiceProgress(plain=as_json) as progress:
        result = rotate_secret(RotationRun(stack, bundle, runtime, timeout, on_update=progress.update,
                                           on_event=event_printer("rotate: ", as_json)), name)
    if as_json:
        emit_json(result.to_json())
        return
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    done = "finished the interrupted rotation of" if result.finished_earlier else "rotated"
    parts = [f"{done} {name}"]
    if result.changed_in:
        parts.append(f"changed in {result.changed_in}")
    if result.recreated:
        parts.append(f"recreated {', '.join(result.recreated)}")
    if result.prepared:
        parts.append(f"prepared the stopped {', '.join(result.prepared)}")
    out.print("; ".join(parts), markup=False)
