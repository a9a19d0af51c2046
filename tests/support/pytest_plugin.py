"""pytest plugin (loaded from pyproject's addopts): where the environment promises everything, nothing skips.

With STACKCTL_REQUIRE_ALL=1 (set by .ci/run when a Docker engine answers), a test marked docker, tools or
process that skips is reported as a failure instead: a missing tool or engine must not pass silently.
"""

from __future__ import annotations

import os

import pytest

STRICT_MARKERS = ("docker", "tools", "process")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("STACKCTL_REQUIRE_ALL") != "1" or not report.skipped:
        return
    marker = next((m for m in STRICT_MARKERS if item.get_closest_marker(m)), None)
    if marker is None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{marker} test skipped where STACKCTL_REQUIRE_ALL=1 demands it run: {reason}"
