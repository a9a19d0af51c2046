"""Secret rotation: a new value goes into the running service first, then into the state file, then into the
containers that read it.

The order keeps everyone able to sign in and the stored file in agreement with the service:
 1. generate the new value and park it in `<name>.next` (0600), so a crash after step 2 cannot lose it;
 2. change it inside the running service through its API (Elasticsearch security API, Grafana user API);
 3. keep the old value in `<name>.previous`, write the new one atomically, drop `<name>.next`;
 4. recreate the consumers (`up --force-recreate --no-deps`: compose's config hash does not see secret values,
    and /run/secrets/<name> is written only when a container is created), then drop `<name>.previous`;
 5. wait until they are healthy again.
A rotation interrupted after step 2 or 4 is finished by the next `rotate` of the same secret.

Which service keeps its own copy of a secret, under which account, comes from the catalog (`keeps_accounts`).
Values never appear in messages, progress lines or exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stackctl.clients.elasticsearch import Elasticsearch, UserMissing
from stackctl.clients.grafana import Grafana
from stackctl.clients.http import ApiError
from stackctl.core import catalog
from stackctl.core.user_secrets import user_secrets
from stackctl.core.catalog import Account, ServiceSpec
from stackctl.core.config import Stack
from stackctl.core.errors import StackError
from stackctl.core.readiness import FAILED, READY, ContainerInfo, ServiceStatus
from stackctl.core.secrets import generate_value, required_secrets
from stackctl.ops.context import Runtime
from stackctl.ops import swarm
from stackctl.ops.lifecycle import stack_volumes, wait_for, wait_until_ready
from stackctl.ops.reach import Reach, reach
from stackctl.shells.state import NEXT_SUFFIX, PREVIOUS_SUFFIX, SecretStore


@dataclass(frozen=True)
class RotationPlan:
    """What rotating one secret involves in this stack (pure: decided from the stack and the catalog)."""

    secret: str
    holder: ServiceSpec | None  # the service keeping its own copy of the value; None: only the file
    account: str  # the account in the holder whose password this is
    seeded_once: bool  # the holder takes the file's value only on its first start with an empty data volume
    consumers: tuple[str, ...]  # compose names of the services reading /run/secrets/<secret>, catalog order

    def describe(self) -> str:
        where = f"changes the password of {self.account} in {self.holder.title}, then " if self.holder else ""
        return f"{where}recreates {', '.join(self.consumers)}"


@dataclass(frozen=True)
class RotationResult:
    secret: str
    changed_in: str | None  # title of the service whose own copy was changed through its API
    recreated: tuple[str, ...]  # recreated and started (and waited for)
    prepared: tuple[str, ...]  # stopped consumers recreated without starting them
    finished_earlier: bool = False  # this run finished an interrupted rotation instead of starting a new one
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {"secret": self.secret, "changed_in": self.changed_in, "recreated": list(self.recreated),
                "prepared": list(self.prepared), "finished_interrupted_rotation": self.finished_earlier,
                "notes": list(self.notes)}


# --- the plan (pure) -------------------------------------------------------------------------------------------


def refusal(stack: Stack, name: str, store: SecretStore | None = None) -> str | None:
    """Why stackctl will not rotate `name` in this stack, or None when it will."""
    supplied = user_secrets(stack.config)
    needed = required_secrets(stack)
    if name in supplied or (name in needed and not needed[name].generate):
        source = ""
        if name in supplied:
            secret = supplied[name]
            source = f" (from_file {secret.from_file})" if secret.from_file else f" (from_env {secret.from_env})"
        return (f"{name} is supplied by you{source}: stackctl does not rotate user-supplied secrets. Change it "
                "where it comes from, then recreate the services that read it.")
    use = catalog.secret_use(name)
    if use is not None and use.not_rotated:
        return use.not_rotated.format(path=(store or SecretStore.for_stack(stack)).path(name))
    if name not in needed:
        return f"{name} is not used by any service enabled in {stack.file}"
    return None


def _account_name(stack: Stack, spec: ServiceSpec, account: Account) -> str:
    if account.name_setting:
        return str(getattr(stack.config.services.get(spec.key), account.name_setting))
    return account.name


def plan_rotation(stack: Stack, name: str, store: SecretStore | None = None) -> RotationPlan:
    reason = refusal(stack, name, store)
    if reason:
        raise StackError(reason)
    consumers = tuple(stack.services[key].name for key in required_secrets(stack)[name].consumers)
    kept = catalog.keeper_of(name)
    if kept is None or kept[0].key not in stack.services:
        return RotationPlan(name, None, "", seeded_once=False, consumers=consumers)
    spec, account = kept
    return RotationPlan(name, spec, _account_name(stack, spec, account), account.seeded_once, consumers)


# --- the services' own copies ------------------------------------------------------------------------------------


class _ElasticsearchAccounts:
    """Elasticsearch's security API: the admin (elastic) changes any user's password, its own included."""

    def __init__(self, url: str):
        self.client = Elasticsearch(url)

    def sign_in(self, user: str, password: str) -> None:
        self.client.authenticate(user, password)

    def change(self, admin: tuple[str, str], account: str, old: str, new: str) -> bool:
        try:
            self.client.change_password(admin, account, new)
        except UserMissing:
            return False
        return True


class _GrafanaAccounts:
    """Grafana's user API: a user changes their own password, signed in with the old one."""

    def __init__(self, url: str):
        self.client = Grafana(url)

    def sign_in(self, user: str, password: str) -> None:
        self.client.current_user(user, password)

    def change(self, admin: tuple[str, str], account: str, old: str, new: str) -> bool:
        self.client.change_own_password(account, old, new)
        return True


