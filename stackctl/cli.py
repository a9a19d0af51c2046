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
from rich.markup import escape
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

# One colour per verdict word, whichever command says it.
COLOUR = {"passed": "green", "ok": "green", "ready": "green", "failed": "red", "missing": "yellow",
          "warning": "yellow", "waiting": "yellow", "skipped": "dim"}


def _width(stream) -> int | None:
    """Piped output is read by people in logs and CI too: give tables room instead of rich's 80 columns."""
    return None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))


out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))


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
    bundle = app_ctx.bundle_dir(out_dir)
    plan = render_bundle(stack, bundle)
    failed = [c for c in structural_checks(stack, plan) if c.status == "failed"]
    if failed:
        raise StackError("the rendered bundle is inconsistent (a bug in stackctl's templates)",
                         details="\n".join(c.message for c in failed))
    created = SecretStore.for_stack(stack).ensure(stack)
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
        for r in results:
            table.add_row(escape(r.name), f"[{COLOUR[r.status]}]{r.status}[/]", escape(r.tool))
        out.print(table)
        for r in results:
            if r.status in ("failed", "missing") and r.message:
                (err if r.status == "failed" else out).print(f"[bold]{r.name}[/]: {r.message}")
    if failed:
        raise typer.Exit(1)


# --- lifecycle ------------------------------------------------------------------------------------------------


def _engine():
    from stackctl.docker_engine import DockerEngine

    return DockerEngine()


def _compose_for(stack, bundle: Path):
    from stackctl.compose import Compose
    from stackctl.secrets import SecretStore

    return Compose(bundle, stack.config.project, env=SecretStore.for_stack(stack).compose_env(stack))


def _service_names(stack, names: list[str]) -> list[str]:
    """Compose names for the services the user named (stack.yaml key or compose name), checked."""
    from stackctl import catalog
    from stackctl.schema import closest

    result = []
    for name in names:
        try:
            spec = catalog.spec_for(name)
        except KeyError:
            hint = closest(name, [s.name for s in catalog.CATALOG])
            raise StackError(f"unknown service {name!r}" + (f" ({hint})" if hint else "")) from None
        if spec.key not in stack.services:
            raise StackError(f"{spec.name} is not enabled in {stack.file}")
        result.append(spec.name)
    return result


def _image_checks(stack, engine):
    from stackctl.doctor import image_checks

    return image_checks(stack, engine)


def _status_table(statuses, elapsed: float | None = None) -> Table:
    from stackctl.lifecycle import human_duration

    title = f"waiting for the stack ({elapsed:.0f}s)" if elapsed is not None else None
    table = Table(title=title, title_justify="left")
    for column in ("service", "state", "health", "waited" if elapsed is not None else "uptime", "detail"):
        table.add_column(column)
    for s in statuses:
        when = f"{elapsed:.0f}s" if elapsed is not None and s.phase != "ready" else human_duration(s.uptime_seconds)
        table.add_row(s.service, s.state, f"[{COLOUR[s.phase]}]{escape(s.health)}[/]", when, escape(s.detail[:80]))
    return table


def _explain_failure(engine, statuses, tail: int = 30) -> str:
    lines = []
    for s in statuses:
        if s.phase == "ready":
            continue
        lines.append(f"--- {s.service}: {s.state}, {s.health}" + (f" ({s.detail})" if s.detail else ""))
        outputs = [o for o in s.health_output if o]
        if outputs:
            lines.append(f"last healthcheck output of {s.service}:")
            lines.extend(f"  {line}" for output in outputs for line in output.splitlines()[-5:])
        if s.container_id:
            lines.append(f"last {tail} log lines of {s.service}:")
            lines.append(engine.logs(s.container_id, tail=tail).rstrip() or "(no output)")
    return "\n".join(lines)


