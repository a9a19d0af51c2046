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

from stackctl.core.render import render_bundle
from stackctl.shells.fs import write_bundle
from stackctl.shells.stackfile import load_stack
from tests.support import expositions

pytestmark = pytest.mark.process


def binaries_or_skip() -> None:
    try:
        from tests.support.debian import extract_package

        for package in ("prometheus", "prometheus-alertmanager"):
            extract_package(package)
    except Exception as error:  # no apt here: skipped, which STACKCTL_REQUIRE_ALL turns into a failure in CI
        pytest.skip(f"cannot unpack Debian's packages: {error}")


def test_heartbeat_reaches_alertmanager_and_only_the_heartbeat_url(tmp_path: Path):
    binaries_or_skip()
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
    am_port, prom_port = expositions.free_port(), expositions.free_port()
    (tmp_path / "stack.yaml").write_text(
        "preset: metrics\nservices:\n  prometheus:\n    evaluation_interval: 1s\n"
        f"alerting:\n  group_wait: 1s\n  heartbeat: {{url: '{hook_url}/ping', interval: 1m}}\n"
        # A receiver of every severity: the heartbeat must not reach it.
        f"  receivers:\n    - {{name: everyone, type: webhook, severities: [critical, warning, info], url: '{hook_url}/everyone'}}\n")
    stack = load_stack(tmp_path / "stack.yaml", environ={})
    build = tmp_path / "build"
    write_bundle(render_bundle(stack), build)
    prom_dir = build / "configs" / "prometheus"
    config = tmp_path / "prometheus.yml"
    config.write_text((prom_dir / "prometheus.yml").read_text()
                      .replace("/etc/prometheus/rules/*.yml", str(prom_dir / "rules" / "*.yml"))
                      .replace("alertmanager:9093", f"127.0.0.1:{am_port}"))
    try:
        with expositions.processes(tmp_path) as run:
            run.start("alertmanager", expositions.alertmanager_argv(
                build / "configs" / "alertmanager" / "alertmanager.yml", tmp_path / "am-data",
                f"127.0.0.1:{am_port}", "--cluster.listen-address="))
            run.wait_ready("alertmanager", f"http://127.0.0.1:{am_port}/-/ready")
            from tests.support.debian import extract_package

            run.start("prometheus", [str(extract_package("prometheus") / "usr/bin/prometheus"),
                                     f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{prom_port}",
                                     # Alerts evaluated before Alertmanager is discovered are dropped and re-sent
                                     # only after the resend delay (1m by default): keep the test short.
                                     "--rules.alert.resend-delay=2s"])
            run.wait_ready("prometheus", f"http://127.0.0.1:{prom_port}/-/ready")
            in_alertmanager = []

            def arrived() -> bool:
                in_alertmanager[:] = requests.get(f"http://127.0.0.1:{am_port}/api/v2/alerts",
                                                  params={"filter": 'alertname="Heartbeat"'}, timeout=5).json()
                return bool(in_alertmanager) and bool(received)

            assert expositions.wait_for(arrived, 60), (in_alertmanager, received, run.log("alertmanager"), run.log("prometheus"))
            assert in_alertmanager[0]["labels"]["severity"] == "info"
            assert in_alertmanager[0]["receivers"] == [{"name": "heartbeat"}]
            time.sleep(3)  # would anything else be sent?
            assert {r["path"] for r in received} == {"/ping"}, received
            assert received[0]["body"]["commonLabels"]["alertname"] == "Heartbeat"
    finally:
        hook.shutdown()


def test_recorded_fixtures_are_what_the_binaries_expose_now(tmp_path: Path):
    binaries_or_skip()
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