ACCOUNT_APIS = {"elasticsearch-security": _ElasticsearchAccounts, "grafana-users": _GrafanaAccounts}


class _Holder:
    """The running service keeping its own copy of the secret, reached through its account API."""

    def __init__(self, stack: Stack, plan: RotationPlan, store: SecretStore, where: Reach):
        spec = plan.holder
        keeper = spec.keeps_accounts
        self.title, self.account, self.store, self.secret = spec.title, plan.account, store, plan.secret
        self.url = where.url(spec.key)
        self.api = ACCOUNT_APIS[keeper.api](self.url)
        # The account that signs in to make the change: the keeper's admin, or the account itself.
        self.admin_secret = keeper.admin_secret or plan.secret
        self.admin = _account_name(stack, spec, keeper.account(self.admin_secret))

    def check_access(self) -> None:
        """Raise when the service rejects the stored credentials stackctl needs to change the password."""
        try:
            self.api.sign_in(self.admin, self.store.read(self.admin_secret))
        except ApiError as error:
            if error.status == 401:
                raise StackError(
                    f"{self.title} at {self.url} does not accept the stored password of {self.admin} "
                    f"({self.store.path(self.admin_secret)}): the file and the service disagree already. Nothing "
                    "was changed. If the password was changed by hand, write that value to the file first.") from None
            raise StackError(f"{error.message}. Nothing was changed.") from None

    def change(self, old: str, new: str) -> bool:
        """Change the account's password; False when the account does not exist yet (nothing to change)."""
        admin_password = old if self.admin_secret == self.secret else self.store.read(self.admin_secret)
        return self.api.change((self.admin, admin_password), self.account, old, new)

    def accepts(self, value: str) -> bool:
        """Does the service take `value` as the account's password now? Raises ApiError when it cannot say."""
        try:
            self.api.sign_in(self.account, value)
            return True
        except ApiError as error:
            if error.status == 401:
                return False
            raise


# --- the rotation ------------------------------------------------------------------------------------------------


@dataclass
class RotationRun:
    """One rotation's surroundings: the stack, its bundle, the shells, and how to report progress."""

    stack: Stack
    bundle: Path
    runtime: Runtime
    timeout: float = 300.0  # for the recreated services' health
    on_update: Callable[[list[ServiceStatus], float], None] = lambda statuses, elapsed: None
    on_event: Callable[[str], None] = lambda message: None

    @property
    def store(self) -> SecretStore:
        return self.runtime.store(self.stack)

    def containers(self) -> dict[str, ContainerInfo]:
        return {c.service: c for c in self.runtime.engine.containers(self.stack.config.project)}

    def running(self, name: str) -> bool:
        """Is the service (compose name) running: its container, or on Swarm a task of it?"""
        if self.stack.on_swarm:
            return any(s.running for s in swarm.statuses(self.stack, self.runtime, {name}))
        return getattr(self.containers().get(name), "state", "") == "running"


