"""Details of `stackctl verify` a user or script sees: the exact words and the place to look of the Grafana and
Kibana checks, whose logs a failing datasource sends the user to, every HTTP call bounded by what is left of the
deadline, and the pure helpers behind them (the JSON of a result, Grafana link variables, JSON paths, Prometheus
times)."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

import pytest

from stackctl.clients.grafana import Grafana
from stackctl.clients.kibana import Kibana
from stackctl.core.render import DATASOURCES_FILE
from stackctl.core.verify import FAILED, PASSED, VerifyResult, at_path, link_variables, parse_time
from tests.ops.test_verify_contract import results, world  # noqa: F401  (world: the fixture)

# --- Grafana ----------------------------------------------------------------------------------------------------------


def test_grafana_login_passes_naming_the_user_and_fails_saying_how_to_fix_it(world):  # noqa: F811
    assert results(world.verify("grafana:login"))["grafana:login"].detail == \
        "admin signs in with the generated password"
    world.grafana.users["admin"]["password"] = "changed-in-the-ui"
    result = results(world.verify("grafana:login"))["grafana:login"]
    assert (result.status, result.detail, result.look) == (
        FAILED, "Grafana refuses admin with the generated password (grafana_admin_password): was it changed in "
                "Grafana? 'stackctl secrets rotate' changes it in both places", "stackctl logs grafana")


def test_grafana_links_pass_listing_every_link_checked(world):  # noqa: F811
    result = results(world.verify("grafana:links"))["grafana:links"]
    assert (result.status, result.detail) == (PASSED, "2 links keep their variables (Elasticsearch logs "
                                                      "jsonData.dataLinks.0.url, Jaeger jsonData.tracesToLogsV2.query)")


def test_grafana_links_that_lost_their_variables_fail_pointing_at_the_provisioning_file(world):  # noqa: F811
    path = world.bundle / DATASOURCES_FILE
    path.write_text(path.read_text().replace("$${__", "${__"))
    world.provision_grafana()
    result = results(world.verify("grafana:links"))["grafana:links"]
    advice = "provisioning expanded its ${__...} variable (Grafana needs $${__...} in the provisioning file)"
    assert result.detail == (
        f"Elasticsearch logs jsonData.dataLinks.0.url is '' in Grafana, provisioned as '${{__value.raw}}': {advice}; "
        f"Jaeger jsonData.tracesToLogsV2.query is 'trace_id:\"\"' in Grafana, provisioned as "
        f"'trace_id:\"${{__span.traceId}}\"': {advice}")
    assert result.look == f"{DATASOURCES_FILE} in the bundle"


@pytest.mark.parametrize("url, look", [
    ("http://search.example.net:9200", "stackctl logs grafana"),  # not a stack service: Grafana's logs
    ("elasticsearch:9200", "stackctl logs elasticsearch"),  # host:port without a scheme: still the stack service
])
def test_an_unhealthy_datasource_sends_to_the_logs_of_the_stack_service_behind_it(world, url, look):  # noqa: F811
    path = world.bundle / DATASOURCES_FILE
    path.write_text(path.read_text().replace("url: http://elasticsearch:9200", f"url: {url}"))
    world.grafana.unhealthy["elasticsearch-logs"] = "Elasticsearch data source is not healthy"
    result = results(world.verify("grafana:datasources"))["grafana:datasources"]
    assert result.status == FAILED and result.look == look


# --- Kibana -----------------------------------------------------------------------------------------------------------


def test_kibana_data_views_pass_naming_them_and_a_missing_one_says_to_run_up(world):  # noqa: F811
    assert results(world.verify("kibana:data-views"))["kibana:data-views"].detail == \
        "stackctl-logs (logs-*) present"
    world.kibana.data_views.clear()
    result = results(world.verify("kibana:data-views"))["kibana:data-views"]
    assert (result.status, result.detail, result.look) == (
        FAILED, "data view stackctl-logs (logs-*) is missing: 'stackctl up' creates it once Kibana is healthy",
        "stackctl up")


# --- deadline ---------------------------------------------------------------------------------------------------------


def test_every_grafana_and_kibana_call_is_bounded_by_the_deadline(world, monkeypatch):  # noqa: F811
    """A check's HTTP calls wait at most what is left of verify's --timeout, never the clients' own defaults."""
    timeouts: dict[str, list] = {}

    def recording(cls, name):
        original = getattr(cls, name)
        signature = inspect.signature(original)

        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            timeouts.setdefault(name, []).append(bound.arguments["timeout"])
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, call)

    recording(Grafana, "current_user")
    recording(Grafana, "datasource")
    recording(Kibana, "data_view")
    report = world.verify("grafana:login", "grafana:links", "kibana:data-views", timeout=3)
    assert report.ok
    assert set(timeouts) == {"current_user", "datasource", "data_view"}
    assert all(t is not None and 1 <= t <= 3 for ts in timeouts.values() for t in ts), timeouts


