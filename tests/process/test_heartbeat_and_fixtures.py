"""Debian's Prometheus 2.42 and Alertmanager 0.25 on loopback with the rendered bundle: the Heartbeat alert reaches
Alertmanager, which routes it to the heartbeat URL and to nobody else. And the recorded metric fixtures are what
the binaries expose today (names, types and label names; values differ)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from tests.provisioning.test_rules import render_stack
from tests.support import expositions
from tests.support.loopback import alertmanager_argv, free_port, processes, require_debian, wait_for

pytestmark = pytest.mark.process
PACKAGES = ("prometheus", "prometheus-alertmanager")


def test_heartbeat_reaches_alertmanager_and_only_the_heartbeat_url(tmp_path: Path):
    require_debian(*PACKAGES)
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append({"path": self.path, "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_port}"
    am_port = free_port()
    bundle = render_stack(tmp_path, yaml.safe_load(
        "preset: metrics\nservices:\n  prometheus:\n    evaluation_interval: 1s\n"
        f"alerting:\n  group_wait: 1s\n  heartbeat: {{url: '{hook_url}/ping', interval: 1m}}\n"
        # A receiver of every severity: the heartbeat must not reach it.
        f"  receivers:\n    - {{name: everyone, type: webhook, severities: [critical, warning, info], url: '{hook_url}/everyone'}}\n"))
    try:
        with processes(tmp_path) as run:
            run.start("alertmanager", alertmanager_argv(
                bundle / "configs" / "alertmanager" / "alertmanager.yml", tmp_path / "am-data",
                f"127.0.0.1:{am_port}", "--cluster.listen-address="))
            run.wait_ready("alertmanager", f"http://127.0.0.1:{am_port}/-/ready")
            # Alerts evaluated before Alertmanager is discovered are dropped and re-sent only after the resend
            # delay (1m by default): keep the test short.
            run.prometheus(bundle, "--rules.alert.resend-delay=2s", alertmanager=f"127.0.0.1:{am_port}")
            in_alertmanager = []

            def arrived() -> bool:
                in_alertmanager[:] = requests.get(f"http://127.0.0.1:{am_port}/api/v2/alerts",
                                                  params={"filter": 'alertname="Heartbeat"'}, timeout=5).json()
                return bool(in_alertmanager) and bool(received)

            assert wait_for(arrived, 60), (in_alertmanager, received, run.log("alertmanager"), run.log("prometheus"))
            assert in_alertmanager[0]["labels"]["severity"] == "info"
            assert in_alertmanager[0]["receivers"] == [{"name": "heartbeat"}]
            time.sleep(3)  # would anything else be sent?
            assert {r["path"] for r in received} == {"/ping"}, received
            assert received[0]["body"]["commonLabels"]["alertname"] == "Heartbeat"
    finally:
        hook.shutdown()


def test_recorded_fixtures_are_what_the_binaries_expose_now(tmp_path: Path):
    require_debian(*PACKAGES, "prometheus-node-exporter", "prometheus-pushgateway",
                   "prometheus-blackbox-exporter")
    written = expositions.record(tmp_path)
    assert set(written) == {p.name for p in expositions.RECORDED.glob("*.prom")}
    for name in sorted(written):
        now = expositions.shape(expositions.load(tmp_path / name))
        kept = expositions.shape(expositions.load(expositions.RECORDED / name))
        # Families that appear only once something happened (a GC, a failed request) may differ run to run;
        # every family the stack reads is in both (test_fixtures checks the stack's side).
        missing = sorted(set(kept) - set(now))
        changed = sorted(n for n in set(kept) & set(now) if kept[n][0] != now[n][0])
        assert len(missing) <= len(kept) // 20 and not changed, f"{name}: gone {missing[:10]}, type changed {changed}"
