"""Secret rotation against fakes of the Elasticsearch security API and Grafana's user API (tests/fakes), with the
Compose and Docker shells replaced at their seam: the order of steps, what fails safely, what gets recreated, and
that no value ever reaches the output."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackctl.ops import rotate as rotation
from stackctl.core.config import Stack
from stackctl.shells.stackfile import load_stack
from stackctl.core.errors import StackError
from stackctl.ops.context import Runtime
from stackctl.ops.rotate import RotationRun
from stackctl.core.secrets import env_name, missing_values
from stackctl.shells.state import NEXT_SUFFIX, PREVIOUS_SUFFIX, SecretStore
from tests.fakes.compose import FakeCompose, FakeEngine, container
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.grafana import FakeGrafana

pytestmark = pytest.mark.contract

SETUP = "elasticsearch-setup"


@dataclass
class World:
    stack: Stack
    store: SecretStore
    es: FakeElasticsearch
    grafana: FakeGrafana
    engine: FakeEngine
    compose: FakeCompose
    events: list[str]

    def runtime(self) -> Runtime:
        return Runtime(engine=self.engine, probe=lambda url: (True, ""), make_compose=self.compose.for_bundle,
                       poll_interval=0, sleep=lambda seconds: None)

    def rotate(self, name: str, **kwargs):
        run = RotationRun(self.stack, Path("/bundle"), self.runtime(), timeout=5, on_event=self.events.append)
        return rotation.rotate(run, name, **kwargs)

    def recreated(self) -> list[list[str]]:
        return [self.compose.services_in(call) for call in self.compose.calls]

    def side_files(self, name: str) -> list[str]:
        return [p.name for p in self.store.root.iterdir() if p.name.startswith(name + ".")]


def write_stack(directory: Path, es_port: int, grafana_port: int, preset: str = "full") -> Stack:
    file = directory / "stack.yaml"
    file.write_text(f"version: 1\npreset: {preset}\nservices:\n  elasticsearch:\n    port: {es_port}\n"
                    f"  grafana:\n    port: {grafana_port}\n")
    return load_stack(file, environ={})


@pytest.fixture
def world(tmp_path: Path):
    """A running `full` stack: every container up and healthy, the setup job done, data volumes present; the
    Elasticsearch and Grafana fakes hold the values stored in the state directory."""
    es = FakeElasticsearch("placeholder").start()
    grafana = FakeGrafana("admin", "placeholder").start()
    try:
        stack = write_stack(tmp_path, es.port, grafana.port)
        store = SecretStore.for_stack(stack)
        store.write_all(missing_values(stack, store.exists))
        es.users["elastic"]["password"] = store.read("elastic_password")
        es.users["kibana_system"]["password"] = store.read("kibana_system_password")
        for user, secret in (("logstash_writer", "logstash_writer_password"),
                             ("collector_writer", "collector_writer_password"),
                             ("grafana_reader", "grafana_reader_password")):
            es.users[user] = {"password": store.read(secret), "roles": ["stackctl_log_writer"]}
        grafana.users["admin"]["password"] = store.read("grafana_admin_password")
        engine = FakeEngine(oneshots={SETUP})
        for svc in stack.services.values():
            if svc.spec.oneshot:
                engine.running[svc.name] = container(svc.name, state="exited", health="none")
            else:
                engine.running[svc.name] = container(svc.name)
        engine.volume_names = [f"stackctl_{svc.key.replace('_', '-')}-{v.name}"
                               for svc in stack.services.values() for v in svc.spec.volumes]
        compose = FakeCompose(engine, env=store.compose_env(stack))
        yield World(stack, store, es, grafana, engine, compose, [])
    finally:
        es.stop()
        grafana.stop()


def snapshot_file_on(fake, store: SecretStore, name: str, path: str) -> list[str]:
    """The secret's stored value at the moment the fake receives a request for `path`."""
    seen: list[str] = []
    fake.observer = lambda request: seen.append(store.read(name)) if request.path == path else None
    return seen


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- Elasticsearch ------------------------------------------------------------------------------------------------


