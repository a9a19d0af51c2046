"""The real Prometheus binary (Debian's 2.42) runs the rendered config and rules on loopback.

Beyond what promtool checks statically: Prometheus loads every rule pack and evaluates every rule without an error,
the SLO rules included. (Debian's Alertmanager reads its default templates from /usr/share, so it runs in the local
image instead: see test_smoke_docker and test_alerting.)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from stackctl.shells.stackfile import load_stack
from stackctl.core.render import render_bundle
from stackctl.shells.fs import write_bundle
from tests.support import debian

pytestmark = pytest.mark.process
ROOT = Path(__file__).resolve().parents[2]

STACK = """
preset: metrics
services:
  prometheus:
    evaluation_interval: 1s
rules:
  slos:
    - {name: checkout-availability, service: checkout, objective: 99.9, window: 30d}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(package: str, name: str) -> Path:
    try:
        return debian.extract_package(package) / "usr" / "bin" / name
    except Exception as error:  # no apt here: skipped, which STACKCTL_REQUIRE_ALL turns into a failure in CI
        pytest.skip(f"cannot unpack Debian's {package}: {error}")


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{process.stderr.read().decode()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("process")
    (root / "stack.yaml").write_text(STACK)
    stack = load_stack(root / "stack.yaml", environ={})
    write_bundle(render_bundle(stack), root / "build")
    return root / "build"


def run(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_prometheus_loads_and_evaluates_every_rendered_rule(bundle: Path, tmp_path: Path):
    prometheus = binary("prometheus", "prometheus")
    config_dir = bundle / "configs" / "prometheus"
    # The rendered config names the rules as mounted in the container; point it at the bundle's copy.
    config = tmp_path / "prometheus.yml"
    config.write_text((config_dir / "prometheus.yml").read_text().replace(
        "/etc/prometheus/rules/*.yml", str(config_dir / "rules" / "*.yml")))
    port = free_port()
    process = run([str(prometheus), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"], tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", process)

        def rules():
            groups = requests.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5).json()["data"]["groups"]
            return [rule for group in groups for rule in group["rules"]]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(r.get("health") == "unknown" for r in rules()):
            time.sleep(0.5)
        loaded = rules()
        names = {r["name"] for r in loaded}
        assert {"TargetDown", "HostCpuUsageHigh", "HTTPErrorRatioHigh", "SLOErrorBudgetBurn",
                "job:http_requests:rate5m", "slo:error_budget_remaining:ratio"} <= names
        broken = {r["name"]: r.get("lastError") for r in loaded if r.get("health") != "ok"}
        assert broken == {}
        files = {g["file"] for g in requests.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5)
                 .json()["data"]["groups"]}
        assert {Path(f).name for f in files} == {p.name for p in (config_dir / "rules").glob("*.yml")}
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Instrumented apps of either naming convention (issue: OpenTelemetry apps get the same alerts) --------------


@contextmanager
def app(convention: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """tests.support.apps serving on loopback; yields (app port, metrics port)."""
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.support.apps", convention, "--port", str(port),
                                "--metrics-port", str(metrics_port)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        yield port, metrics_port
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def prometheus_for(stack_text: str, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus with the bundle rendered from `stack_text`; yields its base URL."""
    (tmp_path / "stack.yaml").write_text(stack_text)
    stack = load_stack(tmp_path / "stack.yaml", environ={})
    build = tmp_path / "build"
    write_bundle(render_bundle(stack), build)
    config_dir = build / "configs" / "prometheus"
    config = tmp_path / "prometheus.yml"
    config.write_text((config_dir / "prometheus.yml").read_text().replace(
        "/etc/prometheus/rules/*.yml", str(config_dir / "rules" / "*.yml")))
    port = free_port()
    process = run([str(binary("prometheus", "prometheus")), f"--config.file={config}",
                   f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"], tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def query(base: str, expr: str) -> list[dict]:
    return requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]


@pytest.mark.parametrize("convention", ["otel", "prometheus-client"])
def test_http_alerts_and_slos_work_for_a_real_app_of_either_convention(convention, tmp_path):
    """A real app instrumented with the OpenTelemetry SDK (or prometheus_client) answers 1 request in 5 with a 500;
    Prometheus 2.42, scraping it with the rendered config and rules, records its error ratio, its SLO burns, and
    HTTPErrorRatioHigh goes pending."""
    job = f"checkout-{convention}"
    with app(convention, tmp_path) as (port, metrics_port):
        stack = (f"preset: metrics\nservices:\n  prometheus:\n    scrape_interval: 1s\n    evaluation_interval: 1s\n"
                 f"scrape_targets:\n  - {{job: {job}, targets: ['127.0.0.1:{metrics_port}']}}\n"
                 f"rules:\n  slos:\n    - {{name: checkout, service: {job}, objective: 99.9}}\n")
        with prometheus_for(stack, tmp_path) as base:
            deadline = time.monotonic() + 60
            sent = 0
            ratio, pending, sli = [], [], []
            while time.monotonic() < deadline and not (ratio and pending and sli):
                for path in ("/ok", "/ok", "/slow", "/ok", "/fail"):  # bounded: at most 60 s of 25 requests/s
                    requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                    sent += 1
                time.sleep(0.2)
                ratio = query(base, f'job:http_requests_error_ratio:rate5m{{job="{job}"}} > 0.1')
                sli = query(base, 'slo:sli_error:ratio_rate5m{slo="checkout"} > 0.1')
                pending = [a for a in requests.get(f"{base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                           if a["labels"]["alertname"] == "HTTPErrorRatioHigh" and a["labels"].get("job") == job]
            assert ratio, f"no error ratio recorded for {job} after {sent} requests"
            assert 0.1 < float(ratio[0]["value"][1]) <= 0.3, ratio
            assert sli and sli[0]["metric"]["service"] == job, sli
            assert pending and {a["state"] for a in pending} <= {"pending", "firing"}, pending
            assert {a["labels"]["severity"] for a in pending} == {"warning", "critical"}
            codes = {r["metric"]["code"] for r in query(base, f'job_code:http_requests:rate5m{{job="{job}"}}')}
            assert codes == {"200", "500"}, codes
            p95 = query(base, f'job:http_request_duration_seconds:p95_5m{{job="{job}"}}')
            assert p95 and 0.04 < float(p95[0]["value"][1]) < 1, p95  # /slow takes 50 ms: seconds, not ms
