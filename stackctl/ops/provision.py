"""After-up provisioning: what the catalog says to create through a service's API once the stack is healthy
(Kibana's log data view). Each kind of step is one small function, looked up by the step's type."""

from __future__ import annotations

from stackctl.clients.kibana import Kibana
from stackctl.core.catalog import DataView
from stackctl.core.config import ResolvedService, Stack
from stackctl.core.errors import StackError
from stackctl.ops.context import Runtime
from stackctl.ops.reach import Reach, reach


def _data_view(stack: Stack, svc: ResolvedService, step: DataView, runtime: Runtime, where: Reach) -> None:
    password = runtime.store(stack).read(step.secret)
    Kibana(where.url(svc.key), auth=(step.user, password)).ensure_data_view(
        step.id, step.title, step.name, step.time_field)


STEPS = {DataView: _data_view}


def after_up(stack: Stack, runtime: Runtime) -> list[str]:
    """Run every enabled service's after-up steps; a step that fails becomes a warning (the stack itself is up:
    Kibana, for one, reports healthy while still degraded)."""
    warnings: list[str] = []
    steps = [(svc, step) for svc in stack.services.values() for step in svc.spec.after_up]
    if not steps:
        return warnings
    try:
        with reach(stack, runtime, [(svc.key, svc.spec.primary_port.name) for svc, _ in steps]) as where:
            for svc, step in steps:
                try:
                    STEPS[type(step)](stack, svc, step, runtime, where)
                except StackError as error:
                    warnings.append(f"{svc.spec.title}: could not create {type(step).__name__} {step.id}: "
                                    f"{error.message}")
    except StackError as error:  # the forwarder to unpublished services could not start
        warnings.append(f"after-up provisioning skipped: {error.message}")
    return warnings