# --- the pure part ----------------------------------------------------------------------------------------------------


def test_a_result_in_json_has_its_duration_in_milliseconds():
    result = VerifyResult("grafana:login", "GrafanaLogin", ("grafana",), PASSED, "ok", duration=1.23456,
                          look="stackctl logs grafana")
    assert result.to_json() == {"name": "grafana:login", "kind": "GrafanaLogin", "components": ["grafana"],
                                "status": "passed", "detail": "ok", "duration": 1.235, "look": "stackctl logs grafana"}


def test_link_variables_are_found_in_every_item_of_a_list():
    json_data = {"dataLinks": [{"url": "$${__value.raw}"}, {"url": "plain"}, {"url": "${__data.fields.id}"}],
                 "title": "no variable"}
    assert link_variables(json_data) == [(("dataLinks", 0, "url"), "${__value.raw}"),
                                         (("dataLinks", 2, "url"), "${__data.fields.id}")]


@pytest.mark.parametrize("node, path, value", [
    ({"a": [{"b": "x"}]}, ("a", 0, "b"), "x"),
    ({"a": ["x"]}, ("a", 1), None),  # past the end of a list
    ({"a": ["x"]}, ("a", "b"), None),  # a key into a list
    ({"a": {"0": "x"}}, ("a", 0), None),  # an index into an object
    ({"a": "text"}, ("a", "b"), None),  # into a string
])
def test_at_path_finds_values_and_none_where_the_path_does_not_exist(node, path, value):
    assert at_path(node, path) == value


@pytest.mark.parametrize("text, expected", [
    ("2026-08-20T10:00:00.123456789Z", datetime(2026, 8, 20, 10, 0, 0, 123456, tzinfo=timezone.utc)),
    ("2026-08-20T10:00:00Z", datetime(2026, 8, 20, 10, tzinfo=timezone.utc)),
    ("2026-08-20T10:00:00.12345Z", datetime(2026, 8, 20, 10, 0, 0, 123450, tzinfo=timezone.utc)),
    ("2026-08-20T10:00:00.5Z", datetime(2026, 8, 20, 10, 0, 0, 500000, tzinfo=timezone.utc)),
    ("2026-08-20T12:00:00.1234567+02:00", datetime(2026, 8, 20, 12, 0, 0, 123456,
                                                   tzinfo=timezone(timedelta(hours=2)))),
    ("", None), (None, None), ("2026-08-20 10:00:00", None), ("0001-01-01T00:00:00", None),
])
def test_prometheus_times_parse_to_aware_datetimes(text, expected):
    """Prometheus writes RFC 3339 with up to nine fraction digits, trailing zeros dropped, and Z: every form parses
    (on every supported Python, 3.10 included, whose fromisoformat takes neither Z nor 1, 2, 4, 5 or 7+ digits)."""
    assert parse_time(text) == expected