def rotate(run: RotationRun, name: str, generate: Callable[[str], str] = generate_value) -> RotationResult:
    """Rotate one generated secret (see the module docstring for the order of steps)."""
    plan = plan_rotation(run.stack, name, run.store)
    if run.stack.on_swarm:
        swarm.require_manager(run.runtime)
    holder_running = plan.holder is not None and run.running(plan.holder.name)
    api = [(plan.holder.key, plan.holder.primary_port.name)] if holder_running else []
    with reach(run.stack, run.runtime, api) as where:
        return _rotate(run, plan, generate, _Holder(run.stack, plan, run.store, where) if holder_running else None)


def _rotate(run: RotationRun, plan: RotationPlan, generate: Callable[[str], str],
            holder: _Holder | None) -> RotationResult:
    stack, store, on_event, name = run.stack, run.store, run.on_event, plan.secret
    finished = _settle_interrupted(run, plan, holder)
    if finished is not None:
        return finished

    notes: list[str] = []
    old = store.read(name)
    new = generate(required_secrets(stack)[name].generate or "password")
    changed_in = None
    if holder is not None:
        on_event(f"checking that {holder.title} accepts the stored credentials")
        holder.check_access()
        store.write_side(name, NEXT_SUFFIX, new)
        on_event(f"changing the password of {plan.account} in {holder.title}")
        if _change_in_service(plan, store, holder, old, new):
            changed_in = holder.title
        else:
            notes.append(f"{plan.account} does not exist in {holder.title} yet; "
                         f"{plan.holder.keeps_accounts.sets_others}, so it gets the new value")
    elif plan.holder:
        title = plan.holder.title
        present = stack_volumes(stack, run.runtime)  # on Swarm: this node's (a data node elsewhere is not seen)
        existing = [v for v in (plan.holder.docker_volume(stack.config.project, vol) for vol in plan.holder.volumes)
                    if v in present]
        if plan.seeded_once and existing:
            raise StackError(
                f"{title} is not running, and its data volume {existing[0]} already holds the password of "
                f"{plan.account}: {title} reads {name} only on its first start, so changing only the file would "
                f"lock stackctl out. Nothing was changed. Start it ('stackctl up"
                + ("" if stack.on_swarm else f" {plan.holder.name}") + "') and rotate again.")
        notes.append(f"{title} is not running: only the file changes; "
                     + (f"{title} takes the new value on its first start" if plan.seeded_once else
                        plan.holder.keeps_accounts.sets_others))

    on_event(f"storing the new value in {store.path(name)} (the old one stays in {name}{PREVIOUS_SUFFIX} until "
             "its services are recreated)")
    store.write_side(name, PREVIOUS_SUFFIX, old)
    store.write(name, new)
    store.remove_side(name, NEXT_SUFFIX)
    return _recreate(run, plan, changed_in, notes, finished_earlier=False)


def _change_in_service(plan: RotationPlan, store: SecretStore, holder: _Holder, old: str, new: str) -> bool:
    """Step 2. Any failure leaves the file alone; an unanswered request is settled by asking which value works."""
    title = holder.title
    try:
        return holder.change(old, new)
    except ApiError as error:
        if error.status is not None:
            store.remove_side(plan.secret, NEXT_SUFFIX)
            raise StackError(f"{error.message}. Nothing was changed: {title} and {store.path(plan.secret)} still "
                             "hold the old value.") from None
        try:
            if holder.accepts(new):
                return True
            if holder.accepts(old):
                store.remove_side(plan.secret, NEXT_SUFFIX)
                raise StackError(f"{error.message}. Nothing was changed: {title} and "
                                 f"{store.path(plan.secret)} still hold the old value.") from None
        except ApiError:
            pass
        raise StackError(
            f"{error.message}, and stackctl cannot tell whether {title} applied the new password of {plan.account}. "
            f"The new value is kept in {store.side_path(plan.secret, NEXT_SUFFIX)}; once {title} answers, run "
            f"'stackctl secrets rotate {plan.secret}' again: it settles which value is in use first.") from None


