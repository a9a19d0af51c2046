"""Preparing the bundle, the pipeline every command that starts or changes the stack runs: render in memory,
check it in a staging directory (stackctl's structural checks, and with `tools` the real validators), and only
then store new secrets and apply the bundle. A failure at any step writes nothing: not the bundle, not a secret,
not the state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackctl.core.checks import FAILED, MISSING, PASSED, CheckResult, structural_checks
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.render import render_bundle
from stackctl.core.secrets import missing_values, required_secrets
from stackctl.ops.context import Runtime
from stackctl.ops.validate import tool_checks, user_secrets_check
from stackctl.shells.fs import WriteResult, bundle_is_current, bundle_problem, staging_dir, write_bundle, write_tree


@dataclass(frozen=True)
class PreparedBundle:
    dir: Path
    plan: dict[str, bytes]
    write: WriteResult
    generated: tuple[str, ...]  # secrets generated (and stored) by this run
    checks: tuple[CheckResult, ...]


def bundle_dir_for(stack: Stack, out: Path | None) -> Path:
    """--out, else build/ next to the stack file."""
    return (out if out is not None else stack.file.parent / "build").absolute()


def is_current(stack: Stack, bundle: Path, runtime: Runtime) -> bool:
    """The bundle on disk is what this stack renders, and no secret is missing: nothing to prepare."""
    return (not missing_values(stack, runtime.store(stack).exists)
            and bundle_is_current(render_bundle(stack, runtime.template_cache), bundle))


@dataclass(frozen=True)
class Validation:
    """A rendered plan and what the checks said of it, before anything is written."""

    plan: dict[str, bytes]
    new_secrets: dict[str, str]  # generated values to store if the plan is applied
    checks: tuple[CheckResult, ...]

    def failed(self, strict: bool = False) -> list[CheckResult]:
        """Failed checks; with `strict`, checks whose tool is missing count as failed too."""
        return [c for c in self.checks if c.status == FAILED or (strict and c.status == MISSING)]


def validate_plan(stack: Stack, bundle: Path, runtime: Runtime, *, tools: bool) -> Validation:
    """Render and check, writing nothing but a staging copy that is removed again. `tools` adds the real validators
    (run on the staging copy) and the check that user-supplied secrets are readable."""
    plan = render_bundle(stack, runtime.template_cache)
    store = runtime.store(stack)
    new_secrets = missing_values(stack, store.exists)
    known = {**store.known_values(stack, runtime.environ), **{k: v.encode() for k, v in new_secrets.items()}}
    problem = bundle_problem(plan, bundle)
    checks = structural_checks(stack, plan, known) + [
        CheckResult("bundle directory", FAILED if problem else PASSED, "stackctl", problem or str(bundle)),
        state_check(stack, bundle, store), stored_secrets_check(stack, store, new_secrets)]
    if tools and not any(c.status == FAILED for c in checks):
        user = user_secrets_check(stack, runtime.environ)
        checks += [user] if user else []
        with staging_dir() as staged:
            write_tree(plan, staged)
            checks += tool_checks(stack, staged, runtime.compose_tool)
    return Validation(plan, new_secrets, tuple(checks))


def refusal(failed: list[CheckResult]) -> StackError:
    """One line when stackctl's own checks said what is wrong in a line each; a tool's output goes below."""
    if all(c.tool == "stackctl" and "\n" not in c.message for c in failed):
        return StackError("; ".join(c.message for c in failed) + " (nothing was written)")
    return StackError("the bundle did not validate: " + ", ".join(c.name for c in failed) + "; nothing was written",
                      details="\n".join(f"{c.name} ({c.tool}):\n{c.message}" for c in failed))


def state_check(stack: Stack, bundle: Path, store) -> CheckResult:
    """The state directory is one stackctl may own: not the project directory or one above it (it would become
    private and git-ignored), not inside the bundle (mounted into containers), not a directory or link someone
    else made."""
    state, project = store.state, stack.file.parent
    if state == project or state in project.parents:
        problem = f"{state} is the stack file's directory or one above it; secrets need a directory of their own"
    elif state == bundle or bundle in state.parents or state in bundle.parents:
        problem = f"{state} overlaps the bundle directory {bundle}, whose files are mounted into containers"
    else:
        problem = store.ownership_problem()
    return CheckResult("state directory", FAILED if problem else PASSED, "stackctl",
                       f"state_dir: {problem}" if problem else str(state))


def stored_secrets_check(stack: Stack, store, new_secrets: dict[str, str]) -> CheckResult:
    """Every generated secret already stored is readable text that is not empty (an empty one would be handed to
    the service as its password)."""
    problems = []
    for name, spec in required_secrets(stack).items():
        if spec.generate and name not in new_secrets:
            try:
                store.read(name)
            except StackError as error:
                problems.append(error.message)
    return CheckResult("stored secrets", FAILED if problems else PASSED, "stackctl", "\n".join(problems))


def apply(validation: Validation, stack: Stack, bundle: Path, runtime: Runtime) -> PreparedBundle:
    """Store the new secrets, then make the bundle directory hold the plan."""
    runtime.store(stack).write_all(validation.new_secrets)
    result = write_bundle(validation.plan, bundle)
    return PreparedBundle(bundle, validation.plan, result, tuple(sorted(validation.new_secrets)), validation.checks)


def prepare_bundle(stack: Stack, bundle: Path, runtime: Runtime, *, tools: bool) -> PreparedBundle:
    """Validate, then apply; a failed check raises StackError naming it, and nothing is written."""
    validation = validate_plan(stack, bundle, runtime, tools=tools)
    failed = validation.failed()
    if failed:
        raise refusal(failed)
    return apply(validation, stack, bundle, runtime)
