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

Values never appear in messages, progress lines or exceptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from stackctl import http
from stackctl.catalog import CATALOG, SERVICES
from stackctl.config import Stack
from stackctl.docker_engine import ContainerInfo
from stackctl.errors import StackError
from stackctl.lifecycle import FAILED, READY, ServiceStatus, host_url, wait_until_ready
from stackctl.secrets import (NEXT_SUFFIX, PREVIOUS_SUFFIX, SecretStore, env_name, generate_value,
                              required_secrets, user_supplied)

# Accounts whose password Elasticsearch keeps itself. `elastic` is seeded from the file only on the first start with
# an empty data volume; the others are (re)set from their files by the setup job on every run.
ES_ACCOUNTS = {use.name: use.account for spec in CATALOG for use in spec.secrets if use.account}
# Grafana reads its admin password only on the first start with an empty data volume.
GRAFANA_ADMIN = "grafana_admin_password"

KIBANA_KEY_REFUSAL = (
    "stackctl does not rotate kibana_encryption_key. Kibana encrypts saved objects (alerting rules, connectors) "
    "with it and can read objects encrypted with an earlier key only while that key is listed in "
    "xpack.encryptedSavedObjects.keyRotation.decryptionOnlyKeys; stackctl keeps no old keys (they would be secrets "
    "rendered into kibana.yml), so a new key would make those objects unreadable and end every session. To replace "
    "it anyway, knowing encrypted saved objects are lost: stop Kibana, write a new value of at least 32 characters "
    "to {path} (mode 0600), then run 'stackctl up'."
)


class Engine(Protocol):
    """The part of the Docker shell rotation needs (stackctl.docker_engine.DockerEngine)."""

    def containers(self, project: str) -> list[ContainerInfo]: ...

    def volumes(self, project: str) -> list[str]: ...


class ComposeRunner(Protocol):
    """The part of the Compose shell rotation needs (stackctl.compose.Compose)."""

    env: dict[str, str]

    def base(self) -> list[str]: ...

    def run(self, argv: list[str], what: str, timeout: float | None = 600, capture: bool = True): ...


@dataclass
class RotationShells:
    """Everything rotation talks to besides the services' HTTP APIs (reached through stackctl.http)."""

    engine: Engine
    compose: ComposeRunner
    probe: Callable[[str], tuple[bool, str]] = http.probe
    wait_timeout: float = 300.0
    on_update: Callable[[list[ServiceStatus], float], None] = lambda statuses, elapsed: None
    wait_interval: float = 2.0
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class RotationPlan:
    """What rotating one secret involves in this stack (pure: decided from the stack and the catalog)."""

    secret: str
    holder: str | None  # key of the service keeping its own copy of the value; None: only the file
    account: str  # the account in the holder whose password this is
    seeded_once: bool  # the holder takes the file's value only on its first start with an empty data volume
    consumers: tuple[str, ...]  # compose names of the services reading /run/secrets/<secret>, catalog order

    def describe(self) -> str:
        where = ""
        if self.holder:
            where = f"changes the password of {self.account} in {SERVICES[self.holder].title}, then "
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
    supplied = user_supplied(stack)
    needed = required_secrets(stack)
    if name in supplied or (name in needed and not needed[name].generate):
        source = ""
        if name in supplied:
            secret = supplied[name]
            source = f" (from_file {secret.from_file})" if secret.from_file else f" (from_env {secret.from_env})"
        return (f"{name} is supplied by you{source}: stackctl does not rotate user-supplied secrets. Change it "
                "where it comes from, then recreate the services that read it.")
    if name == "kibana_encryption_key":
        path = (store or SecretStore.for_stack(stack)).path(name)
        return KIBANA_KEY_REFUSAL.format(path=path)
    if name not in needed:
        return f"{name} is not used by any service enabled in {stack.file}"
    return None


def plan_rotation(stack: Stack, name: str, store: SecretStore | None = None) -> RotationPlan:
    reason = refusal(stack, name, store)
    if reason:
        raise StackError(reason)
    consumers = tuple(svc.name for svc in stack.services.values() if any(use.name == name for use in svc.secrets))
    if name in ES_ACCOUNTS:
        account = ES_ACCOUNTS[name]
        return RotationPlan(name, "elasticsearch", account, seeded_once=account == "elastic", consumers=consumers)
    if name == GRAFANA_ADMIN:
        account = stack.config.services.grafana.admin_user
        return RotationPlan(name, "grafana", account, seeded_once=True, consumers=consumers)
    return RotationPlan(name, None, "", seeded_once=False, consumers=consumers)


# --- the services' own copies ------------------------------------------------------------------------------------


