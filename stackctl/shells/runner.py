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


def run_together(argvs: list[list[str]], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 what: str = "") -> None:
    """Run programs at the same time with the terminal as their output (`docker service logs --follow` of several
    services) until all end; an interrupt stops them all. A non-zero exit raises StackError naming `what`."""
    full_env = {**os.environ, **(env or {})}
    processes = []
    try:
        for argv in argvs:
            processes.append(subprocess.Popen(list(argv), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL))
        codes = [process.wait() for process in processes]
    except FileNotFoundError:
        raise StackError(f"{argvs[0][0]} is not installed or not on PATH") from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait()
    failed = [" ".join(argv) for argv, code in zip(argvs, codes) if code]
    if failed:
        raise StackError(f"{what or 'a command'} failed", details="\n".join(f"$ {argv}" for argv in failed))