def test_elastic_password_changes_in_elasticsearch_first_then_the_file_then_its_services(world: World):
    old = world.store.read("elastic_password")
    at_change = snapshot_file_on(world.es, world.store, "elastic_password", "/_security/user/elastic/_password")

    result = world.rotate("elastic_password")

    new = world.store.read("elastic_password")
    assert new != old and len(new) == 32
    change = world.es.calls("POST", "/_security/user/elastic/_password")
    assert len(change) == 1
    assert change[0].auth == ("elastic", old), "authenticated as elastic with the OLD password"
    assert change[0].json == {"password": new}
    assert at_change == [old], "the file still held the old value while Elasticsearch changed"
    assert world.es.password_of("elastic") == new
    # Then the consumers were recreated, with the new value in the compose environment.
    assert len(world.compose.calls) == 1
    call = world.compose.calls[0]
    assert call.argv[len(world.compose.base()):][:4] == ["up", "--detach", "--no-deps", "--force-recreate"]
    assert sorted(world.compose.services_in(call)) == ["elasticsearch", SETUP]
    assert call.env[env_name("elastic_password")] == new
    assert result.changed_in == "Elasticsearch"
    assert sorted(result.recreated) == ["elasticsearch", SETUP]
    # Nothing left behind; the file and its directory stay private.
    assert world.side_files("elastic_password") == []
    assert mode(world.store.path("elastic_password")) == 0o600
    assert mode(world.store.root) == 0o700


def test_logstash_writer_rotation_updates_the_es_user_and_recreates_logstash_only(world: World):
    elastic = world.store.read("elastic_password")
    old = world.store.read("logstash_writer_password")

    result = world.rotate("logstash_writer_password")

    new = world.store.read("logstash_writer_password")
    assert new != old
    change = world.es.calls("POST", "/_security/user/logstash_writer/_password")
    assert len(change) == 1 and change[0].auth == ("elastic", elastic) and change[0].json == {"password": new}
    assert world.es.password_of("logstash_writer") == new
    assert world.es.password_of("elastic") == elastic, "elastic untouched"
    [services] = world.recreated()
    # Of the long-running services only Logstash reads it; the one-shot setup job is rerun because it (re)sets the
    # user from its /run/secrets file on every start and would otherwise put the old value back.
    assert [s for s in services if s != SETUP] == ["logstash"]
    assert SETUP in services
    assert world.compose.calls[0].env[env_name("logstash_writer_password")] == new
    assert result.recreated == tuple(services)
    assert mode(world.store.path("logstash_writer_password")) == 0o600


@pytest.mark.parametrize("status", [500, 403, 400])
def test_a_failing_es_call_changes_nothing(world: World, status: int):
    old = world.store.read("elastic_password")
    world.es.fail("POST", "/_security/user/elastic/_password", status)

    with pytest.raises(StackError) as caught:
        world.rotate("elastic_password")

    assert world.store.read("elastic_password") == old
    assert world.es.password_of("elastic") == old
    assert world.compose.calls == []
    assert world.side_files("elastic_password") == []
    assert "Nothing was changed" in caught.value.message and str(status) in caught.value.message


def test_a_stored_password_the_service_rejects_is_reported_before_anything_changes(world: World):
    world.es.users["elastic"]["password"] = "changed-by-hand"
    old = world.store.read("kibana_system_password")

    with pytest.raises(StackError, match="disagree already"):
        world.rotate("kibana_system_password")

    assert world.store.read("kibana_system_password") == old
    assert world.es.calls("POST", "/_security/user/kibana_system/_password") == []
    assert world.compose.calls == []


def test_an_answer_lost_after_the_change_is_settled_by_asking_which_password_works(world: World):
    world.es.fail("POST", "/_security/user/elastic/_password", None, apply=True)  # applied, answer lost

    result = world.rotate("elastic_password")

    new = world.store.read("elastic_password")
    assert world.es.password_of("elastic") == new
    assert result.changed_in == "Elasticsearch"
    assert world.side_files("elastic_password") == []
    assert len(world.compose.calls) == 1


def test_a_request_lost_before_the_change_changes_nothing(world: World):
    old = world.store.read("elastic_password")
    world.es.fail("POST", "/_security/user/elastic/_password", None, apply=False)

    with pytest.raises(StackError, match="Nothing was changed"):
        world.rotate("elastic_password")

    assert world.store.read("elastic_password") == old == world.es.password_of("elastic")
    assert world.side_files("elastic_password") == []
    assert world.compose.calls == []


