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
from stackctl.core.swarm import secret_name_variable
from stackctl.shells.compose import Compose, ComposeTool, SwarmStack
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


def stack_config_check(stack: Stack, bundle: Path) -> CheckResult:
    """target: swarm: `docker stack config`, the Docker CLI reading the stack file as `docker stack deploy` will.
    Stand-in Swarm secret names: the real ones exist only once 'stackctl up' made the secrets."""
    env = {secret_name_variable(name): f"{stack.config.project}_{name}-placeholder" for name in required_secrets(stack)}
    try:
        outcome = SwarmStack(bundle, stack.config.project, env=env).check_config()
    except StackError as error:  # no docker CLI
        return CheckResult("docker stack config", MISSING, "docker", error.message)
    if not outcome.ok and ("unknown command" in outcome.output or "is not a docker command" in outcome.output):
        return CheckResult("docker stack config", MISSING, "docker",
                           "this Docker CLI has no 'docker stack config' (20.10 or newer has)")
    return CheckResult("docker stack config", PASSED if outcome.ok else FAILED, "docker", outcome.output
                       if not outcome.ok else "")


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
    first = stack_config_check(stack, bundle) if stack.on_swarm else compose_check(stack, bundle, compose_tool)
    return [first] + file_checks(stack, bundle)
