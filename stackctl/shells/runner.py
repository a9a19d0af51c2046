"""The one place stackctl starts other programs. Errors carry the argv, the exit code and the tail of stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stackctl.core.errors import StackError


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return "\n".join(part.strip("\n") for part in (self.stdout, self.stderr) if part.strip())


class ToolError(StackError):
    def __init__(self, message: str, result: Completed):
        tail = "\n".join(result.output.splitlines()[-30:])
        super().__init__(message, details=f"$ {' '.join(result.argv)}\n(exit {result.returncode})\n{tail}")
        self.result = result


def which(name: str) -> str | None:
    return shutil.which(name)


def run(argv: list[str] | tuple[str, ...], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float | None = 300, check: bool = False, capture: bool = True, what: str = "") -> Completed:
    """Run a program; with check=True a non-zero exit raises ToolError naming `what`."""
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=full_env, timeout=timeout, text=True,
                              capture_output=capture, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise StackError(f"{argv[0]} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise StackError(f"{what or argv[0]} did not finish within {timeout:.0f}s",
                         details="$ " + " ".join(argv)) from None
    result = Completed(tuple(argv), proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not result.ok:
        raise ToolError(f"{what or argv[0]} failed", result)
    return result
