"""The real Prometheus binary (Debian's 2.42) runs the rendered config and rules on loopback.

Beyond what promtool checks statically: Prometheus loads every rule pack and evaluates every rule without an error,
the SLO rules included. (Debian's Alertmanager reads its default templates from /usr/share, so it runs in the local
image instead: see test_smoke_docker and test_alerting.)
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from stackctl.shells.stackfile import load_stack
from stackctl.core.render import render_bundle
from stackctl.shells.fs import write_bundle
from tests.support import debian

pytestmark = pytest.mark.process

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
