"""`stackctl init`, `render` and `validate`: the stack file and its bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl.cli.context import app_context
from stackctl.cli.present import emit_json, err, out, table, verdict

OUT_OPTION = typer.Option(None, "--out", "-o", help="Bundle directory (default: build/ next to the stack file).")


def init(
    ctx: typer.Context,
    preset: str = typer.Option("full", help="Which services are on: metrics, logs, traces or full."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing stack file."),
) -> None:
    """Write a stack.yaml with every setting at its default, commented."""
    from stackctl.ops.stack import write_new_stack_file

    file = app_context(ctx).file
    write_new_stack_file(file, preset, force)
    out.print(f"wrote {escape(str(file))} (preset {preset}). Next: [bold]stackctl up[/] (or stackctl render to look first)")


def render(
    ctx: typer.Context,
    out_dir: Optional[Path] = OUT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Render the bundle: compose.yaml plus every service's config (checked before anything is written)."""
    from stackctl.ops.bundle import prepare_bundle

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    prepared = prepare_bundle(stack, app_ctx.bundle_dir(out_dir), app_ctx.runtime, tools=False)
    result = prepared.write
    if as_json:
        emit_json({
            "bundle": str(prepared.dir), "services": [s.name for s in stack.services.values()],
            "written": list(result.written), "unchanged": len(result.unchanged), "removed": list(result.removed),
            "secrets_generated": list(prepared.generated),
        })
        return
    for name in prepared.generated:
        out.print(f"generated secret {name}")
    out.print(f"rendered {len(prepared.plan)} files to {escape(str(prepared.dir))}: {len(result.written)} written, "
              f"{len(result.unchanged)} unchanged, {len(result.removed)} removed")
    out.print("services: " + ", ".join(s.name for s in stack.services.values()))


def validate(
    ctx: typer.Context,
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory to write when it validates."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable results."),
    strict: bool = typer.Option(False, "--strict", help="Fail when a validator is missing, too."),
) -> None:
    """Render into a staging directory and run every validator there (docker compose config, promtool, amtool,
    structural checks); the bundle is written only when all pass. Exit 1 when one fails."""
    from stackctl.ops.bundle import apply, validate_plan

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    bundle = app_ctx.bundle_dir(out_dir)
    validation = validate_plan(stack, bundle, app_ctx.runtime, tools=True)
    failed = validation.failed(strict)
    if not failed:
        apply(validation, stack, bundle, app_ctx.runtime)
    results = validation.checks
    if as_json:
        emit_json({"ok": not failed, "bundle": str(bundle), "written": not failed,
                                   "checks": [r.to_json() for r in results]})
    else:
        out.print(table(f"validation of {escape(str(bundle))}", ("check", "result", "checked by"),
                        [(escape(r.name), verdict(r.status), escape(r.tool)) for r in results]))
        for r in results:
            if r.status in ("failed", "missing") and r.message:
                (err if r.status == "failed" else out).print(f"[bold]{escape(r.name)}[/]: {escape(r.message)}")
        if failed:
            err.print("nothing was written: the bundle is written only when every check passes")
    if failed:
        raise typer.Exit(1)