@app.command()
def up(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Only these services (and what they depend on)."),
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for health before giving up."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
) -> None:
    """Render (if changed), validate, start the stack and wait until every service is healthy."""
    from rich.live import Live

    from stackctl import http, lifecycle
    from stackctl.validate import tool_checks

    app_ctx = _ctx(ctx)
    stack, plan, bundle, result, created = _render(app_ctx, out_dir, check_tools=True)
    names = _service_names(stack, services or [])
    engine = _engine()
    engine.client  # fail fast, before compose, when the engine is down
    compose = _compose_for(stack, bundle)
    changed = bool(result.written or result.removed)
    only = set(names) if names else None
    if not changed:
        statuses = lifecycle.current_status(stack, engine.containers(stack.config.project), http.probe, only)
        if all(s.phase == lifecycle.READY for s in statuses):
            _print_statuses(statuses, as_json, "stack is up and unchanged; nothing to do")
            return
    missing = [c for c in _image_checks(stack, engine) if c.status != "ok"]
    if missing:
        raise StackError("images are missing and cannot be pulled; nothing was started",
                         details="\n".join(f"{c.name}: {c.found}\n  fix: {c.fix}" for c in missing))
    failed = [c for c in tool_checks(stack, bundle, compose.env) if c.status == "failed"]
    if failed:
        raise StackError("the bundle did not validate; nothing was started",
                         details="\n".join(f"{c.name} ({c.tool}):\n{c.message}" for c in failed))
    if not as_json:
        err.print(f"starting {stack.config.project}: " + ", ".join(names or [s.name for s in stack.services.values()]))
    compose.run(compose.up_argv(names), what="docker compose up", timeout=max(timeout, 600))
    last_phase: dict[str, str] = {}

    def report_changes(statuses, elapsed):  # for logs and CI: one line per service state change
        for s in statuses:
            if last_phase.get(s.service) != s.phase:
                last_phase[s.service] = s.phase
                err.print(f"[{elapsed:5.0f}s] {s.service}: {s.health}" + (f" ({escape(s.detail)})" if s.detail else ""))

    def wait(on_update):
        return lifecycle.wait_until_ready(stack, lambda: engine.containers(stack.config.project), http.probe,
                                          timeout, on_update, only=only)

    if err.is_terminal and not as_json:
        with Live(_status_table([], 0), console=err, auto_refresh=False) as live:
            ok, statuses = wait(lambda st, el: live.update(_status_table(st, el), refresh=True))
    else:
        ok, statuses = wait(report_changes)
    if not ok:
        timed_out = not any(s.phase == lifecycle.FAILED for s in statuses)
        bad = [s.service for s in statuses if s.phase != lifecycle.READY]
        message = (f"timed out after {timeout:.0f}s waiting for " if timed_out else "not healthy: ") + ", ".join(bad)
        raise StackError(message, details=_explain_failure(engine, statuses), exit_code=1)
    if stack.enabled("kibana") and not only:
        _ensure_kibana_data_view(stack)
    _print_statuses(statuses, as_json, f"stack is up: {len(statuses)} services ready. Open them with 'stackctl urls'.")


def _ensure_kibana_data_view(stack) -> None:
    """Kibana is up only after the setup job ran, so its logs data view is made here (idempotent: fixed id)."""
    from stackctl import http
    from stackctl.lifecycle import host_url
    from stackctl.secrets import SecretStore

    try:
        http.kibana_ensure_data_view(host_url(stack, "kibana"), "elastic",
                                     SecretStore.for_stack(stack).read("elastic_password"))
    except StackError as error:  # Kibana reports healthy while degraded: warn, the stack itself is up
        err.print(f"[yellow]warning:[/] could not create the Kibana data view for logs-*: {escape(error.message)}")


def _print_statuses(statuses, as_json: bool, message: str) -> None:
    if as_json:
        out.print_json(json.dumps({"ok": all(s.phase == "ready" for s in statuses),
                                   "services": [s.to_json() for s in statuses]}))
    else:
        out.print(message)


@app.command()
def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", help="Also delete the stack's data volumes (asks first)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deleting data."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory."),
) -> None:
    """Stop and remove the containers. Data volumes are kept unless --volumes."""
    app_ctx = _ctx(ctx)
    stack = app_ctx.stack()
    bundle = app_ctx.bundle_dir(out_dir)
    if not (bundle / "compose.yaml").exists():
        raise StackError(f"no bundle in {bundle}: nothing was started from here (run 'stackctl up' first)")
    engine = _engine()
    engine.client
    if volumes:
        names = engine.volumes(stack.config.project)
        if not yes:
            if not sys.stdin.isatty():
                raise StackError("--volumes deletes data: pass --yes to confirm when not running interactively")
            typer.confirm(f"Delete {len(names)} volumes of {stack.config.project} ({', '.join(names) or 'none'})? "
                          "This cannot be undone", abort=True)
    compose = _compose_for(stack, bundle)
    compose.run(compose.down_argv(volumes=volumes), what="docker compose down")
    out.print(f"{stack.config.project} is down" + ("; its volumes were deleted" if volumes else "; data volumes kept"))


