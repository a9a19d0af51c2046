"""The command line: one module per command group (stack, lifecycle, secrets, verify, backup), the context, the
presentation.
Commands parse options, call stackctl.ops, and present results. Errors become exit codes here, in main()."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl import __version__
from stackctl.cli import backup, lifecycle, stack, verify
from stackctl.cli.context import AppContext
from stackctl.cli.present import err, out
from stackctl.cli.secrets import secrets_app
from stackctl.core.errors import StackError

app = typer.Typer(
    name="stackctl",
    help="One stack.yaml to a running, provisioned monitoring stack: Prometheus, Alertmanager, Grafana, "
         "Elasticsearch/Logstash/Kibana, Jaeger and the OpenTelemetry collector on Docker Compose.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


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
    from stackctl.ops.stack import locate

    # main(runtime=...) hands the shells to use (tests pass fakes); by default the context builds the real ones.
    ctx.obj = AppContext(file=locate(str(file) if file else None), sets=list(set_),
                         debug=debug or bool(os.environ.get("STACKCTL_DEBUG")), _runtime=ctx.obj)


for command in (stack.init, stack.render, stack.validate, lifecycle.up, lifecycle.down, lifecycle.status,
                lifecycle.logs, lifecycle.urls, lifecycle.doctor, verify.verify, backup.restore):
    app.command()(command)
app.add_typer(secrets_app, name="secrets")
app.add_typer(backup.backup_app, name="backup")


def main(runtime=None) -> None:
    """Console entry point: one error type in, one message and exit code out. `runtime` (a
    stackctl.ops.context.Runtime) replaces the real shells, for tests."""
    debug = "--debug" in sys.argv or bool(os.environ.get("STACKCTL_DEBUG"))
    try:
        # Without standalone mode click returns a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False, obj=runtime)
        if isinstance(code, int) and code:
            sys.exit(code)
    except StackError as error:
        err.print(f"[red]error:[/] {escape(error.message)}")
        if error.details:
            err.print(error.details, markup=False)
        sys.exit(error.exit_code)
    except (typer.Exit, typer.Abort, KeyboardInterrupt) as stop:
        if isinstance(stop, typer.Exit):
            sys.exit(stop.exit_code)
        err.print("aborted" if isinstance(stop, typer.Abort) else "interrupted")
        sys.exit(130)
    except Exception as error:  # usage errors (typer's own click copy), else a bug
        if hasattr(error, "show") and hasattr(error, "exit_code"):  # a click UsageError / ClickException
            error.show()
            sys.exit(error.exit_code)
        if debug:
            raise
        err.print(f"[red]internal error:[/] {escape(f'{type(error).__name__}: {error}')} "
                  "(run with --debug for the traceback)")
        sys.exit(70)