class _Holder:
    """A running service keeping its own copy of a password, changed through its API."""

    title: str

    def check_access(self) -> None:
        """Raise when the service rejects the stored credentials stackctl needs to change the password."""

    def change(self, old: str, new: str) -> bool:
        """Change the account's password; False when the account does not exist yet (nothing to change)."""
        raise NotImplementedError

    def sign_in(self, value: str) -> None:
        """Authenticate as the account with `value`; raises ApiError (401 when the password is wrong)."""
        raise NotImplementedError

    def accepts(self, value: str) -> bool:
        """Does the service take `value` as the account's password now? Raises ApiError when it cannot say."""
        try:
            self.sign_in(value)
            return True
        except http.ApiError as error:
            if error.status == 401:
                return False
            raise


class _Elasticsearch(_Holder):
    title = "Elasticsearch"

    def __init__(self, url: str, account: str, elastic_password: str, store: SecretStore):
        self.url, self.account, self.elastic_password, self.store = url, account, elastic_password, store

    def check_access(self) -> None:
        try:
            http.es_authenticate(self.url, "elastic", self.elastic_password)
        except http.ApiError as error:
            if error.status == 401:
                raise StackError(
                    f"Elasticsearch at {self.url} does not accept the stored elastic password "
                    f"({self.store.path('elastic_password')}): the file and the service disagree already. Nothing "
                    "was changed. If the password was changed by hand, write that value to the file first.") from None
            raise StackError(f"{error.message}. Nothing was changed.") from None

    def change(self, old: str, new: str) -> bool:
        auth_password = old if self.account == "elastic" else self.elastic_password
        try:
            http.es_change_password(self.url, ("elastic", auth_password), self.account, new)
        except http.UserMissing:
            return False
        return True

    def sign_in(self, value: str) -> None:
        http.es_authenticate(self.url, self.account, value)


class _Grafana(_Holder):
    title = "Grafana"

    def __init__(self, url: str, account: str, old: str, store: SecretStore):
        self.url, self.account, self.old, self.store = url, account, old, store

    def check_access(self) -> None:
        try:
            http.grafana_current_user(self.url, self.account, self.old)
        except http.ApiError as error:
            if error.status == 401:
                raise StackError(
                    f"Grafana at {self.url} does not accept the stored password of {self.account} "
                    f"({self.store.path(GRAFANA_ADMIN)}): the file and the service disagree already. Nothing was "
                    "changed. If the password was changed in Grafana, write that value to the file first.") from None
            raise StackError(f"{error.message}. Nothing was changed.") from None

    def change(self, old: str, new: str) -> bool:
        http.grafana_change_own_password(self.url, self.account, old, new)
        return True

    def sign_in(self, value: str) -> None:
        http.grafana_current_user(self.url, self.account, value)


def _holder(stack: Stack, plan: RotationPlan, store: SecretStore) -> _Holder | None:
    if plan.holder == "elasticsearch":
        return _Elasticsearch(host_url(stack, "elasticsearch"), plan.account, store.read("elastic_password"), store)
    if plan.holder == "grafana":
        return _Grafana(host_url(stack, "grafana"), plan.account, store.read(plan.secret), store)
    return None


# --- the rotation ------------------------------------------------------------------------------------------------


def _containers(stack: Stack, shells: RotationShells) -> dict[str, ContainerInfo]:
    return {c.service: c for c in shells.engine.containers(stack.config.project)}


def _volume_names(stack: Stack, key: str) -> list[str]:
    spec = SERVICES[key]
    return [f"{stack.config.project}_{key.replace('_', '-')}-{volume.name}" for volume in spec.volumes]


def rotate(stack: Stack, name: str, store: SecretStore, shells: RotationShells,
           on_event: Callable[[str], None] = lambda message: None,
           generate: Callable[[str], str] = generate_value) -> RotationResult:
    """Rotate one generated secret (see the module docstring for the order of steps)."""
    plan = plan_rotation(stack, name, store)
    containers = _containers(stack, shells)
    holder_name = SERVICES[plan.holder].name if plan.holder else ""
    holder_running = bool(plan.holder) and getattr(containers.get(holder_name), "state", "") == "running"
    holder = _holder(stack, plan, store) if holder_running else None

    finished = _settle_interrupted(stack, plan, store, holder, shells, on_event)
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
            notes.append(f"{plan.account} does not exist in {holder.title} yet: the setup job creates it with the "
                         "new value")
    elif plan.holder:
        title = SERVICES[plan.holder].title
        existing = [v for v in _volume_names(stack, plan.holder) if v in shells.engine.volumes(stack.config.project)]
        if plan.seeded_once and existing:
            raise StackError(
                f"{title} is not running, and its data volume {existing[0]} already holds the password of "
                f"{plan.account}: {title} reads {name} only on its first start, so changing only the file would "
                f"lock stackctl out. Nothing was changed. Start it ('stackctl up {SERVICES[plan.holder].name}') "
                "and rotate again.")
        notes.append(f"{title} is not running: only the file changes; "
                     + (f"{title} takes the new value on its first start" if plan.seeded_once else
                        "the setup job sets the new value in Elasticsearch when the stack starts"))

    on_event(f"storing the new value in {store.path(name)} (the old one stays in {name}{PREVIOUS_SUFFIX} until "
             "its services are recreated)")
    store.write_side(name, PREVIOUS_SUFFIX, old)
    store.write(name, new)
    store.remove_side(name, NEXT_SUFFIX)
    return _recreate(stack, plan, store, shells, on_event, new, changed_in, notes, finished_earlier=False)


