"""FAKE infrastructure: a threaded `http.server` on loopback that records every request and checks Basic auth,
shared by the fake service APIs in this package. Not any real service."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class DropConnection(Exception):
    """Raised by a handler to close the connection without an answer (a request lost in flight)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    auth: tuple[str, str] | None  # Basic auth credentials as sent

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def user(self) -> str | None:
        return self.auth[0] if self.auth else None


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Subclasses implement `handle(request) -> Reply`. Use as a context manager; `url` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.observer = None  # called with each request before it is handled (tests snapshot state there)
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body, _basic_auth(self.headers))
                with fake.lock:
                    fake.requests.append(request)
                    if fake.observer is not None:
                        fake.observer(request)
                    try:
                        reply = fake.handle(request)
                    except DropConnection:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                if isinstance(reply.body, bytes):  # sent as it is (text/plain errors, protobuf)
                    data = reply.body
                else:
                    data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

            def log_message(self, format, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError


def _basic_auth(headers) -> tuple[str, str] | None:
    value = headers.get("Authorization") or ""
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password
