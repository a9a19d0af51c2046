"""Remote write end to end with real binaries: Debian's Prometheus 2.42 runs the rendered config and sends its samples
to a second Prometheus whose remote-write receiver requires basic auth (its web config, bcrypt-hashed). The password
arrives only through the file the rendered config names: with it the samples land, with a wrong one they do not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml

from stackctl.core.render import render_bundle
from stackctl.shells.fs import write_bundle
from stackctl.shells.stackfile import load_stack
from tests.support.loopback import debian_binary, free_port, processes, require_debian

pytestmark = pytest.mark.process


def query(port: int, promql: str) -> list:
    return requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}, timeout=5).json()["data"][
        "result"]


def start_pair(run, tmp_path: Path, password_given: str) -> tuple[int, int]:
    """A receiver requiring team-a's password, and a sender running the rendered config with `password_given` in
    the file the config names. Returns (receiver port, sender port)."""
    import bcrypt

    require_debian("prometheus")
    prometheus = str(debian_binary("prometheus"))
    receiver_port, sender_port = free_port(), free_port()
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {
        "team-a": bcrypt.hashpw(b"right-password-123", bcrypt.gensalt(rounds=4)).decode()}}))
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump({
        "preset": "metrics",
        "services": {"prometheus": {"scrape_interval": "1s", "remote_write": [{
            "url": f"http://127.0.0.1:{receiver_port}/api/v1/write", "name": "central",
            "basic_auth": {"username": "team-a", "password": {"from_file": "central-password"}},
            "headers": {"X-Scope-OrgID": "team-a"}, "queue": {"batch_send_deadline": "1s"}}]}}}))
    stack = load_stack(tmp_path / "stack.yaml", environ={})
    write_bundle(render_bundle(stack), tmp_path / "build")
    password_file = tmp_path / "password-as-mounted"
    password_file.write_text(password_given)
    rendered = (tmp_path / "build/configs/prometheus/prometheus.yml").read_text()
    assert "/run/secrets/prometheus_remote_write_central_password" in rendered and password_given not in rendered
    config = tmp_path / "sender.yml"
    config.write_text(rendered.replace("/run/secrets/prometheus_remote_write_central_password", str(password_file))
                      .replace("/etc/prometheus/rules/*.yml", str(tmp_path / "build/configs/prometheus/rules/*.yml"))
                      .replace("localhost:9090", f"127.0.0.1:{sender_port}"))
    run.start("receiver", [prometheus, f"--storage.tsdb.path={tmp_path / 'receiver'}", "--config.file=/dev/null",
                           f"--web.listen-address=127.0.0.1:{receiver_port}", f"--web.config.file={web}",
                           "--web.enable-remote-write-receiver"])
    run.start("sender", [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'sender'}",
                         f"--web.listen-address=127.0.0.1:{sender_port}"])
    run.wait_ready("sender", f"http://127.0.0.1:{sender_port}/-/ready")
    return receiver_port, sender_port


def test_samples_reach_the_backend_with_the_password_from_the_file(tmp_path):
    with processes(tmp_path) as run:
        receiver, _ = start_pair(run, tmp_path, "right-password-123\n")
        deadline, found = time.monotonic() + 30, []
        while time.monotonic() < deadline and not found:
            found = requests.get(f"http://127.0.0.1:{receiver}/api/v1/query", params={"query": 'up{job="prometheus"}'},
                                 auth=("team-a", "right-password-123"), timeout=5).json()["data"]["result"]
            time.sleep(0.5)
        assert found and found[0]["metric"]["stack"] == "stackctl", "the sender's own up series arrived"


def test_a_wrong_password_is_refused_by_the_backend(tmp_path):
    with processes(tmp_path) as run:
        receiver, sender = start_pair(run, tmp_path, "wrong-password")
        deadline, failed = time.monotonic() + 30, 0.0
        while time.monotonic() < deadline and not failed:
            result = query(sender, 'sum(prometheus_remote_storage_samples_failed_total{remote_name="central"})'
                                   ' + sum(prometheus_remote_storage_samples_retried_total{remote_name="central"})')
            failed = float(result[0]["value"][1]) if result else 0.0
            time.sleep(0.5)
        assert failed > 0, "the sender saw its samples refused"
        landed = requests.get(f"http://127.0.0.1:{receiver}/api/v1/query", params={"query": "up"},
                              auth=("team-a", "right-password-123"), timeout=5).json()["data"]["result"]
        assert landed == []
