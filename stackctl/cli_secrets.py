"""`stackctl secrets`: list the stack's secrets, show one value on request, rotate one.

Values reach the terminal only through `show`, on stdout alone; everything else names secrets, never values.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from stackctl.errors import StackError

secrets_app = typer.Typer(
    help="The stack's secrets: list them (never their values), show one, rotate one.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _cli():
    # Imported at call time: stackctl.cli imports this module at its end to register the sub-app.
    from stackctl import cli

    return cli


def _known_names(stack) -> list[str]:
    from stackctl import catalog
    from stackctl.secrets import user_supplied

    return sorted(set(catalog.secret_specs()) | set(user_supplied(stack)))


def _check_known(stack, name: str) -> None:
    from stackctl.schema import closest

    known = _known_names(stack)
    if name not in known:
        hint = closest(name, known)
        raise StackError(f"unknown secret {name!r}" + (f" ({hint})" if hint else "")
                         + "; 'stackctl secrets list' shows this stack's secrets")


def _age(seconds: float | None) -> str:
    from stackctl.lifecycle import human_duration

    return "-" if seconds is None else human_duration(seconds)


@secrets_app.command("list")
def list_secrets(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable list."),
) -> None:
    """Every secret the enabled services use: who reads it, where it comes from, whether it exists, its age."""
    from stackctl import rotation
    from stackctl.secrets import SecretStore, inventory

    cli = _cli()
    stack = cli._ctx(ctx).stack()
    store = SecretStore.for_stack(stack)
    rows = []
    for entry in inventory(stack, store):
        reason = rotation.refusal(stack, entry.name, store)
        rows.append((entry, reason))
    if as_json:
        cli.out.print_json(json.dumps({
            "state_dir": str(store.root),
            "secrets": [{**entry.to_json(), "rotatable": reason is None,
                         "not_rotated_because": reason} for entry, reason in rows],
        }))
        return
    table = Table(title=f"secrets of {stack.config.project} ({store.root})", title_justify="left")
    for column in ("secret", "used by", "origin", "present", "age", "rotate"):
        table.add_column(column)
    for entry, reason in rows:
        rotate = "yes" if reason is None else ("no: user-supplied" if entry.origin == "user" else
                                               "no: Kibana needs old keys" if entry.name == "kibana_encryption_key"
                                               else "no")
        present = "[green]yes[/]" if entry.present else "[red]missing[/]"
        origin = entry.origin if entry.origin == "generated" else f"user ({entry.source})"
        table.add_row(entry.name, ", ".join(entry.used_by), origin, present, _age(entry.age_seconds), rotate)
    cli.out.print(table)
    missing = [entry.name for entry, _ in rows if not entry.present and entry.origin == "generated"]
    if missing:
        cli.err.print(f"missing: {', '.join(missing)}; 'stackctl render' generates them", markup=False)
    loose = [entry.name for entry, _ in rows if entry.mode not in (None, "0600")]
    if loose:
        cli.err.print(f"[yellow]warning:[/] {', '.join(loose)} readable by others than you; chmod 600 them")


@secrets_app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The secret's name, as 'stackctl secrets list' shows it."),
) -> None:
    """Print one secret's value, alone on stdout (so that $(stackctl secrets show NAME) works)."""
    from stackctl.secrets import SecretStore, required_secrets, user_supplied

    stack = _cli()._ctx(ctx).stack()
    _check_known(stack, name)
    supplied = user_supplied(stack)
    if name in supplied:
        secret = supplied[name]
        where = f"the file {secret.path(stack.file.parent)}" if secret.from_file else \
            f"the environment variable {secret.from_env}"
        raise StackError(f"{name} is supplied by you from {where}: stackctl keeps no copy of it")
    store = SecretStore.for_stack(stack)
    if name not in required_secrets(stack) and not store.exists(name):
        raise StackError(f"{name} is not used by any service enabled in {stack.file}, and has no stored value")
    value = store.read(name)
    typer.echo(value)


def _rotation_shells(stack, bundle: Path, timeout: float, on_update):
    """The Docker and Compose shells rotation works through (tests replace this function)."""
    from stackctl import http
    from stackctl.rotation import RotationShells

    cli = _cli()
    engine = cli._engine()
    engine.client  # fail fast when the engine is down, before anything changes
    return RotationShells(engine=engine, compose=cli._compose_for(stack, bundle), probe=http.probe,
                          wait_timeout=timeout, on_update=on_update)


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
    from stackctl import rotation
    from stackctl.secrets import SecretStore

    cli = _cli()
    app_ctx = cli._ctx(ctx)
    stack = app_ctx.stack()
    _check_known(stack, name)
    plan = rotation.plan_rotation(stack, name)
    if not yes:
        if not sys.stdin.isatty():
            raise StackError("rotation changes a password in use and recreates services: pass --yes to confirm "
                             "when not running interactively")
        typer.confirm(f"Rotate {name}? This {plan.describe()}", abort=True)
    stack, _, bundle, _, _ = cli._render(app_ctx, out_dir, check_tools=False)
    last_phase: dict[str, str] = {}

    def on_update(statuses, elapsed):
        for s in statuses:
            if last_phase.get(s.service) != s.phase:
                last_phase[s.service] = s.phase
                cli.err.print(f"[{elapsed:5.0f}s] {s.service}: {s.health}" + (f" ({s.detail})" if s.detail else ""),
                              markup=False)

    shells = _rotation_shells(stack, bundle, timeout, on_update)
    result = rotation.rotate(stack, name, SecretStore.for_stack(stack), shells,
                             on_event=lambda message: cli.err.print(f"rotate: {message}", markup=False))
    if as_json:
        cli.out.print_json(json.dumps(result.to_json()))
        return
    for note in result.notes:
        cli.err.print(f"note: {note}", markup=False)
    done = "finished the interrupted rotation of" if result.finished_earlier else "rotated"
    parts = [f"{done} {name}"]
    if result.changed_in:
        parts.append(f"changed in {result.changed_in}")
    if result.recreated:
        parts.append(f"recreated {', '.join(result.recreated)}")
    if result.prepared:
        parts.append(f"prepared the stopped {', '.join(result.prepared)}")
    cli.out.print("; ".join(parts), markup=False)