def test_a_crash_between_the_service_and_the_file_is_finished_by_the_next_rotation(world: World):
    # The state a crash right after step 2 leaves: Elasticsearch has the value parked in .next, the file the old one.
    parked = "Parked0123456789Parked0123456789"
    world.store.write_side("elastic_password", NEXT_SUFFIX, parked)
    world.es.users["elastic"]["password"] = parked

    result = world.rotate("elastic_password")

    assert result.finished_earlier
    assert world.store.read("elastic_password") == parked == world.es.password_of("elastic")
    assert world.side_files("elastic_password") == []
    assert sorted(world.recreated()[0]) == ["elasticsearch", SETUP]


def test_when_recreating_fails_file_and_service_agree_and_the_next_run_finishes(world: World):
    world.compose.fail = "Error response from daemon: conflict"

    with pytest.raises(StackError) as caught:
        world.rotate("logstash_writer_password")

    new = world.store.read("logstash_writer_password")
    assert world.es.password_of("logstash_writer") == new, "the file and the service agree"
    assert "(they agree)" in caught.value.message and "rotate logstash_writer_password' again" in caught.value.message
    previous = world.store.side_path("logstash_writer_password", PREVIOUS_SUFFIX)
    assert previous.exists() and mode(previous) == 0o600

    world.compose.fail = None
    changes_before = len(world.es.calls("POST", "/_security/user/logstash_writer/_password"))
    result = world.rotate("logstash_writer_password")

    assert result.finished_earlier
    assert world.store.read("logstash_writer_password") == new, "no second new value"
    assert len(world.es.calls("POST", "/_security/user/logstash_writer/_password")) == changes_before
    assert not previous.exists()
    assert "logstash" in result.recreated


def test_elastic_is_refused_when_elasticsearch_is_stopped_but_its_data_volume_exists(world: World):
    old = world.store.read("elastic_password")
    world.engine.running["elasticsearch"] = container("elasticsearch", state="exited", health="none")

    with pytest.raises(StackError, match="lock stackctl out"):
        world.rotate("elastic_password")

    assert world.store.read("elastic_password") == old
    assert world.es.requests == [] and world.compose.calls == []


def test_with_the_stack_down_and_no_data_only_the_file_changes(world: World):
    old = world.store.read("elastic_password")
    world.engine.running.clear()
    world.engine.volume_names.clear()

    result = world.rotate("elastic_password")

    assert world.store.read("elastic_password") != old
    assert world.es.requests == [] and world.compose.calls == []
    assert result.changed_in is None and result.recreated == ()
    assert any("only the file changes" in note for note in result.notes)


def test_setup_managed_user_with_elasticsearch_stopped_prepares_the_setup_job(world: World):
    world.engine.running["elasticsearch"] = container("elasticsearch", state="exited", health="none")
    world.engine.running["logstash"] = container("logstash", state="exited", health="none")

    result = world.rotate("logstash_writer_password")

    assert world.es.requests == []
    assert sorted(result.prepared) == ["elasticsearch-setup", "logstash"]
    [call] = world.compose.calls
    assert "--no-start" in call.argv


# --- Grafana ------------------------------------------------------------------------------------------------------


def test_grafana_admin_password_changes_in_grafana_first_then_the_file_then_grafana(world: World):
    old = world.store.read("grafana_admin_password")
    at_change = snapshot_file_on(world.grafana, world.store, "grafana_admin_password", "/api/user/password")

    result = world.rotate("grafana_admin_password")

    new = world.store.read("grafana_admin_password")
    assert new != old
    [change] = [r for r in world.grafana.requests if r.path == "/api/user/password"]
    assert change.method == "PUT" and change.auth == ("admin", old)
    assert change.json == {"oldPassword": old, "newPassword": new, "confirmNew": new}
    assert at_change == [old]
    assert world.grafana.password_of("admin") == new
    assert world.recreated() == [["grafana"]]
    assert world.compose.calls[0].env[env_name("grafana_admin_password")] == new
    assert result.changed_in == "Grafana"
    assert world.es.requests == []
    assert mode(world.store.path("grafana_admin_password")) == 0o600


def test_a_failing_grafana_call_changes_nothing(world: World):
    old = world.store.read("grafana_admin_password")
    world.grafana.fail_password_change = 500

    with pytest.raises(StackError, match="Nothing was changed"):
        world.rotate("grafana_admin_password")

    assert world.store.read("grafana_admin_password") == old == world.grafana.password_of("admin")
    assert world.compose.calls == []
    assert world.side_files("grafana_admin_password") == []


