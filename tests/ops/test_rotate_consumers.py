"""Which consumers a rotation recreates and how it reports them: a restarting container counts as running (it is
recreated and waited for), and the note about services with no container appears only when there is none."""

from __future__ import annotations

import pytest

from tests.fakes.compose import container
from tests.ops.test_rotate_contract import World, world  # noqa: F401  (the fixture)

pytestmark = pytest.mark.contract


def test_a_restarting_consumer_is_recreated_and_started(world: World):  # noqa: F811
    world.engine.running["kibana"] = container("kibana", state="restarting", health="starting")
    result = world.rotate("kibana_system_password")
    assert result.recreated == ("elasticsearch-setup", "kibana") and result.prepared == ()
    assert not any("no container" in note for note in result.notes)
    assert result.to_json()["finished_interrupted_rotation"] is False


def test_services_without_containers_are_said_to_read_the_value_when_created(world: World):  # noqa: F811
    world.engine.running.clear()
    world.engine.volume_names = []
    result = world.rotate("grafana_admin_password")
    assert result.recreated == () and result.prepared == ()
    assert "no container of its services exists yet: they read the new value when created" in result.notes
