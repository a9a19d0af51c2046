"""Presentation helpers."""

from __future__ import annotations

import pytest

from stackctl.cli.present import human_duration


@pytest.mark.parametrize("seconds,text", [(None, "-"), (5, "5s"), (65, "1m05s"), (3700, "1h01m"), (90000, "1d1h")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text
