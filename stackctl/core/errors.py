"""The one exception type users see; the CLI edge turns it into a message and an exit code."""

from __future__ import annotations


class StackError(Exception):
    """A problem the user can fix: bad input, a missing tool, a service that did not become healthy.

    `details` holds extra lines (a tool's output, a log tail) shown under the message.
    """

    exit_code = 2

    def __init__(self, message: str, *, details: str = "", exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(StackError):
    """stack.yaml is malformed or invalid: names the file, the key path and, where known, the line."""

    def __init__(self, file: str, path: str, problem: str, line: int | None = None, hint: str = ""):
        where = file + (f":{line}" if line else "")
        text = f"{where}: {path}: {problem}" if path else f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.file, self.path, self.problem, self.line, self.hint = file, path, problem, line, hint
