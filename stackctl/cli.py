"""The command line: parse options, call the core and the shells, present results. Errors become exit codes here."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from stackctl import __version__
from stackctl.errors import StackError

app = typer.Typer(
    name="stackctl",
    help="One stack.yaml to a running, provisioned monitoring stack: Prometheus, Alertmanager, Grafana, "
         "Elasticsearch/Logstash/Kibana, Jaeger and the OpenTelemetry collector on Docker Compose.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class AppContext:
    """What every command works from; built once in the callback, replaceable in tests."""

    file: Path
    sets: list[str] = field(default_factory=list)
    debug: bool = False
    _stack: object = None

    def stack(self, must_exist: bool = True):
        from stackctl.config import load_stack

        if self._stack is None:
            self._stack = load_stack(self.file, sets=self.sets, must_exist=must_exist)
            for warning in self._stack.warnings:
                err.print(f"[yellow]warning:[/] {warning}")
        return self._stack

    def bundle_dir(self, out_dir: Optional[Path]) -> Path:
        return out_dir if out_dir is not None else self.file.absolute().parent / "build"


def _ctx(ctx: typer.Context) -> AppContext:
    return ctx.obj


def _version(value: bool) -> None:
    if value:
        out.print(f"stackctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Stack file (default: $STACKCTL_FILE or ./stack.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override one setting: dotted.key=VALUE (YAML value). Repeatable."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    from stackctl.config import locate

    if ctx.obj is None:
        ctx.obj = AppContext(file=locate(str(file) if file else None), sets=list(set_),
                             debug=debug or bool(os.environ.get("STACKCTL_DEBUG")))


# --- init -----------------------------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    preset: str = typer.Option("full", help="Which services are on: metrics, logs, traces or full."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing stack file."),
) -> None:
    """Write a stack.yaml with every setting at its default, commented."""
    from stackctl import catalog
    from stackctl.fs import atomic_write

    app_ctx = _ctx(ctx)
    if preset not in catalog.PRESETS:
        raise StackError(f"unknown preset {preset!r}: choose one of {', '.join(catalog.PRESETS)}")
    if app_ctx.file.exists() and not force:
        raise StackError(f"{app_ctx.file} already exists; pass --force to overwrite it")
    template = (Path(__file__).parent / "stack.yaml.template").read_text()
    atomic_write(app_ctx.file, template.replace("{{ preset }}", preset).encode())
    out.print(f"wrote {app_ctx.file} (preset {preset}). Next: [bold]stackctl up[/] (or stackctl render to look first)")


# --- render / validate ----------------------------------------------------------------------------------------


def _render(app_ctx: AppContext, out_dir: Optional[Path], check_tools: bool):
    """Load, render in memory, validate, then write. Nothing is written if any step before writing fails."""
    from stackctl.render import render_bundle, write_bundle
    from stackctl.secrets import SecretStore
    from stackctl.validate import structural_checks

    stack = app_ctx.stack()
    plan = render_bundle(stack)
    failed = [c for c in structural_checks(stack, plan) if c.status == "failed"]
    if failed:
        raise StackError("the rendered bundle is inconsistent (a bug in stackctl's templates)",
                         details="\n".join(c.message for c in failed))
    created = SecretStore.for_stack(stack).ensure(stack)
    bundle = app_ctx.bundle_dir(out_dir)
    result = write_bundle(plan, bundle)
    return stack, plan, bundle, result, created


@app.command()
def render(
    ctx: typer.Context,
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory (default: build/ next to the stack file)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary."),
) -> None:
    """Render the bundle: compose.yaml plus every service's config."""
    stack, plan, bundle, result, created = _render(_ctx(ctx), out_dir, check_tools=False)
    if as_json:
        out.print_json(json.dumps({
            "bundle": str(bundle), "services": [s.name for s in stack.services.values()],
            "written": list(result.written), "unchanged": len(result.unchanged), "removed": list(result.removed),
            "secrets_generated": created,
        }))
        return
    for name in created:
        out.print(f"generated secret {name}")
    out.print(f"rendered {len(plan)} files to {bundle}: {len(result.written)} written, "
              f"{len(result.unchanged)} unchanged, {len(result.removed)} removed")
    out.print("services: " + ", ".join(s.name for s in stack.services.values()))


@app.command()
def validate(
    ctx: typer.Context,
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory to render into and check."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable results."),
    strict: bool = typer.Option(False, "--strict", help="Fail when a validator is missing, too."),
) -> None:
    """Render, then run every available validator: docker compose config, promtool, amtool, structural checks."""
    from stackctl.validate import tool_checks, structural_checks
    from stackctl.secrets import SecretStore

    stack, plan, bundle, _, _ = _render(_ctx(ctx), out_dir, check_tools=True)
    results = structural_checks(stack, plan) + tool_checks(stack, bundle, SecretStore.for_stack(stack).compose_env(stack))
    failed = [r for r in results if r.status == "failed" or (strict and r.status == "missing")]
    if as_json:
        out.print_json(json.dumps({"ok": not failed, "bundle": str(bundle), "checks": [r.to_json() for r in results]}))
    else:
        table = Table(title=f"validation of {bundle}", title_justify="left")
        table.add_column("check")
        table.add_column("result")
        table.add_column("checked by")
        colour = {"passed": "green", "failed": "red", "missing": "yellow", "skipped": "dim"}
        for r in results:
            table.add_row(r.name, f"[{colour[r.status]}]{r.status}[/]", r.tool)
        out.print(table)
        for r in results:
            if r.status in ("failed", "missing") and r.message:
                (err if r.status == "failed" else out).print(f"[bold]{r.name}[/]: {r.message}")
    if failed:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: one error type in, one message and exit code out."""
    debug = "--debug" in sys.argv or bool(os.environ.get("STACKCTL_DEBUG"))
    try:
        app(standalone_mode=False)
    except StackError as error:
        err.print(f"[red]error:[/] {error.message}", markup=True)
        if error.details:
            err.print(error.details, markup=False)
        sys.exit(error.exit_code)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:  # a bug: say so plainly, traceback only on request
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if debug:
            raise
        err.print(f"[red]internal error:[/] {type(error).__name__}: {error} (run with --debug for the traceback)")
        sys.exit(70)
