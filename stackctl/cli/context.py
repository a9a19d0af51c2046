"""The application context every command works from: built once in the Typer callback, replaceable in tests
(`obj=` of the Typer runner, or AppContext.runtime set to a Runtime with fakes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer


@dataclass
class AppContext:
    file: Path
    sets: list[str] = field(default_factory=list)
    debug: bool = False
    _stack: object = None
    _runtime: object = None

    def stack(self, must_exist: bool = True):
        """The loaded stack (once per command); its warnings are printed as they appear."""
        from stackctl.cli.present import warn
        from stackctl.ops.stack import load

        if self._stack is None:
            self._stack = load(self.file, self.sets, must_exist=must_exist)
            for warning in self._stack.warnings:
                warn(warning)
        return self._stack

    @property
    def runtime(self):
        if self._runtime is None:
            from stackctl.ops.context import Runtime

            self._runtime = Runtime()
        return self._runtime

    @runtime.setter
    def runtime(self, value) -> None:
        self._runtime = value

    def bundle_dir(self, out_dir: Path | None) -> Path:
        from stackctl.ops.bundle import bundle_dir_for

        return bundle_dir_for(self.stack(), out_dir)


def app_context(ctx: typer.Context) -> AppContext:
    return ctx.obj
