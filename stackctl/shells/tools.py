"""The real validators (promtool, amtool, ...) run on rendered files: each run becomes a CheckResult saying
whether it passed and which tool version checked (it may be older than the image that will read the file)."""

from __future__ import annotations

import re
from functools import lru_cache

from stackctl.core.checks import FAILED, MISSING, PASSED, CheckResult
from stackctl.shells import runner


def parse_tool_version(text: str) -> str:
    """'promtool, version 2.42.0+ds (branch...)' -> '2.42.0'."""
    match = re.search(r"version\s+v?(\d+\.\d+\.\d+)", text)
    return match.group(1) if match else "unknown version"


@lru_cache(maxsize=None)
def _version_of(path: str) -> str:
    return parse_tool_version(runner.run([path, "--version"], timeout=30).output)


def run_check(name: str, tool: str, argv: list[str], note: str = "", timeout: float = 120) -> CheckResult:
    """Run one validator; `missing` (not failed) when the tool is not installed."""
    path = runner.which(tool)
    if not path:
        return CheckResult(name, MISSING, tool, f"{tool} is not on PATH; this check did not run")
    version = f"{tool} {_version_of(path)}{note}"
    result = runner.run(argv, timeout=timeout)
    if result.ok:
        return CheckResult(name, PASSED, version, result.output.splitlines()[-1] if result.output else "")
    return CheckResult(name, FAILED, version, result.output)
