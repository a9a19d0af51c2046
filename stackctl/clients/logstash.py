"""Logstash's tcp input with the json_lines codec: newline-terminated JSON objects over raw TCP, no answer
(logstash-plugins/logstash-codec-json_lines: a line becomes an event once its newline arrives)."""

from __future__ import annotations

import json
import socket

from stackctl.clients.http import ApiError


def send_json_lines(host: str, port: int, documents: list[dict], timeout: float) -> None:
    """Write each document as one line; success means the bytes were handed to the connection."""
    data = b"".join(json.dumps(doc, sort_keys=True).encode() + b"\n" for doc in documents)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(data)
    except OSError as error:
        raise ApiError(f"JSON lines to Logstash at {host}:{port}: {error.strerror or type(error).__name__}") from None