def test_grafana_rejecting_the_stored_password_is_reported(world: World):
    world.grafana.users["admin"]["password"] = "reset-by-hand"

    with pytest.raises(StackError, match="disagree already"):
        world.rotate("grafana_admin_password")

    assert [r.path for r in world.grafana.requests] == ["/api/user"]
    assert world.compose.calls == []


# --- refusals -----------------------------------------------------------------------------------------------------


def test_kibana_encryption_key_is_not_rotated_and_says_why(world: World):
    old = world.store.read("kibana_encryption_key")

    with pytest.raises(StackError, match="decryptionOnlyKeys"):
        world.rotate("kibana_encryption_key")

    assert world.store.read("kibana_encryption_key") == old
    assert world.compose.calls == []


def test_user_supplied_secrets_are_not_rotated(world: World):
    world.stack.file.write_text(world.stack.file.read_text() + (
        "alerting:\n  receivers:\n    - name: slack\n      type: slack\n      api_url: {from_env: SLACK_URL}\n"))
    world.stack = load_stack(world.stack.file, environ={})

    with pytest.raises(StackError, match="supplied by you .*from_env SLACK_URL.*does not rotate"):
        world.rotate("alertmanager_slack_api_url")
    assert world.compose.calls == []


# --- through the CLI: nothing secret in the output ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["elastic_password", "grafana_admin_password", "logstash_writer_password"])
def test_rotate_prints_no_value_old_or_new(world: World, cli, name: str):
    old = world.store.read(name)
    result = cli("-f", world.stack.file, "secrets", "rotate", name, "--yes", runtime=world.runtime())
    new = world.store.read(name)

    assert result.code == 0, result.output
    assert new != old
    assert "rotated " + name in result.stdout
    for value in (old, new):
        assert value not in result.output
    json_result = cli("-f", world.stack.file, "secrets", "rotate", name, "--yes", "--json", runtime=world.runtime())
    assert json_result.code == 0, json_result.output
    data = json.loads(json_result.stdout)
    assert data["secret"] == name and data["recreated"]
    for value in (old, new, world.store.read(name)):
        assert value not in json_result.output


def test_a_failed_rotation_prints_no_value_either(world: World, cli):
    world.es.fail("POST", "/_security/user/elastic/_password", 500)
    old = world.store.read("elastic_password")

    result = cli("-f", world.stack.file, "secrets", "rotate", "elastic_password", "--yes", runtime=world.runtime())

    assert result.code == 2
    assert "Nothing was changed" in result.stderr
    assert old not in result.output
    assert world.store.read("elastic_password") == old

    world.compose.fail = "compose went wrong"
    failed_late = cli("-f", world.stack.file, "secrets", "rotate", "elastic_password", "--yes", runtime=world.runtime())
    assert failed_late.code == 2
    for value in (old, world.store.read("elastic_password")):
        assert value not in failed_late.output


def test_rotate_without_yes_refuses_when_not_interactive(world: World, cli):
    old = world.store.read("elastic_password")
    result = cli("-f", world.stack.file, "secrets", "rotate", "elastic_password", runtime=world.runtime())
    assert result.code == 2 and "--yes" in result.stderr
    assert world.store.read("elastic_password") == old


def test_a_user_the_setup_job_has_not_created_yet_is_created_with_the_new_value(world: World):
    del world.es.users["collector_writer"]

    result = world.rotate("collector_writer_password")

    assert result.changed_in is None
    assert any("does not exist in Elasticsearch yet" in note for note in result.notes)
    [services] = world.recreated()
    assert sorted(services) == [SETUP, "otel-collector"]
    assert world.side_files("collector_writer_password") == []


def test_api_errors_never_carry_a_password_the_service_echoes():
    from stackctl.clients.elasticsearch import Elasticsearch
    from stackctl.clients.http import ApiError
    from tests.fakes.server import FakeServer, Reply

    class Echo(FakeServer):
        """FAKE: answers every call with 400 and the request body in the error reason (a careless service)."""

        def handle(self, request):
            return Reply(400, {"error": {"type": "x", "reason": request.body.decode()}, "status": 400})

    with Echo() as echo:
        with pytest.raises(ApiError) as caught:
            Elasticsearch(echo.url).change_password(("elastic", "OldSecret123"), "elastic", "NewSecret456")
    assert caught.value.status == 400
    assert "NewSecret456" not in caught.value.message and "OldSecret123" not in caught.value.message
    assert "***" in caught.value.message
