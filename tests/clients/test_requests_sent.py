"""What the clients send, request by request, as the upstream APIs define it (Elasticsearch's snapshot and
delete-by-query APIs, Kibana's saved-objects export and data-view APIs), and how a status is read. Against a local
scripted server (tests/fakes/server.py), not the real services."""

from __future__ import annotations

import pytest

from stackctl.clients.elasticsearch import Elasticsearch
from stackctl.clients.http import ApiError, HttpApi, error_reason
from stackctl.clients.kibana import Kibana
from tests.clients.test_http import Body, Scripted
from tests.fakes.server import Reply


def test_a_base_url_with_a_trailing_slash_gives_single_slash_urls():
    """In requests and in the URLs messages name."""
    with Scripted(Reply(200, {})) as server:
        api = HttpApi(server.url + "/", "Prometheus", retries=0)
        api.call("GET", "/-/ready", "readiness")
        assert server.requests[0].path == "/-/ready"
        assert api.url("/-/ready") == server.url + "/-/ready"


@pytest.mark.parametrize("status, accepted", [(200, True), (202, True), (299, True), (300, False), (404, False)])
def test_only_2xx_answers_are_success(status, accepted):
    with Scripted(Reply(status, {"message": "m"})) as server:
        api = HttpApi(server.url, "Grafana", retries=0)
        if accepted:
            assert api.call("GET", "/x", "look").status_code == status
        else:
            with pytest.raises(ApiError):
                api.call("GET", "/x", "look")


def test_the_cause_elasticsearch_names_is_added_to_its_reason():
    body = {"error": {"type": "repository_exception", "reason": "[r] failed to create repository",
                      "caused_by": {"type": "access_denied_exception", "reason": "/snapshots/r: permission denied"}},
            "status": 500}
    assert error_reason(Body(body)) == "[r] failed to create repository: /snapshots/r: permission denied"


def test_snapshot_repository_and_snapshot_requests():
    with Scripted(Reply(200, {"acknowledged": True}), Reply(200, {"acknowledged": True}),
                  Reply(200, {"snapshot": {"state": "SUCCESS", "indices": ["logs"]}})) as server:
        es = Elasticsearch(server.url, retries=0)
        es.put_fs_repository("stackctl", "/snapshots/stackctl")
        es.put_fs_repository("stackctl-restore", "/snapshots/x", readonly=True)
        es.create_snapshot("stackctl", "snap-1", ["logs-a", "logs-b"])
    plain, readonly, snapshot = server.requests
    assert (plain.method, plain.path, plain.json) == (
        "PUT", "/_snapshot/stackctl", {"type": "fs", "settings": {"location": "/snapshots/stackctl"}})
    assert readonly.json == {"type": "fs", "settings": {"location": "/snapshots/x", "readonly": True}}
    assert snapshot.path == "/_snapshot/stackctl/snap-1" and snapshot.query == {"wait_for_completion": ["true"]}
    assert snapshot.json == {"indices": "logs-a,logs-b", "ignore_unavailable": True, "include_global_state": False,
                             "metadata": {"taken_by": "stackctl"}}


def test_delete_by_query_refreshes_and_proceeds_on_conflicts():
    with Scripted(Reply(200, {"deleted": 3})) as server:
        assert Elasticsearch(server.url, retries=0).delete_by_query("logs-*", {"match_all": {}}) == 3
    request = server.requests[0]
    assert request.path == "/logs-*/_delete_by_query" and request.json == {"query": {"match_all": {}}}
    assert request.query == {"refresh": ["true"], "conflicts": ["proceed"]}


def test_data_streams_are_deleted_in_one_request():
    with Scripted(Reply(200, {"acknowledged": True})) as server:
        Elasticsearch(server.url, retries=0).delete_data_streams(["logs-a", "logs-b"])
    assert (server.requests[0].method, server.requests[0].path) == ("DELETE", "/_data_stream/logs-a,logs-b")


def test_saved_objects_export_asks_for_references_and_the_summary():
    ndjson = b'{"type":"dashboard","id":"d1"}\n{"exportedCount":1,"missingRefCount":0,"missingReferences":[]}\n'
    with Scripted(Reply(200, ndjson, {"Content-Type": "application/ndjson"})) as server:
        objects, summary = Kibana(server.url, retries=0).export_saved_objects(["dashboard"])
    assert server.requests[0].json == {"type": ["dashboard"], "includeReferencesDeep": True,
                                       "excludeExportDetails": False}
    assert objects.strip() == b'{"type":"dashboard","id":"d1"}' and summary["exportedCount"] == 1


def test_a_data_view_is_looked_up_by_id_and_missing_only_on_404():
    with Scripted(Reply(404, {"statusCode": 404}), Reply(404, {"statusCode": 404})) as server:
        assert Kibana(server.url, retries=0).data_view("logs") is None
    assert [r.path for r in server.requests] == ["/api/data_views/data_view/logs",
                                                "/api/index_patterns/index_pattern/logs"]
    with Scripted(Reply(200, {"data_view": {"id": "logs", "title": "logs-*"}})) as server:
        assert Kibana(server.url, retries=0).data_view("logs") == {"id": "logs", "title": "logs-*"}
    with Scripted(Reply(405, {"statusCode": 405, "error": "Method Not Allowed", "message": "no"})) as server:
        with pytest.raises(ApiError):
            Kibana(server.url, retries=0).data_view("logs")


def test_an_empty_json_body_gives_an_empty_reason():
    assert error_reason(Body([])) == "" and error_reason(Body({})) == ""