@app.command()
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable status."),
) -> None:
    """One row per service: state, health, URL, uptime, image. Exit 1 if an enabled service is not healthy."""
    from stackctl import http, lifecycle

    stack = _ctx(ctx).stack()
    engine = _engine()
    statuses = lifecycle.current_status(stack, engine.containers(stack.config.project), http.probe)
    main_url = {row["service"]: row["url"] for row in reversed(lifecycle.urls(stack))}
    healthy = all(s.phase == lifecycle.READY for s in statuses)
    if as_json:
        rows = [{**s.to_json(), "url": main_url.get(s.service)} for s in statuses]
        out.print_json(json.dumps({"ok": healthy, "project": stack.config.project, "services": rows}))
    else:
        table = Table(title=f"{stack.config.project} ({stack.file})", title_justify="left")
        for column in ("service", "state", "health", "url", "uptime", "image"):
            table.add_column(column)
        for s in statuses:
            table.add_row(s.service, s.state, f"[{COLOUR[s.phase]}]{s.health}[/]", main_url.get(s.service, ""),
                          lifecycle.human_duration(s.uptime_seconds), s.image)
        out.print(table)
        for s in statuses:
            if s.phase != lifecycle.READY:
                err.print(f"[red]{s.service}[/] is {s.state}/{s.health}" + (f": {escape(s.detail)}" if s.detail else ""))
    if not healthy:
        raise typer.Exit(1)


@app.command()
def logs(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to show (default: all)."),
    follow: bool = typer.Option(False, "--follow", "-F", help="Keep streaming new lines."),
    tail: Optional[int] = typer.Option(100, "--tail", "-n", help="Lines per service to start with."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory."),
) -> None:
    """Show service logs (through docker compose logs)."""
    app_ctx = _ctx(ctx)
    stack = app_ctx.stack()
    names = _service_names(stack, services or [])
    bundle = app_ctx.bundle_dir(out_dir)
    if not (bundle / "compose.yaml").exists():
        raise StackError(f"no bundle in {bundle}: run 'stackctl up' first")
    _engine().client
    compose = _compose_for(stack, bundle)
    compose.run(compose.logs_argv(names, follow=follow, tail=tail), what="docker compose logs",
                timeout=None, capture=False)


@app.command()
def urls(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable list."),
) -> None:
    """Where to open each UI, and the OTLP endpoints to point your apps at."""
    from stackctl import lifecycle

    rows = lifecycle.urls(_ctx(ctx).stack())
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(show_header=True)
    for column in ("service", "what", "address"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["service"], row["description"], row["url"])
    out.print(table)


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable results."),
) -> None:
    """Preflight checks before 'up', each with a fix hint. Exit 1 if any check failed."""
    from stackctl.compose import find_compose
    from stackctl.doctor import FAIL, HostFacts, run_checks

    stack = _ctx(ctx).stack()
    checks = run_checks(stack, HostFacts(engine=_engine(), compose=find_compose))
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        out.print_json(json.dumps({"ok": not failed, "checks": [c.to_json() for c in checks]}))
    else:
        table = Table(title="stackctl doctor", title_justify="left")
        for column in ("check", "result", "found", "fix"):
            table.add_column(column)
        for c in checks:
            table.add_row(escape(c.name), f"[{COLOUR[c.status]}]{c.status}[/]", escape(c.found), escape(c.fix))
        out.print(table)
    if failed:
        raise typer.Exit(1)


from stackctl.cli_secrets import secrets_app  # noqa: E402  (a sub-app registered after the commands)
app.add_typer(secrets_app, name="secrets")


def main() -> None:
    """Console entry point: one error type in, one message and exit code out."""
    debug = "--debug" in sys.argv or bool(os.environ.get("STACKCTL_DEBUG"))
    try:
        # Without standalone mode click returns a command's typer.Exit code instead of exiting.
        code = app(standalone_mode=False)
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
