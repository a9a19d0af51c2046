"""`stackctl verify`: end-to-end checks of the running stack, a table for people and JSON for scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from stackctl.cli.context import app_context
from stackctl.cli.present import VerifyProgress, emit_json, err, out, verify_table

OUT_OPTION = typer.Option(None, "--out", "-o", help="Bundle directory the stack was started from.")


def run_with_progress(app_ctx, out_dir: Path | None, only: list[str], deep: bool, timeout: float | None,
                      plain: bool):
    """Run verify with live progress on stderr; the report."""
    from stackctl.ops.verify import verify as run_verify

    with VerifyProgress(plain=plain) as progress:
        return run_verify(app_ctx.stack(), app_ctx.runtime, app_ctx.bundle_dir(out_dir), only=only, deep=deep,
                          timeout=timeout, on_update=progress.update)


def run_and_report(app_ctx, out_dir: Path | None, only: list[str], deep: bool, timeout: float | None,
                   as_json: bool) -> bool:
    """Run verify with live progress and print the report; True when it passed."""
    stack = app_ctx.stack()
    report = run_with_progress(app_ctx, out_dir, only, deep, timeout, plain=as_json)
    if as_json:
        emit_json(report.to_json())
        return report.ok
    out.print(verify_table(report.results, escape(f"stackctl verify of {stack.config.project} (run {report.run_id})")))
    failed = [r for r in report.results if r.status == "failed"]
    for r in failed:
        err.print(f"[red]{escape(r.name)}[/] failed ({escape(', '.join(r.components))}): {escape(r.detail)}\n"
                  f"  look: {escape(r.look)}")
    for r in report.results:
        if r.status == "skipped" and r.name in report.explicit:
            err.print(f"[yellow]{escape(r.name)}[/] did not run: {escape(r.detail)}")
    passed = sum(r.status == "passed" for r in report.results)
    skipped = sum(r.status == "skipped" for r in report.results)
    out.print(f"{passed} passed, {len(failed)} failed, {skipped} skipped in {report.duration:.1f}s")
    return report.ok


def verify(
    ctx: typer.Context,
    only: list[str] = typer.Option([], "--only", help="Only this check, or group of checks (ready, scrape, metrics, "
                                                      "alerts, traces, logs, grafana, kibana). Repeatable."),
    deep: bool = typer.Option(False, "--deep", help="Also prove delivery: Alertmanager notifies verify's own webhook, "
                                                    "and a verification rule fires and is delivered."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Overall deadline in seconds "
                                                                    "(default: verify.timeout in stack.yaml, 60s)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable results."),
    out_dir: Optional[Path] = OUT_OPTION,
) -> None:
    """Prove the running stack works end to end: readiness, scraping, rules, metrics, alerts, traces, logs,
    Grafana and Kibana, with synthetic data that pages nobody and is cleaned up. Exit 1 when a check fails."""
    if not run_and_report(app_context(ctx), out_dir, only, deep, timeout, as_json):
        raise typer.Exit(1)
