"""The HTTP helper every client uses: error bodies of each service's shape become one short reason, credentials never
appear in a message, idempotent calls are retried when no answer came and others are not, and the readiness
probe. Against a local scripted server (tests/fakes/server.py), not any real service."""

from __future__ import annotations

import json
import socket

import pytest

from stackctl.clients.http import ApiError, HttpApi, error_reason, probe, scrub
from tests.fakes.server import DropConnection, FakeServer, Reply


class Body:
    """What error_reason reads of a response: json() and text."""

    def __init__(self, body):
        self.body = body
        self.text = body if isinstance(body, str) else json.dumps(body)

    def json(self):
        if isinstance(self.body, str):
            raise ValueError("not JSON")
        return self.body


@pytest.mark.parametrize("body, reason", [
    ({"error": {"root_cause": [], "type": "security_exception", "reason": "unable to authenticate"}, "status": 401},
     "unable to authenticate"),
    ({"error": {"type": "index_not_found_exception"}, "status": 404}, "index_not_found_exception"),
    ({"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."},
     "Bad Request: Request must contain a kbn-xsrf header."),
    ({"status": "error", "errorType": "bad_data", "error": "invalid parameter 'query'"}, "invalid parameter 'query'"),
    ({"message": "Invalid username or password", "messageId": "password-auth.failed"}, "Invalid username or password"),
    ("plain text\nsecond line", "plain text second line"),
    ("  ", ""),
    ({}, ""),
    ({"other": 1}, '{"other": 1}'),
])
def test_error_reasons_of_each_service_shape(body, reason):
    assert error_reason(Body(body)) == reason


def test_reasons_are_short_and_never_carry_a_secret():
    assert error_reason(Body({"message": "wrong password hunter2-xyz"}), ("hunter2-xyz",)) == "wrong password ***"
    assert len(error_reason(Body("x" * 1000))) == 300
    assert scrub("a b a", ("a", "")) == "*** b ***"


class Scripted(FakeServer):
    """FAKE: answers each request with the next scripted reply (DropConnection: no answer at all)."""

    def __init__(self, *replies):
        super().__init__()
        self.replies = list(replies)

    def handle(self, request):
        reply = self.replies.pop(0)
        if reply is DropConnection:
            raise DropConnection()
        return reply


def test_a_refused_call_names_the_call_the_service_and_the_reason_without_the_password():
    with Scripted(Reply(401, {"message": "Invalid username or password sekret-pw"})) as server:
        api = HttpApi(server.url, "Grafana", auth=("admin", "sekret-pw"), retries=0)
        with pytest.raises(ApiError) as caught:
            api.call("GET", "/api/user", "Grafana sign-in of admin")
    error = caught.value
    assert error.status == 401 and error.reason == "Invalid username or password ***"
    assert error.message == (f"Grafana sign-in of admin: Grafana at {server.url}/api/user answered 401: "
                             "Invalid username or password ***")
    assert server.requests[0].auth == ("admin", "sekret-pw")


def test_idempotent_calls_are_retried_when_no_answer_came_and_posts_are_not(monkeypatch):
    monkeypatch.setattr("stackctl.clients.http.time.sleep", lambda seconds: None)
    with Scripted(DropConnection, DropConnection, Reply(200, {"ok": True})) as server:
        api = HttpApi(server.url, "Elasticsearch", retries=2)
        assert api.json("GET", "/", "health") == {"ok": True}
        assert len(server.requests) == 3
    with Scripted(DropConnection, Reply(200, {})) as server:
        api = HttpApi(server.url, "Elasticsearch", retries=2)
        with pytest.raises(ApiError) as caught:
            api.call("POST", "/_security/user/x/_password", "password change", json={"password": "new-pw-123"})
        assert caught.value.status is None and "no answer from Elasticsearch" in caught.value.message
        assert len(server.requests) == 1, "a POST that may have been applied is not sent twice"


def test_accepted_statuses_and_non_json_answers():
    with Scripted(Reply(404, {"message": "nope"}), Reply(200, None, {"Content-Length": "0"})) as server:
        api = HttpApi(server.url, "Kibana", retries=0, headers={"kbn-xsrf": "true"})
        assert api.call("GET", "/x", "look", ok=(404,)).status_code == 404
        with pytest.raises(ApiError, match="answered 200 with a body that is not JSON"):
            api.json("GET", "/y", "look")
        assert server.requests[0].headers["kbn-xsrf"] == "true"


def test_the_readiness_probe():
    with Scripted(Reply(200, {}), Reply(503, {})) as server:
        assert probe(server.url + "/ready") == (True, "")
        assert probe(server.url + "/ready") == (False, f"{server.url}/ready answered 503")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    ok, reason = probe(f"http://127.0.0.1:{closed}/", timeout=1)
    assert not ok and reason == f"ConnectionError: no answer from http://127.0.0.1:{closed}/"
