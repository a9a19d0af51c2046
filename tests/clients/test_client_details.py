"""Details of the service clients that callers rely on: a missing Grafana datasource or Kibana data view is None
(on Kibana before 8.2, found through the index patterns API), errors name the call, the caller's timeout reaches
the request, and a failed OTLP export says where it went and what the exporter complained about."""

from __future__ import annotations

import pytest

from stackctl.clients.grafana import Grafana
from stackctl.clients.http import ApiError
from stackctl.clients.kibana import Kibana
from tests.fakes.collector import FakeCollector
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kibana import FakeKibana

pytestmark = pytest.mark.contract


def record_timeouts(client) -> list:
    """The timeout of every HTTP request the client makes from now on."""
    timeouts: list = []
    request = client.session.request

    def recording(method, url, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return request(method, url, **kwargs)

    client.session.request = recording
    return timeouts


# --- Grafana ----------------------------------------------------------------------------------------------------

def test_grafana_datasource_is_returned_or_none_when_missing_within_the_callers_timeout():
    with FakeGrafana("admin", "admin-pw") as grafana:
        grafana.datasources["prom"] = {"uid": "prom", "name": "Prometheus", "type": "prometheus",
                                       "jsonData": {"httpMethod": "POST"}}
        client = Grafana(grafana.url, auth=("admin", "admin-pw"))
        timeouts = record_timeouts(client)
        assert client.datasource("prom", timeout=7)["jsonData"] == {"httpMethod": "POST"}
        assert client.datasource("nope", timeout=3) is None
    assert timeouts == [7, 3]
    assert [(r.method, r.path) for r in grafana.requests] == [("GET", "/api/datasources/uid/prom"),
                                                              ("GET", "/api/datasources/uid/nope")]


def test_grafana_datasource_error_names_the_datasource():
    with FakeGrafana("admin", "right-pw") as grafana:
        with pytest.raises(ApiError) as caught:
            Grafana(grafana.url, auth=("admin", "wrong-pw")).datasource("prom")
    assert caught.value.status == 401
    assert caught.value.message.startswith(f"Grafana datasource prom: Grafana at {grafana.url}/api/datasources/uid/"
                                           "prom answered 401")


# --- Kibana -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True])
def test_kibana_data_view_is_found_on_either_api_or_none_when_missing(legacy):
    """Kibana 8.2 and later answer the data views API; before, the index patterns API holds the same view (the
    data views path answers 404 there). A view on neither is None. Each call keeps the caller's timeout."""
    with FakeKibana("elastic", "pw-123456", legacy=legacy) as kibana:
        client = Kibana(kibana.url, auth=("elastic", "pw-123456"))
        client.ensure_data_view("stackctl-logs", "logs-*", "stackctl logs")
        kibana.requests.clear()
        timeouts = record_timeouts(client)
        view = client.data_view("stackctl-logs", timeout=4)
        assert (view["id"], view["title"], view["timeFieldName"]) == ("stackctl-logs", "logs-*", "@timestamp")
        assert client.data_view("other", timeout=4) is None
    paths = [r.path for r in kibana.requests]
    legacy_path = "/api/index_patterns/index_pattern/"
    expected = (["/api/data_views/data_view/stackctl-logs"] + ([legacy_path + "stackctl-logs"] if legacy else [])
                + ["/api/data_views/data_view/other", legacy_path + "other"])
    assert paths == expected
    assert timeouts == [4] * len(expected)
    assert {r.method for r in kibana.requests} == {"GET"}


def test_kibana_data_view_error_names_the_view():
    with FakeKibana("elastic", "right-pw") as kibana:
        with pytest.raises(ApiError) as caught:
            Kibana(kibana.url, auth=("elastic", "wrong-pw")).data_view("stackctl-logs")
    assert caught.value.status == 401
    assert caught.value.message.startswith("Kibana data view stackctl-logs: Kibana at ")


def test_kibana_saved_object_deletion_tolerates_a_missing_object_and_names_the_object_on_error():
    with FakeKibana("elastic", "pw-123456") as kibana:
        kibana.objects[("dashboard", "d1")] = {"type": "dashboard", "id": "d1", "attributes": {"title": "D"}}
        client = Kibana(kibana.url, auth=("elastic", "pw-123456"))
        timeouts = record_timeouts(client)
        client.delete_saved_object("dashboard", "d1", timeout=6)
        client.delete_saved_object("dashboard", "d1", timeout=6)  # gone already: fine
        assert ("dashboard", "d1") not in kibana.objects
        assert timeouts == [6, 6]
        assert [(r.method, r.path) for r in kibana.requests] == [("DELETE", "/api/saved_objects/dashboard/d1")] * 2
        with pytest.raises(ApiError) as caught:
            Kibana(kibana.url, auth=("elastic", "wrong")).delete_saved_object("dashboard", "d1")
    assert caught.value.message.startswith("Kibana saved object dashboard/d1 deletion: Kibana at ")


# --- OTLP -------------------------------------------------------------------------------------------------------

def gauge(endpoint: str, timeout: float = 5) -> None:
    from stackctl.clients.otlp import send_gauge

    send_gauge(endpoint, "otlp", {"service.name": "stackctl-verify"}, "stackctl_verify_probe", 1.0,
               {"stackctl_verify": "run42"}, timeout=timeout)


def test_a_gauge_carries_the_resource_attributes_and_the_callers_timeout(monkeypatch):
    from opentelemetry.exporter.otlp.proto.http import metric_exporter

    timeouts: list = []

    class Recording(metric_exporter.OTLPMetricExporter):
        def __init__(self, *args, **kwargs):
            timeouts.append(kwargs.get("timeout"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(metric_exporter, "OTLPMetricExporter", Recording)
    with FakeCollector() as collector:
        gauge(f"{collector.url}/v1/metrics", timeout=3)
    (request,) = collector.received["metrics"]
    attributes = request["resourceMetrics"][0]["resource"]["attributes"]
    assert {"key": "service.name", "value": {"stringValue": "stackctl-verify"}} in attributes
    assert timeouts == [3]


def test_a_refused_export_names_the_protocol_the_endpoint_and_the_exporters_complaint():
    with FakeCollector() as collector:
        collector.refuse = 400
        endpoint = f"{collector.url}/v1/metrics"
        with pytest.raises(ApiError) as caught:
            gauge(endpoint)
    message = caught.value.message
    assert message.startswith(f"metric export (otlp) to {endpoint} failed: ")
    assert "400" in message and "Bad Request" in message  # what the exporter logged


def test_sdk_log_lines_outside_an_export_neither_fail_nor_reach_the_terminal(capsys):
    """Once an export has run, the SDK's log lines from anywhere else (another thread, a provider's shutdown) are
    swallowed quietly: they raise nothing and print nothing."""
    import logging
    import threading

    with FakeCollector() as collector:
        gauge(f"{collector.url}/v1/metrics")
    failures: list[BaseException] = []

    def stray() -> None:
        try:
            logging.getLogger("opentelemetry.sdk.metrics").warning("a stray SDK warning")
        except BaseException as error:  # noqa: BLE001 - the test reports it
            failures.append(error)

    worker = threading.Thread(target=stray)
    worker.start()
    worker.join()
    stray()
    assert failures == []
    assert "a stray SDK warning" not in capsys.readouterr().err
