"""Presentation: the consoles, one colour per verdict, tables, live progress of services, confirmation prompts.
Nothing here decides anything; commands hand it results."""

from __future__ import annotations

import os
import sys
from typing import Callable

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# One colour per verdict word, whichever command says it.
COLOUR = {"passed": "green", "ok": "green", "ready": "green", "failed": "red", "missing": "yellow",
          "warning": "yellow", "waiting": "yellow", "skipped": "dim"}


def _width(stream) -> int | None:
    """Piped output is read by people in logs and CI too: give tables room instead of rich's 80 columns."""
    return None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))


out = Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))


def emit_json(data) -> None:
    """What --json prints: `data` as JSON on stdout (json is imported here, not by every command's --help)."""
    import json

    out.print_json(json.dumps(data))


def verdict(word: str, text: str | None = None) -> str:
    """`text` (default: the word itself) in the colour of the verdict `word`, escaped for rich."""
    return f"[{COLOUR.get(word, 'default')}]{escape(word if text is None else text)}[/]"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def table(title: str | None, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    result = Table(title=title, title_justify="left")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*row)
    return result


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def confirm_or_refuse(question: str, refusal: str, yes: bool) -> None:
    """Go on when `yes`; ask when a person is at the terminal; otherwise refuse with `refusal` (never hang)."""
    if yes:
        return
    if not sys.stdin.isatty():
        from stackctl.core.errors import StackError

        raise StackError(refusal)
    typer.confirm(question, abort=True)


def _status_table(statuses, elapsed: float) -> Table:
    rows = [(s.service, s.state, verdict(s.phase, s.health),
             f"{elapsed:.0f}s" if s.phase != "ready" else human_duration(s.uptime_seconds), escape(s.detail[:80]))
            for s in statuses]
    return table(f"waiting for the stack ({elapsed:.0f}s)", ("service", "state", "health", "waited", "detail"), rows)


class ServiceProgress:
    """Live progress on stderr while services come up: a table redrawn in place on a terminal, otherwise (and
    with --json, whose stdout scripts read) one line per change of a service's phase. Used as a context manager;
    `update` is the callback the wait loop calls."""

    def __init__(self, plain: bool = False):
        self.plain = plain
        self.live = None
        self.last_phase: dict[str, str] = {}

    def __enter__(self) -> "ServiceProgress":
        if err.is_terminal and not self.plain:
            from rich.live import Live

            self.live = Live(_status_table([], 0), console=err, auto_refresh=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, statuses, elapsed: float) -> None:
        if self.live is not None:
            self.live.update(_status_table(statuses, elapsed), refresh=True)
            return
        for s in statuses:
            if self.last_phase.get(s.service) != s.phase:
                self.last_phase[s.service] = s.phase
                err.print(f"[{elapsed:5.0f}s] {s.service}: {s.health}" + (f" ({s.detail})" if s.detail else ""),
                          markup=False)


def event_printer(prefix: str, quiet: bool = False) -> Callable[[str], None]:
    def show(message: str) -> None:
        if not quiet:
            err.print(f"{prefix}{message}", markup=False)
    return show


def verify_table(results, title: str | None = None) -> Table:
    """One row per check of `stackctl verify`: its components, verdict, duration and what it saw."""
    return table(title, ("check", "components", "result", "time", "detail"),
                 [(escape(r.name), escape(", ".join(r.components)), verdict(r.status),
                   f"{r.duration:.1f}s" if r.status != "skipped" else "", escape(r.detail)) for r in results])


class VerifyProgress:
    """Live progress of `stackctl verify` on stderr: the results table redrawn in place on a terminal (running
    checks included), otherwise (and with --json) one line per finished check. `update` is the callback."""

    def __init__(self, plain: bool = False):
        self.plain = plain
        self.live = None
        self.shown: set[str] = set()

    def __enter__(self) -> "VerifyProgress":
        if err.is_terminal and not self.plain:
            from rich.live import Live

            self.live = Live(table(None, ("check",), []), console=err, auto_refresh=False, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, results, running: list[str], elapsed: float) -> None:
        if self.live is not None:
            rows = verify_table(results, f"stackctl verify ({elapsed:.0f}s)")
            for name in running:
                rows.add_row(escape(name), "", verdict("waiting", "running"), f"{elapsed:.0f}s", "")
            self.live.update(rows, refresh=True)
            return
        for r in results:
            if r.name not in self.shown:
                self.shown.add(r.name)
                err.print(f"[{elapsed:5.1f}s] {r.name}: {r.status}" + (f" ({r.detail})" if r.detail else ""),
                          markup=False)


def human_bytes(count: int | float) -> str:
    from stackctl.core.units import format_bytes

    return format_bytes(count)


class ByteProgress:
    """Progress of a long copy on stderr: one bar per service (bytes, rate, and the total when known) redrawn on a
    terminal; otherwise (and with --json) nothing but the event lines. `advance(service, count)` is the callback."""

    def __init__(self, totals: dict[str, int] | None = None, plain: bool = False):
        self.totals = totals or {}
        self.plain = plain
        self.progress = None
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "ByteProgress":
        if err.is_terminal and not self.plain:
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TransferSpeedColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                                     TransferSpeedColumn(), TimeElapsedColumn(), console=err, transient=True)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def advance(self, service: str, count: int) -> None:
        if self.progress is None:
            return
        if service not in self.tasks:
            self.tasks[service] = self.progress.add_task(escape(service), total=self.totals.get(service))
        self.progress.update(self.tasks[service], advance=count)

    def event(self, message: str) -> None:
        """A line about a step; printed above the bars on a terminal."""
        (self.progress.console if self.progress is not None else err).print(message, markup=False)
