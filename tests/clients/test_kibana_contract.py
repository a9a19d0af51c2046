"""Kibana's data view API through stackctl's client, against a labelled fake of Kibana (tests/fakes/kibana.py)."""

from __future__ import annotations

import pytest

from stackctl.clients.http import ApiError
from stackctl.clients.kibana import Kibana
from stackctl.core.catalog import SERVICES
from tests.fakes.kibana import FakeKibana

pytestmark = pytest.mark.contract

VIEW = SERVICES["kibana"].after_up[0]  # the stack's log data view, as the catalog declares it


def ensure(kibana: FakeKibana, password: str) -> dict:
    return Kibana(kibana.url, auth=("elastic", password)).ensure_data_view(VIEW.id, VIEW.title, VIEW.name,
                                                                             VIEW.time_field)



def test_kibana_data_view_is_created_once_and_kept():
    with FakeKibana("elastic", "elastic-secret-value") as kibana:
        ensure(kibana, "elastic-secret-value")
        first = dict(kibana.data_views)
        ensure(kibana, "elastic-secret-value")
        assert kibana.data_views == first
        assert list(first) == ["stackctl-logs"]
        view = first["stackctl-logs"]
        assert (view["title"], view["timeFieldName"], view["name"]) == ("logs-*", "@timestamp", "stackctl logs")
        for request in kibana.requests:
            assert request.headers.get("kbn-xsrf") == "true"
            assert request.json["override"] is True


def test_kibana_data_view_error_names_the_call_not_the_password():
    with FakeKibana("elastic", "right-password") as kibana:
        with pytest.raises(ApiError) as caught:
            ensure(kibana, "wrong-password")
    assert caught.value.status == 401
    assert "Kibana data view stackctl-logs" in caught.value.message
    assert "wrong-password" not in caught.value.message


def test_kibana_before_8_2_gets_an_index_pattern_instead():
    with FakeKibana("elastic", "pw-123456", legacy=True) as kibana:
        ensure(kibana, "pw-123456")
        ensure(kibana, "pw-123456")
        assert list(kibana.data_views) == ["stackctl-logs"]
        assert kibana.data_views["stackctl-logs"]["title"] == "logs-*"
        assert [r.path for r in kibana.requests] == ["/api/data_views/data_view", "/api/index_patterns/index_pattern"] * 2
