"""Presentation helpers: durations, widths, tables, the live progress lines and confirmation."""

from __future__ import annotations

import io

import pytest

from stackctl.cli import present
from stackctl.cli.present import human_duration
from stackctl.core.errors import StackError
from stackctl.core.readiness import ServiceStatus


@pytest.mark.parametrize("seconds,text", [
    (None, "-"), (0, "0s"), (5, "5s"), (59.9, "59s"), (60, "1m00s"), (65, "1m05s"), (3599, "59m59s"),
    (3600, "1h00m"), (3700, "1h01m"), (7199, "1h59m"), (86399, "23h59m"), (86400, "1d0h"), (90000, "1d1h"),
    (3 * 86400 + 7200 + 59, "3d2h"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_piped_output_gets_wide_tables(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert present._width(Stream(tty=True)) is None
    assert present._width(Stream(tty=False)) == 160
    monkeypatch.setenv("COLUMNS", "200")
    assert present._width(Stream(tty=False)) == 200


def test_verdicts_and_tables_escape_what_they_show():
    assert present.verdict("failed") == "[red]failed[/]"
    assert present.verdict("ready", "probe [ok]") == "[green]probe \\[ok][/]"
    assert present.verdict("something-else") == "[default]something-else[/]"
    table = present.table("title", ("a", "b"), [("1", "2")])
    assert [c.header for c in table.columns] == ["a", "b"] and table.row_count == 1 and table.title == "title"


def status(service: str, phase: str, health: str, detail: str = "") -> ServiceStatus:
    return ServiceStatus(service, phase, "running", health, detail)


def test_progress_without_a_terminal_prints_one_line_per_change(monkeypatch):
    printed = []
    monkeypatch.setattr(present.err, "print", lambda text, **kwargs: printed.append(text))
    with present.ServiceProgress(plain=True) as progress:
        progress.update([status("a", "waiting", "starting"), status("b", "waiting", "starting")], 1.2)
        progress.update([status("a", "waiting", "starting"), status("b", "ready", "healthy")], 3.7)
        progress.update([status("a", "failed", "unhealthy", "refused"), status("b", "ready", "healthy")], 12)
    assert printed == ["[    1s] a: starting", "[    1s] b: starting", "[    4s] b: healthy",
                       "[   12s] a: unhealthy (refused)"]


def test_confirmation_is_refused_without_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", Stream(tty=False))
    with pytest.raises(StackError, match="pass --yes"):
        present.confirm_or_refuse("Delete?", "pass --yes to delete", yes=False)
    present.confirm_or_refuse("Delete?", "pass --yes to delete", yes=True)  # no question asked
    asked = []
    monkeypatch.setattr("sys.stdin", Stream(tty=True))
    monkeypatch.setattr(present.typer, "confirm", lambda question, abort: asked.append((question, abort)))
    present.confirm_or_refuse("Delete?", "pass --yes", yes=False)
    assert asked == [("Delete?", True)]


def test_event_lines():
    printed = []
    show = present.event_printer("rotate: ")
    original = present.err.print
    try:
        present.err.print = lambda text, **kwargs: printed.append(text)
        show("changing it")
        present.event_printer("x: ", quiet=True)("hidden")
    finally:
        present.err.print = original
    assert printed == ["rotate: changing it"]
