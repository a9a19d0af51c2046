"""What `stackctl verify` shows, word for word: the results table (title, headers, cells), the live progress on
stderr (a redrawn table on a terminal, one line per finished check otherwise and always with --json), the lines
naming failed checks and named checks that did not run, the closing counts, the JSON and the exit code; and what
the command hands to the verify operation (bundle, checks, --deep, --timeout). The operation is scripted: the CLI
only presents its report. Also the hour-and-minute boundary of human_duration."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from stackctl.cli import present
from stackctl.cli.present import human_duration
from stackctl.core.verify import VerifyReport, VerifyResult
from stackctl.ops import verify as verify_ops
from stackctl.ops.context import Runtime
from tests.fakes.compose import FakeEngine

PASSED = VerifyResult("ready:prometheus", "Ready", ("prometheus",), "passed", "answers [ready]", 0.25)
FAILED = VerifyResult("scrape:all", "Scrape", ("prometheus", "node-exporter"), "failed",
                      "not scraped: node [exporter]", 1.04, "stackctl logs prometheus")
NAMED_SKIP = VerifyResult("alerts:delivery", "Delivery", ("alertmanager",), "skipped", "runs with --deep", 0.5)
SKIPPED = VerifyResult("traces", "Traces", ("jaeger",), "skipped", "Jaeger is not enabled")
QUIET = VerifyResult("logs", "Logs", ("logstash",), "passed", "", 0.3)  # passed with nothing to say
RESULTS = (PASSED, FAILED, NAMED_SKIP, SKIPPED)


def cells(table) -> list[tuple[str, ...]]:
    """The rows of a rich Table as the markup strings of their cells."""
    return [tuple(str(cell) for cell in row) for row in zip(*(list(column.cells) for column in table.columns))]


@pytest.mark.parametrize("seconds,text", [(3660, "1h01m"), (5400, "1h30m"), (7140, "1h59m"), (86340, "23h59m")])
def test_human_duration_counts_minutes_of_sixty_seconds_within_the_hour(seconds, text):
    assert human_duration(seconds) == text


def test_verify_table_has_one_row_per_check_and_no_time_for_a_skipped_one():
    table = present.verify_table(RESULTS, "stackctl verify of shop")
    assert table.title == "stackctl verify of shop"
    assert [c.header for c in table.columns] == ["check", "components", "result", "time", "detail"]
    assert cells(table) == [
        ("ready:prometheus", "prometheus", "[green]passed[/]", "0.2s", "answers \\[ready]"),
        ("scrape:all", "prometheus, node-exporter", "[red]failed[/]", "1.0s", "not scraped: node \\[exporter]"),
        ("alerts:delivery", "alertmanager", "[dim]skipped[/]", "", "runs with --deep"),
        ("traces", "jaeger", "[dim]skipped[/]", "", "Jaeger is not enabled"),
    ]


# --- live progress -----------------------------------------------------------------------------------------------


@pytest.fixture
def stderr_console(request, monkeypatch) -> io.StringIO:
    """present.err replaced by a console writing into the returned buffer; a terminal when the test's
    `terminal` parameter says so."""
    buffer = io.StringIO()
    terminal = getattr(request, "param", False)
    monkeypatch.setattr(present, "err", Console(file=buffer, force_terminal=terminal, width=120, highlight=False,
                                                soft_wrap=True, color_system=None))
    return buffer


LINES = ("[  1.2s] ready:prometheus: passed (answers [ready])\n"
         "[  1.5s] scrape:all: failed (not scraped: node [exporter])\n"
         "[  2.0s] traces: skipped (Jaeger is not enabled)\n"
         "[  2.0s] logs: passed\n")


def show_progress(progress: present.VerifyProgress) -> None:
    with progress:
        progress.update([PASSED], ["scrape:all"], 1.2)
        progress.update([PASSED, FAILED], [], 1.5)
        progress.update([PASSED, FAILED, SKIPPED, QUIET], [], 2.0)


@pytest.mark.parametrize("stderr_console,plain", [(False, False), (False, True), (True, True)],
                         indirect=["stderr_console"], ids=["no-terminal", "no-terminal-plain", "terminal-plain"])
def test_progress_prints_one_line_per_finished_check_without_a_terminal_or_when_plain(stderr_console, plain):
    show_progress(present.VerifyProgress(plain=plain))
    assert stderr_console.getvalue() == LINES


@pytest.mark.parametrize("stderr_console", [True], indirect=True)
def test_progress_on_a_terminal_redraws_the_table_with_the_running_checks(stderr_console):
    progress = present.VerifyProgress()  # not plain unless asked
    with progress:
        progress.update([PASSED], ["scrape:all"], 1.2)
        drawn = stderr_console.getvalue()
    assert "stackctl verify (1s)" in drawn and "running" in drawn and "answers [ready]" in drawn
    assert "[  1.2s]" not in drawn and "ready:prometheus: passed" not in drawn


# --- the verify command ------------------------------------------------------------------------------------------


@pytest.fixture
def scripted(monkeypatch) -> list[dict]:
    """The verify operation replaced by one reporting RESULTS (alerts:delivery named with --only); what it was
    asked, one dict per run."""
    asked: list[dict] = []

    def run(stack, runtime, bundle, *, only=(), deep=False, timeout=None, on_update=None):
        asked.append({"bundle": bundle, "only": list(only), "deep": deep, "timeout": timeout})
        if on_update is not None:
            on_update([PASSED, FAILED], ["alerts:delivery"], 1.5)
            on_update(list(RESULTS), [], 2.0)
        return VerifyReport("abcdef123456", deep, RESULTS, 3.14159, frozenset({"alerts:delivery"}))

    monkeypatch.setattr(verify_ops, "verify", run)
    return asked


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    file = tmp_path / "stack.yaml"
    file.write_text("project: shop\npreset: metrics\n")
    return file


def test_verify_hands_the_bundle_checks_deep_and_timeout_to_the_operation(stack_file, cli, scripted):
    bundle = stack_file.parent / "elsewhere"
    result = cli("-f", stack_file, "verify", "--only", "ready", "--only", "alerts:delivery", "--deep",
                 "--timeout", "7", "--out", bundle, "--json", runtime=Runtime(engine=FakeEngine()))
    assert result.code == 1
    assert scripted == [{"bundle": bundle, "only": ["ready", "alerts:delivery"], "deep": True, "timeout": 7.0}]
    assert json.loads(result.stdout)["deep"] is True


def test_verify_report_for_people(stack_file, cli, scripted, monkeypatch):
    printed: list = []
    original = present.out.print
    monkeypatch.setattr(present.out, "print", lambda *objects, **kwargs: (printed.extend(objects),
                                                                            original(*objects, **kwargs)))
    result = cli("-f", stack_file, "verify", runtime=Runtime(engine=FakeEngine()))
    assert result.code == 1
    assert scripted == [{"bundle": stack_file.parent / "build", "only": [], "deep": False, "timeout": None}]
    table, summary = printed
    assert table.title == "stackctl verify of shop (run abcdef123456)"
    assert cells(table) == cells(present.verify_table(RESULTS))
    assert summary == "1 passed, 1 failed, 2 skipped in 3.1s"
    assert result.stdout.endswith("\n1 passed, 1 failed, 2 skipped in 3.1s\n")
    assert result.stderr == (
        "[  1.5s] ready:prometheus: passed (answers [ready])\n"
        "[  1.5s] scrape:all: failed (not scraped: node [exporter])\n"
        "[  2.0s] alerts:delivery: skipped (runs with --deep)\n"
        "[  2.0s] traces: skipped (Jaeger is not enabled)\n"
        "scrape:all failed (prometheus, node-exporter): not scraped: node [exporter]\n"
        "  look: stackctl logs prometheus\n"
        "alerts:delivery did not run: runs with --deep\n")


@pytest.mark.parametrize("stderr_console", [True], indirect=True)
def test_verify_json_keeps_progress_to_plain_lines_even_on_a_terminal(stack_file, cli, scripted, stderr_console):
    result = cli("-f", stack_file, "verify", "--json", runtime=Runtime(engine=FakeEngine()))
    assert result.code == 1
    report = VerifyReport("abcdef123456", False, RESULTS, 3.14159, frozenset({"alerts:delivery"}))
    assert json.loads(result.stdout) == report.to_json()
    assert stderr_console.getvalue() == (
        "[  1.5s] ready:prometheus: passed (answers [ready])\n"
        "[  1.5s] scrape:all: failed (not scraped: node [exporter])\n"
        "[  2.0s] alerts:delivery: skipped (runs with --deep)\n"
        "[  2.0s] traces: skipped (Jaeger is not enabled)\n")
