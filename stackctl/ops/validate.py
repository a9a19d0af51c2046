"""Validation with the real tools: `docker compose config` over the whole bundle, then every validator the
catalog declares for the enabled services' files (promtool, amtool, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from stackctl.core.user_secrets import user_secrets
from stackctl.core.checks import FAILED, MISSING, PASSED, SKIPPED, CheckResult
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.secrets import env_name, required_secrets
from stackctl.shells.compose import Compose, ComposeTool
from stackctl.shells.state import read_user_secret
from stackctl.shells.tools import run_check


def placeholder_compose_env(stack: Stack) -> dict[str, str]:
    """Stand-in secret values: `docker compose config` needs every secret's variable set, not its value."""
    return {env_name(name): "placeholder" for name in required_secrets(stack)}


def compose_check(stack: Stack, bundle: Path, compose_tool: Callable[[], ComposeTool]) -> CheckResult:
    try:
        tool = compose_tool()
    except StackError as error:
        return CheckResult("docker compose config", MISSING, "docker compose", error.message)
    outcome = Compose(bundle, stack.config.project, env=placeholder_compose_env(stack), tool=tool).check_config()
    return CheckResult("docker compose config", PASSED if outcome.ok else FAILED,
                       f"{' '.join(tool.argv)} {tool.version}", outcome.output)


def file_checks(stack: Stack, bundle: Path) -> list[CheckResult]:
    """Every validator of every enabled service, on the files its glob matches in `bundle`."""
    results = []
    for svc in stack.services.values():
        for validator in svc.spec.validators:
            files = sorted(bundle.glob(validator.files))
            if not files:
                results.append(CheckResult(validator.name, FAILED if validator.required else SKIPPED,
                                           validator.tool, f"no file in the bundle matches {validator.files}"))
                continue
            results.append(run_check(validator.name, validator.tool,
                                     [validator.tool, *validator.args, *map(str, files)],
                                     note=f" (image {svc.version})"))
    return results


def user_secrets_check(stack: Stack, environ: dict[str, str]) -> CheckResult | None:
    """The secrets the user supplies can be read now (up hands them to compose); None when there are none."""
    supplied = user_secrets(stack.config)
    if not supplied:
        return None
    problems = []
    for secret in supplied.values():
        try:
            read_user_secret(stack, secret, environ)
        except StackError as error:
            problems.append(error.message)
    return CheckResult("user-supplied secrets", FAILED if problems else PASSED, "stackctl", "\n".join(problems))


def tool_checks(stack: Stack, bundle: Path, compose_tool: Callable[[], ComposeTool]) -> list[CheckResult]:
    return [compose_check(stack, bundle, compose_tool)] + file_checks(stack, bundle)
