"""The one place stackctl starts programs: results, errors naming the program, the tail of its output."""

from __future__ import annotations

import sys

import pytest

from stackctl.core.errors import StackError
from stackctl.shells.runner import Completed, ToolError, run


def test_a_run_returns_what_the_program_said():
    result = run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (result.returncode, result.stdout, result.stderr, result.ok) == (3, "out\n", "err\n", False)
    assert result.output == "out\nerr"
    assert run([sys.executable, "-c", "pass"]).ok


def test_a_failed_checked_run_names_the_program_and_shows_the_last_30_lines():
    lines = "\n".join(f"line {i}" for i in range(1, 41))
    argv = [sys.executable, "-c", f"import sys; sys.stderr.write({lines!r}); sys.exit(2)"]
    with pytest.raises(ToolError) as caught:
        run(argv, check=True, what="the tool")
    error = caught.value
    assert error.message == "the tool failed" and error.exit_code == 2 and error.result.returncode == 2
    assert error.details == f"$ {' '.join(argv)}\n(exit 2)\n" + "\n".join(f"line {i}" for i in range(11, 41))


def test_environment_additions_and_missing_programs_and_timeouts(tmp_path):
    result = run([sys.executable, "-c", "import os; print(os.environ['EXTRA'])"], env={"EXTRA": "yes"}, cwd=tmp_path)
    assert result.stdout == "yes\n"
    with pytest.raises(StackError, match="no-such-program-here is not installed or not on PATH"):
        run(["no-such-program-here"])
    with pytest.raises(StackError, match=r"the sleeper did not finish within 1s"):
        run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=1, what="the sleeper")


def test_completed_output_joins_only_what_is_there():
    assert Completed(("x",), 0, "", "e").output == "e"
    assert Completed(("x",), 0, "o", "").output == "o"


def test_programs_run_together_to_the_terminal_and_a_failure_names_them(tmp_path, capfd):
    import sys

    from stackctl.core.errors import StackError
    from stackctl.shells.runner import run_together

    script = "import sys, time; time.sleep(float(sys.argv[1])); print(sys.argv[2]); sys.exit(int(sys.argv[3]))"
    run_together([[sys.executable, "-c", script, "0.3", "slow", "0"], [sys.executable, "-c", script, "0", "fast", "0"]])
    assert capfd.readouterr().out.split() == ["fast", "slow"]  # side by side, not one after the other
    with pytest.raises(StackError) as raised:
        run_together([[sys.executable, "-c", script, "0", "a", "0"], [sys.executable, "-c", script, "0", "b", "3"]],
                     what="docker service logs")
    assert raised.value.message == "docker service logs failed" and raised.value.details.endswith(" b 3")
    with pytest.raises(StackError, match="is not installed"):
        run_together([["stackctl-no-such-program"]])