def _settle_interrupted(run: RotationRun, plan: RotationPlan, holder: _Holder | None) -> RotationResult | None:
    """Finish a rotation a crash or a failure left half done; None when there was none (or it changed nothing)."""
    name, store, on_event = plan.secret, run.store, run.on_event
    pending = store.read_side(name, NEXT_SUFFIX)
    if pending is not None:
        current = store.read(name)
        if pending == current:
            store.remove_side(name, NEXT_SUFFIX)  # stopped right after storing the value
        elif not plan.holder:
            store.remove_side(name, NEXT_SUFFIX)  # nothing but the file holds it: it never got anywhere
        elif holder is None:
            raise StackError(
                f"an earlier rotation of {name} stopped before storing its new value, and "
                f"{plan.holder.title} is not running, so stackctl cannot tell which value it has. Start it "
                f"and run 'stackctl secrets rotate {name}' again.")
        elif holder.accepts(pending):
            on_event(f"an earlier rotation of {name} changed {holder.title} but did not store the value: storing it")
            store.write_side(name, PREVIOUS_SUFFIX, current)
            store.write(name, pending)
            store.remove_side(name, NEXT_SUFFIX)
        elif holder.accepts(current):
            store.remove_side(name, NEXT_SUFFIX)  # the earlier change never reached the service
        else:
            raise StackError(
                f"{holder.title} accepts neither the stored value of {name} nor the one an earlier rotation left in "
                f"{store.side_path(name, NEXT_SUFFIX)}; stackctl cannot tell which is right. Nothing was changed.")
    if store.read_side(name, PREVIOUS_SUFFIX) is not None:
        on_event(f"an earlier rotation of {name} stored its new value but did not recreate its services: finishing it")
        return _recreate(run, plan, None,
                         [f"finished an interrupted rotation of {name}; run the command again for a new value"],
                         finished_earlier=True)
    return None


def _recreate(run: RotationRun, plan: RotationPlan, changed_in: str | None, notes: list[str],
              finished_earlier: bool) -> RotationResult:
    """Steps 4 and 5: recreate the consumers with the new /run/secrets file, then wait for their health."""
    if run.stack.on_swarm:
        return _redeploy(run, plan, changed_in, notes, finished_earlier)
    stack, store, on_event, name = run.stack, run.store, run.on_event, plan.secret
    containers = run.containers()
    start, prepare = [], []
    for consumer in plan.consumers:
        container = containers.get(consumer)
        spec = catalog.BY_NAME[consumer]
        if spec.oneshot:
            # A setup job is idempotent: rerun it while the service it sets up runs (it checks the new value end to
            # end); otherwise recreate it so its next start reads the new value.
            parent = containers.get(catalog.SERVICES[spec.part_of].name) if spec.part_of else None
            if getattr(parent, "state", "") == "running" or getattr(container, "state", "") == "running":
                start.append(consumer)
            elif container is not None:
                prepare.append(consumer)
        elif container is not None and container.state in ("running", "restarting"):
            start.append(consumer)
        elif container is not None:
            prepare.append(consumer)
    compose = run.runtime.compose(stack, run.bundle)  # its environment holds the new value now
    try:
        if start:
            on_event(f"recreating {', '.join(start)}")
            compose.run(compose.recreate_argv(start), what=f"docker compose up (recreating {', '.join(start)})",
                        timeout=max(run.timeout, 600))
        if prepare:
            on_event(f"recreating the stopped {', '.join(prepare)} without starting them")
            compose.run(compose.recreate_argv(prepare, start=False),
                        what=f"docker compose up --no-start ({', '.join(prepare)})", timeout=600)
    except StackError as error:
        where = f"{changed_in} and " if changed_in else ""
        raise StackError(
            f"{name} was changed in {where}{store.path(name)} (they agree), but recreating its services failed, so "
            f"{', '.join(start + prepare)} may still hold the old value: {error.message}. Fix the cause, then run "
            f"'stackctl secrets rotate {name}' again: it finishes this rotation without making a new value.",
            details=error.details) from None
    store.remove_side(name, PREVIOUS_SUFFIX)
    if not start and not prepare:
        notes.append("no container of its services exists yet: they read the new value when created")
    if start:
        on_event(f"waiting for {', '.join(start)} to be healthy")
        runtime = run.runtime
        ok, statuses = wait_until_ready(stack, lambda: runtime.engine.containers(stack.config.project),
                                        runtime.probe, run.timeout, run.on_update, only=set(start),
                                        interval=runtime.poll_interval, clock=runtime.clock, sleep=runtime.sleep)
        if not ok:
            bad = [s for s in statuses if s.phase != READY]
            failed = any(s.phase == FAILED for s in bad)
            raise StackError(
                f"{name} was rotated ({store.path(name)} and the services agree), but "
                + ", ".join(s.service for s in bad)
                + (" failed" if failed else f" did not become healthy within {run.timeout:.0f}s")
                + "; see 'stackctl logs " + " ".join(s.service for s in bad) + "'",
                details="\n".join(f"{s.service}: {s.state}/{s.health} {s.detail}".rstrip() for s in bad),
                exit_code=1)
    return RotationResult(name, changed_in, tuple(start), tuple(prepare), finished_earlier, tuple(notes))