def _change_in_service(plan: RotationPlan, store: SecretStore, holder: _Holder, old: str, new: str) -> bool:
    """Step 2. Any failure leaves the file alone; an unanswered request is settled by asking which value works."""
    title = holder.title
    try:
        return holder.change(old, new)
    except http.ApiError as error:
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
        except http.ApiError:
            pass
        raise StackError(
            f"{error.message}, and stackctl cannot tell whether {title} applied the new password of {plan.account}. "
            f"The new value is kept in {store.side_path(plan.secret, NEXT_SUFFIX)}; once {title} answers, run "
            f"'stackctl secrets rotate {plan.secret}' again: it settles which value is in use first.") from None


def _settle_interrupted(stack: Stack, plan: RotationPlan, store: SecretStore, holder: _Holder | None,
                        shells: RotationShells, on_event: Callable[[str], None]) -> RotationResult | None:
    """Finish a rotation a crash or a failure left half done; None when there was none (or it changed nothing)."""
    name = plan.secret
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
                f"{SERVICES[plan.holder].title} is not running, so stackctl cannot tell which value it has. Start it "
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
        return _recreate(stack, plan, store, shells, on_event, store.read(name), None,
                         [f"finished an interrupted rotation of {name}; run the command again for a new value"],
                         finished_earlier=True)
    return None


def _recreate(stack: Stack, plan: RotationPlan, store: SecretStore, shells: RotationShells,
              on_event: Callable[[str], None], value: str, changed_in: str | None, notes: list[str],
              finished_earlier: bool) -> RotationResult:
    """Steps 4 and 5: recreate the consumers with the new /run/secrets file, then wait for their health."""
    name = plan.secret
    containers = _containers(stack, shells)
    setup = SERVICES["elasticsearch_setup"].name
    es_running = getattr(containers.get(SERVICES["elasticsearch"].name), "state", "") == "running"
    start, prepare = [], []
    for consumer in plan.consumers:
        container = containers.get(consumer)
        if consumer == setup:
            # One-shot and idempotent: rerun it while Elasticsearch runs (it checks the new value end to end);
            # otherwise recreate it so the next start reads the new value.
            if es_running or (container is not None and container.state == "running"):
                start.append(consumer)
            elif container is not None:
                prepare.append(consumer)
        elif container is not None and container.state in ("running", "restarting"):
            start.append(consumer)
        elif container is not None:
            prepare.append(consumer)
    shells.compose.env = {**shells.compose.env, env_name(name): value}
    base = shells.compose.base()
    try:
        if start:
            on_event(f"recreating {', '.join(start)}")
            shells.compose.run(base + ["up", "--detach", "--no-deps", "--force-recreate", *start],
                               what=f"docker compose up (recreating {', '.join(start)})",
                               timeout=max(shells.wait_timeout, 600))
        if prepare:
            on_event(f"recreating the stopped {', '.join(prepare)} without starting them")
            shells.compose.run(base + ["up", "--no-start", "--no-deps", "--force-recreate", *prepare],
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
        ok, statuses = wait_until_ready(stack, lambda: shells.engine.containers(stack.config.project), shells.probe,
                                        shells.wait_timeout, shells.on_update, only=set(start),
                                        interval=shells.wait_interval, sleep=shells.sleep)
        if not ok:
            bad = [s for s in statuses if s.phase != READY]
            failed = any(s.phase == FAILED for s in bad)
            raise StackError(
                f"{name} was rotated ({store.path(name)} and the services agree), but "
                + ", ".join(s.service for s in bad)
                + (" failed" if failed else f" did not become healthy within {shells.wait_timeout:.0f}s")
                + "; see 'stackctl logs " + " ".join(s.service for s in bad) + "'",
                details="\n".join(f"{s.service}: {s.state}/{s.health} {s.detail}".rstrip() for s in bad),
                exit_code=1)
    return RotationResult(name, changed_in, tuple(start), tuple(prepare), finished_earlier, tuple(notes))
