"""`stackctl up`, `down`, `status`, `logs`, `urls` and `doctor`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl.cli.context import app_context
from stackctl.cli.present import (ServiceProgress, confirm_or_refuse, emit_json, err, human_duration, out, table,
                                  verdict, warn)

OUT_OPTION = typer.Option(None, "--out", "-o", help="Bundle directory.")


def _print_statuses(statuses, as_json: bool, message: str) -> None:
    if as_json:
        emit_json({"ok": all(s.phase == "ready" for s in statuses),
                                   "services": [s.to_json() for s in statuses]})
    else:
        out.print(message)


def up(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Only these services (and what they depend on)."),
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for health before giving up."),
    out_dir: Optional[Path] = OUT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
    then_verify: bool = typer.Option(False, "--verify", help="Then run 'stackctl verify' (exit 1 when it fails)."),
) -> None:
    """Render (if changed), validate, start the stack and wait until every service is healthy."""
    from stackctl.cli.present import event_printer
    from stackctl.ops.lifecycle import bring_up

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    with ServiceProgress(plain=as_json) as progress:
        result = bring_up(stack, app_ctx.bundle_dir(out_dir), app_ctx.runtime, services or [], timeout,
                          on_progress=progress.update, on_event=event_printer(f"{stack.config.project}: ", as_json))
    for warning in result.warnings:
        warn(warning)
    if then_verify and as_json:  # one JSON document: the statuses and the verify report
        from stackctl.cli.verify import run_with_progress

        report = run_with_progress(app_ctx, out_dir, [], False, None, plain=True)
        emit_json({"ok": report.ok, "services": [s.to_json() for s in result.statuses],
                                   "verify": report.to_json()})
        if not report.ok:
            raise typer.Exit(1)
        return
    if result.noop:
        _print_statuses(result.statuses, as_json, "stack is up and unchanged; nothing to do")
    else:
        _print_statuses(result.statuses, as_json,
                        f"stack is up: {len(result.statuses)} services ready. Open them with 'stackctl urls'.")
    if stack.on_swarm and not as_json:
        err.print(swarm_ports_note(stack), markup=False)
    if then_verify:
        from stackctl.cli.verify import run_and_report

        if not run_and_report(app_ctx, out_dir, [], False, None, as_json):
            raise typer.Exit(1)


def swarm_ports_note(stack) -> str:
    """Where Swarm opens the published ports: it ignores bind_address and listens on every interface."""
    from stackctl.core.endpoints import urls as stack_urls

    ports = ", ".join(f"{row['service']} {row['url'].rsplit(':', 1)[-1]}" for row in stack_urls(stack))
    if not ports:
        return ("Swarm publishes no port of this stack (swarm.publish is empty): the services are reached on its "
                "overlay network only ('stackctl verify' reaches them through a short-lived forwarder).")
    where = ("on every interface of every node of the swarm (routing mesh)" if stack.config.swarm.endpoint_mode == "vip"
             else "on every interface of the node running each service (endpoint_mode dnsrr)")
    return f"Swarm publishes {ports} {where}; it ignores bind_address. Firewall them if the network is not trusted."


def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(False, "--volumes", help="Also delete the stack's data volumes (asks first)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deleting data."),
    out_dir: Optional[Path] = OUT_OPTION,
) -> None:
    """Stop and remove the containers (on Swarm: the stack). Data volumes are kept unless --volumes."""
    from stackctl.cli.present import event_printer
    from stackctl.ops.lifecycle import bring_down, require_bundle, stack_volumes

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    bundle = require_bundle(app_ctx.bundle_dir(out_dir))
    engine = app_ctx.runtime.engine
    engine.ping()
    elsewhere = " on this node (volumes on other nodes of the swarm stay)" if stack.on_swarm else ""
    if volumes:
        names = stack_volumes(stack, app_ctx.runtime)
        confirm_or_refuse(f"Delete {len(names)} volumes of {stack.config.project}{elsewhere} "
                          f"({', '.join(names) or 'none'})? This cannot be undone",
                          "--volumes deletes data: pass --yes to confirm when not running interactively", yes)
    removed = bring_down(stack, bundle, app_ctx.runtime, volumes=volumes,
                         on_event=event_printer(f"{stack.config.project}: "))
    if removed is None:
        out.print(f"{stack.config.project} is down" + ("; its volumes were deleted" if volumes else "; data volumes kept"))
        return
    if not volumes:
        out.print(f"{stack.config.project} is down (services, network, configs and secrets removed from the swarm); "
                  "data volumes kept")
        return
    out.print(f"{stack.config.project} is down; deleted on this node: {', '.join(removed.volumes) or 'no volume'}. "
              "Volumes on other nodes remain: remove them there with 'docker volume rm' "
              f"(their names start with {stack.config.project}_)")
    if removed.kept:
        warn("not deleted: " + ", ".join(removed.kept))


def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable status."),
) -> None:
    """One row per service: state, health, URL, uptime, image. Exit 1 if an enabled service is not healthy."""
    from stackctl.core.endpoints import urls
    from stackctl.core.readiness import READY
    from stackctl.ops.lifecycle import statuses as current

    app_ctx = app_context(ctx)
    stack = app_ctx.stack()
    if stack.on_swarm:
        from stackctl.ops.swarm import require_manager

        app_ctx.runtime.engine.ping()
        require_manager(app_ctx.runtime)
    statuses = current(stack, app_ctx.runtime)
    main_url = {row["service"]: row["url"] for row in reversed(urls(stack))}
    healthy = all(s.phase == READY for s in statuses)
    if as_json:
        rows = [{**s.to_json(), "url": main_url.get(s.service)} for s in statuses]
        emit_json({"ok": healthy, "project": stack.config.project, "services": rows})
    else:
        if stack.on_swarm:  # tasks running of those wanted, and where each task of a per-node service is
            rows = []
            for s in statuses:
                rows.append((s.service, f"{s.running}/{s.desired} {s.state}", verdict(s.phase, s.health),
                             main_url.get(s.service, ""), human_duration(s.uptime_seconds), escape(s.image)))
                rows += [(f"  on {escape(t.node)}", t.state, "", "", "", escape(t.detail)) for t in s.nodes]
            out.print(table(escape(f"{stack.config.project} on the swarm ({stack.file})"),
                            ("service", "tasks", "health", "url", "uptime", "image"), rows))
        else:
            out.print(table(escape(f"{stack.config.project} ({stack.file})"),
                            ("service", "state", "health", "url", "uptime", "image"),
                            [(s.service, s.state, verdict(s.phase, s.health), main_url.get(s.service, ""),
                              human_duration(s.uptime_seconds), escape(s.image)) for s in statuses]))
        for s in statuses:
            if s.phase != READY:
                err.print(f"[red]{s.service}[/] is {s.state}/{escape(s.health)}"
                          + (f": {escape(s.detail)}" if s.detail else ""))
    if not healthy:
        raise typer.Exit(1)


def logs(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to show (default: all)."),
    follow: bool = typer.Option(False, "--follow", "-F", help="Keep streaming new lines."),
    tail: Optional[int] = typer.Option(100, "--tail", "-n", help="Lines per service to start with."),
    out_dir: Optional[Path] = OUT_OPTION,
) -> None:
    """Show service logs (through docker compose logs)."""
    from stackctl.ops.lifecycle import show_logs

    app_ctx = app_context(ctx)
    show_logs(app_ctx.stack(), app_ctx.bundle_dir(out_dir), app_ctx.runtime, services or [], follow, tail)


def urls(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable list."),
) -> None:
    """Where to open each UI, and the OTLP endpoints to point your apps at."""
    from stackctl.core.endpoints import urls as stack_urls

    stack = app_context(ctx).stack()
    rows = stack_urls(stack)
    if as_json:
        emit_json(rows)
        return
    out.print(table(None, ("service", "what", "address"),
                    [(row["service"], escape(row["description"]), row["url"]) for row in rows]))
    if stack.on_swarm:
        err.print(swarm_ports_note(stack), markup=False)


def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable results."),
) -> None:
    """Preflight checks before 'up', each with a fix hint. Exit 1 if any check failed."""
    from stackctl.ops.doctor import FAIL, HostFacts, run_checks

    app_ctx = app_context(ctx)
    runtime = app_ctx.runtime
    checks = run_checks(app_ctx.stack(), HostFacts(engine=runtime.engine, compose=runtime.compose_tool))
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        emit_json({"ok": not failed, "checks": [c.to_json() for c in checks]})
    else:
        out.print(table("stackctl doctor", ("check", "result", "found", "fix"),
                        [(escape(c.name), verdict(c.status), escape(c.found), escape(c.fix)) for c in checks]))
    if failed:
        raise typer.Exit(1)