def _redeploy(run: RotationRun, plan: RotationPlan, changed_in: str | None, notes: list[str],
              finished_earlier: bool) -> RotationResult:
    """Steps 4 and 5 on Swarm: the new value becomes a new Swarm secret, and `docker stack deploy` updates the
    services referring to it, and only them; then their health, and the old secret object goes."""
    stack, store, runtime, name = run.stack, run.store, run.runtime, plan.secret
    deployed = {s.service for s in swarm.statuses(stack, runtime) if s.state != "missing"}
    consumers = [c for c in plan.consumers if c in deployed]
    if not deployed:
        store.remove_side(name, PREVIOUS_SUFFIX)
        notes.append("the stack is not deployed: its services read the new value when 'stackctl up' deploys it")
        return RotationResult(name, changed_in, (), (), finished_earlier, tuple(notes))
    run.on_event(f"deploying a new Swarm secret for {name}; Swarm updates {', '.join(consumers) or 'no service'}")
    try:
        swarm.deploy(stack, run.bundle, runtime, store.values(stack, runtime.environ))
    except StackError as error:
        where = f"{changed_in} and " if changed_in else ""
        raise StackError(
            f"{name} was changed in {where}{store.path(name)} (they agree), but the deploy that hands it to "
            f"{', '.join(consumers)} failed: {error.message}. Fix the cause, then run 'stackctl secrets rotate "
            f"{name}' again: it finishes this rotation without making a new value.", details=error.details) from None
    store.remove_side(name, PREVIOUS_SUFFIX)
    run.on_event(f"waiting for {', '.join(consumers)} to be healthy")
    ok, statuses = wait_for(lambda: swarm.statuses(stack, runtime, set(consumers)), run.timeout, run.on_update,
                            runtime.poll_interval, runtime.clock, runtime.sleep)
    if not ok:
        bad = [s for s in statuses if s.phase != READY]
        raise StackError(
            f"{name} was rotated ({store.path(name)} and the services agree), but "
            + ", ".join(s.service for s in bad) + f" did not become healthy within {run.timeout:.0f}s; see "
            "'stackctl logs " + " ".join(s.service for s in bad) + "'",
            details="\n".join(f"{s.service}: {s.state}/{s.health} {s.detail}".rstrip() for s in bad), exit_code=1)
    removed = swarm.prune(stack, runtime)
    if removed:
        notes.append(f"removed {len(removed)} Swarm objects no service uses any more (the old value among them)")
    return RotationResult(name, changed_in, tuple(consumers), (), finished_earlier, tuple(notes))
