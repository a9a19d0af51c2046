"""Receiving Alertmanager's webhook notifications: a small HTTP server on this machine that keeps every payload
POSTed to it (prometheus/alertmanager notify/webhook/webhook.go: `{"version": "4", "receiver", "status",
"alerts": [{status, labels, annotations, ...}], ...}`) and answers 200, which Alertmanager counts as delivered."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from stackctl.core.errors import StackError


class WebhookInbox:
    """Listens on (address, port) from start() to stop(); `messages` holds the decoded payloads in arrival order."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.messages: list[dict] = []
        self.arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "WebhookInbox":
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    payload = None
                self.send_response(200 if isinstance(payload, dict) else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if isinstance(payload, dict):
                    with inbox.arrived:
                        inbox.messages.append(payload)
                        inbox.arrived.notify_all()

            def log_message(self, format, *args) -> None:  # nothing on the terminal
                pass

        try:
            self._server = ThreadingHTTPServer((self.address, self.port), Handler)
        except OSError as error:
            raise StackError(f"cannot listen on {self.address}:{self.port} for Alertmanager's webhook "
                             f"({error.strerror}); set verify.webhook_port (and verify.webhook_address) in stack.yaml "
                             "to a free port and address, then 'stackctl up' to render it") from None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, match: Callable[[dict, dict], bool], timeout: float) -> tuple[dict, dict] | None:
        """The first (payload, alert) for which match(payload, alert) holds, waiting up to `timeout` seconds."""
        import time

        end = time.monotonic() + timeout
        with self.arrived:
            while True:
                for payload in self.messages:
                    for alert in payload.get("alerts") or []:
                        if match(payload, alert):
                            return payload, alert
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)
