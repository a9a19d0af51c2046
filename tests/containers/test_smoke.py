"""Container smoke tests: `stackctl up/status/down` on a real Docker engine with the metrics services.

Images are the local ones built from Debian packages (tests.support.images), reached through the same per-service
image override a user behind a mirror would use. Grafana has no local image here, so it is disabled. The "user's
app" scraped by Prometheus is a Pushgateway container started with testcontainers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.support import images
from tests.support.loopback import free_port

pytestmark = pytest.mark.docker

if not images.docker_available():
    pytest.skip("no Docker engine reachable", allow_module_level=True)

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image cannot be pulled here


def stackctl(stack_file: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "stackctl", "-f", str(stack_file), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="module")
def local_images() -> dict[str, str]:
    return images.ensure_images(["prometheus", "alertmanager", "node-exporter", "pushgateway"])


@pytest.fixture(scope="module")
def user_app(local_images):
    """A stand-in for the user's own app: a Pushgateway exposing /metrics on a host port."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    container = (DockerContainer(local_images["pushgateway"]).with_exposed_ports(9091)
                 .waiting_for(HttpWaitStrategy(9091, "/-/ready").with_startup_timeout(30)))
    container.start()
    try:
        yield {"port": int(container.get_exposed_port(9091))}
    finally:
        container.stop()


def write_stack(directory: Path, project: str, local_images: dict[str, str], **overrides) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "project": project,
        "preset": "metrics",
        "services": {
            "grafana": {"enabled": False},
            "prometheus": {"image": local_images["prometheus"], "port": free_port(), "scrape_interval": "2s",
                           "evaluation_interval": "2s"},
            "alertmanager": {"image": local_images["alertmanager"], "port": free_port()},
            "node_exporter": {"image": local_images["node-exporter"]},
        },
    }
    for service, settings in overrides.pop("services", {}).items():
        data["services"].setdefault(service, {}).update(settings)
    data.update(overrides)
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def force_down(stack_file: Path) -> None:
    result = stackctl(stack_file, "down", "--volumes", "--yes", timeout=120)
    if result.returncode != 0 and "no bundle" not in result.stderr:
        print(result.stdout, result.stderr)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images, user_app):
    project = f"smoke-{uuid.uuid4().hex[:8]}"
    directory = tmp_path_factory.mktemp("stack")
    # A receiver whose webhook URL is a user-supplied secret: it must reach Alertmanager only as a file.
    webhook = f"https://hooks.slack.example/services/{uuid.uuid4().hex}"
    (directory / "slack-webhook").write_text(webhook + "\n")
    stack_file = write_stack(directory, project, local_images, scrape_targets=[
        {"job": "user-app", "targets": [f"host.docker.internal:{user_app['port']}"]}],
        alerting={"receivers": [{"name": "ops", "type": "slack", "channel": "#ops",
                                 "api_url": {"from_file": "slack-webhook"}}]})
    config = yaml.safe_load(stack_file.read_text())
    info = {"file": stack_file, "project": project, "webhook": webhook,
            "prometheus": f"http://127.0.0.1:{config['services']['prometheus']['port']}",
            "alertmanager": f"http://127.0.0.1:{config['services']['alertmanager']['port']}"}
    try:
        yield info
    finally:
        force_down(stack_file)


def test_01_up_reaches_healthy(stack):
    result = stackctl(stack["file"], "up", "--timeout", "120", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {s["service"] for s in report["services"]} == {"prometheus", "alertmanager", "node-exporter"}
    # Progress went to stderr, one line per state change, for every service.
    for service in ("prometheus", "alertmanager", "node-exporter"):
        assert f"{service}: healthy" in result.stderr


def test_02_status_json_reports_every_service_healthy(stack):
    result = stackctl(stack["file"], "status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    rows = {row["service"]: row for row in report["services"]}
    assert set(rows) == {"prometheus", "alertmanager", "node-exporter"}
    for row in rows.values():
        assert (row["state"], row["health"], row["phase"]) == ("running", "healthy", "ready")
        assert row["image"].startswith("local/")
    assert rows["prometheus"]["url"] == stack["prometheus"].replace("127.0.0.1", "localhost")


def test_02b_logs_urls_and_doctor_on_a_running_stack(stack):
    logs = stackctl(stack["file"], "logs", "prometheus", "--tail", "20")
    assert logs.returncode == 0, logs.stderr
    assert "prometheus-1" in logs.stdout and "Server is ready to receive web requests" in logs.stdout
    urls = json.loads(stackctl(stack["file"], "urls", "--json").stdout)
    assert {row["service"] for row in urls} == {"prometheus", "alertmanager"}
    doctor = stackctl(stack["file"], "doctor", "--json")
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and report["ok"], report
    names = {c["name"]: c for c in report["checks"]}
    assert names["docker engine"]["status"] == "ok" and names["docker compose"]["status"] == "ok"
    ports = [c for name, c in names.items() if name.startswith("port ")]
    assert ports and all("this stack" in c["found"] for c in ports)  # its own containers hold them
    assert all(c["status"] == "ok" for name, c in names.items() if name.startswith("image local/"))


def test_02c_receiver_secret_is_a_file_for_alertmanager_only(stack):
    import docker

    (container,) = docker.from_env().containers.list(filters={"label": [
        f"com.docker.compose.project={stack['project']}", "com.docker.compose.service=alertmanager"]})
    secret = "/run/secrets/alertmanager_ops_api_url"
    assert stack["webhook"] not in json.dumps(container.attrs)  # not in env, labels, command or mounts
    code, output = container.exec_run(["stat", "-c", "%u %a", secret])
    assert (code, output.decode().strip()) == (0, "65534 400")
    code, output = container.exec_run(["cat", secret])
    assert code == 0 and output.decode().strip() == stack["webhook"]
    bundle = stack["file"].parent / "build"
    assert not [p for p in bundle.rglob("*") if p.is_file() and stack["webhook"].encode() in p.read_bytes()]
    status = requests.get(f"{stack['alertmanager']}/api/v2/status", timeout=5).json()
    assert f"api_url_file: {secret}" in status["config"]["original"]


def test_03_prometheus_scrapes_every_target(stack):
    def targets():
        data = requests.get(f"{stack['prometheus']}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in data}
        return health if health and all(h == "up" for h in health.values()) and len(health) == 4 else None

    health = wait_for(targets, 60, "all scrape targets up")
    assert set(health) == {"prometheus", "alertmanager", "node-exporter", "user-app"}
    result = requests.get(f"{stack['prometheus']}/api/v1/query", params={"query": "up"}, timeout=5).json()
    assert {r["metric"]["job"]: r["value"][1] for r in result["data"]["result"]} == {
        "prometheus": "1", "alertmanager": "1", "node-exporter": "1", "user-app": "1"}


def test_04_prometheus_sees_alertmanager(stack):
    data = requests.get(f"{stack['prometheus']}/api/v1/alertmanagers", timeout=5).json()["data"]
    assert [a["url"] for a in data["activeAlertmanagers"]] == ["http://alertmanager:9093/api/v2/alerts"]


def test_04b_verify_passes_on_the_stack_it_brought_up(stack):
    result = stackctl(stack["file"], "verify", "--json", "--timeout", "60")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], [c for c in report["checks"] if c["status"] == "failed"]
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["scrape:targets"] == statuses["alerts:routing"] == statuses["metrics:path"] == "passed"
    assert statuses["alerts:delivery"] == "skipped"  # --deep only
    # The Slack receiver routes critical and warning alerts; the probe was silenced, so nothing was sent.
    routing = next(c for c in report["checks"] if c["name"] == "alerts:routing")
    assert "critical -> ops; warning -> ops" in routing["detail"]


def test_04c_up_verify_runs_verify_once_healthy_in_one_json_document(stack):
    result = stackctl(stack["file"], "up", "--verify", "--json")
    report = json.loads(result.stdout)  # one document: the statuses and the verify report
    assert result.returncode == 0 and report["ok"], result.stderr
    assert {s["service"] for s in report["services"]} == {"prometheus", "alertmanager", "node-exporter"}
    assert {c["name"] for c in report["verify"]["checks"] if c["status"] == "passed"} >= {
        "ready:prometheus", "scrape:targets", "alerts:routing"}


def test_05_up_again_changes_nothing(stack):
    import docker

    client = docker.from_env()
    before = {c.name: (c.id, c.attrs["State"]["StartedAt"])
              for c in client.containers.list(filters={"label": f"com.docker.compose.project={stack['project']}"})}
    result = stackctl(stack["file"], "up")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    after = {c.name: (c.id, c.attrs["State"]["StartedAt"])
             for c in client.containers.list(filters={"label": f"com.docker.compose.project={stack['project']}"})}
    assert after == before


def container_ids(project: str) -> dict[str, str]:
    import docker

    found = docker.from_env().containers.list(filters={"label": f"com.docker.compose.project={project}"})
    return {c.labels["com.docker.compose.service"]: c.id for c in found}


def test_05b_a_stack_change_recreates_only_the_affected_service(stack):
    before = container_ids(stack["project"])
    data = yaml.safe_load(stack["file"].read_text())
    data["services"]["prometheus"]["evaluation_interval"] = "3s"  # only prometheus.yml changes
    stack["file"].write_text(yaml.safe_dump(data))
    result = stackctl(stack["file"], "up", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    after = container_ids(stack["project"])
    assert after["prometheus"] != before["prometheus"]
    assert after["alertmanager"] == before["alertmanager"]
    assert after["node-exporter"] == before["node-exporter"]
    config = requests.get(f"{stack['prometheus']}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    assert "evaluation_interval: 3s" in config


def test_06_stopped_container_makes_status_fail_and_name_it(stack):
    import docker

    client = docker.from_env()
    (container,) = client.containers.list(filters={"label": [f"com.docker.compose.project={stack['project']}",
                                                              "com.docker.compose.service=node-exporter"]})
    container.stop(timeout=5)
    result = stackctl(stack["file"], "status", "--json")
    assert result.returncode == 1
    rows = {row["service"]: row for row in json.loads(result.stdout)["services"]}
    assert rows["node-exporter"]["phase"] == "failed" and rows["node-exporter"]["state"] == "exited"
    assert rows["prometheus"]["phase"] == "ready"
    human = stackctl(stack["file"], "status")
    assert human.returncode == 1 and "node-exporter is exited" in human.stderr
    # up repairs it and waits for health again.
    repaired = stackctl(stack["file"], "up", "--timeout", "60")
    assert repaired.returncode == 0, repaired.stderr
    assert stackctl(stack["file"], "status").returncode == 0


def test_07_down_then_up_keeps_data(stack):
    silence = {
        "matchers": [{"name": "alertname", "value": "SmokeTest", "isRegex": False}],
        "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "smoke-test", "comment": "must survive down/up",
    }
    response = requests.post(f"{stack['alertmanager']}/api/v2/silences", json=silence, timeout=5)
    assert response.status_code == 200, response.text
    silence_id = response.json()["silenceID"]
    down = stackctl(stack["file"], "down")
    assert down.returncode == 0, down.stderr
    assert "data volumes kept" in down.stdout
    import docker

    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"label": f"com.docker.compose.project={stack['project']}"})
    up = stackctl(stack["file"], "up", "--timeout", "120")
    assert up.returncode == 0, up.stderr
    silences = requests.get(f"{stack['alertmanager']}/api/v2/silences", timeout=5).json()
    assert silence_id in {s["id"] for s in silences if s["status"]["state"] == "active"}


def test_08_down_volumes_yes_removes_data(stack):
    import docker

    client = docker.from_env()
    label = f"com.docker.compose.project={stack['project']}"
    assert client.volumes.list(filters={"label": label})
    refused = stackctl(stack["file"], "down", "--volumes")  # no terminal, no --yes: refuses, deletes nothing
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert client.volumes.list(filters={"label": label})
    result = stackctl(stack["file"], "down", "--volumes", "--yes")
    assert result.returncode == 0, result.stderr
    assert not client.volumes.list(filters={"label": label})
    assert not client.containers.list(all=True, filters={"label": label})


def test_broken_service_makes_up_fail_naming_it_with_its_log(tmp_path, local_images):
    """An image that cannot run the rendered command: up must stop waiting, name the service, show its log."""
    import docker

    client = docker.from_env()
    # Alertmanager's binary tagged as a Prometheus version: it rejects Prometheus's flags and exits.
    broken = f"local/prometheus-broken-{uuid.uuid4().hex[:8]}:2.42.0"  # unique: other runs share the engine
    client.images.get(local_images["alertmanager"]).tag(broken)
    stack_file = write_stack(tmp_path, f"smoke-broken-{uuid.uuid4().hex[:6]}", local_images,
                             services={"prometheus": {"image": broken}})
    try:
        result = stackctl(stack_file, "up", "--timeout", "90")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "not healthy: prometheus" in result.stderr
        assert "last 30 log lines of prometheus" in result.stderr
        assert "storage.tsdb.path" in result.stderr  # alertmanager's complaint about the unknown flag
    finally:
        force_down(stack_file)
        client.images.remove(broken, force=True, noprune=True)


def test_a_dependency_that_never_turns_healthy_is_named_with_its_healthcheck_output_and_log(tmp_path, local_images):
    """Compose itself waits for Alertmanager (Prometheus depends on it being healthy) and says only "dependency
    failed to start". up must name the service and show its healthcheck output and log. Takes about 2.5 minutes:
    Docker calls a container unhealthy only after its start period and every retry."""
    import docker

    client = docker.from_env()
    stuck = f"local/alertmanager-stuck-{uuid.uuid4().hex[:8]}:0.25.0"  # unique: other runs share the engine
    # Alertmanager's image, but the process never listens: the healthcheck (wget of /-/ready) can never pass.
    holder = client.containers.create(local_images["alertmanager"])
    try:
        holder.commit(repository=stuck.split(":")[0], tag=stuck.split(":")[1], changes=[
            'ENTRYPOINT ["/bin/sh", "-c", "echo alertmanager stand-in that never listens; exec sleep 100000", "-"]'])
    finally:
        holder.remove()
    stack_file = write_stack(tmp_path, f"smoke-stuck-{uuid.uuid4().hex[:6]}", local_images,
                             services={"alertmanager": {"image": stuck}})
    try:
        result = stackctl(stack_file, "up", "--timeout", "240", timeout=400)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "docker compose up stopped: alertmanager is unhealthy" in result.stderr
        assert "last healthcheck output of alertmanager:" in result.stderr
        assert "Connection refused" in result.stderr or "can't connect" in result.stderr
        assert "last 30 log lines of alertmanager:" in result.stderr
        assert "alertmanager stand-in that never listens" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        force_down(stack_file)
        client.images.remove(stuck, force=True, noprune=True)  # a container left by an interrupted run holds it


def test_commands_say_clearly_when_the_engine_is_unreachable(tmp_path, local_images):
    stack_file = write_stack(tmp_path, "smoke-noengine", local_images)
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    for args in (["status"], ["up", "--timeout", "5"], ["logs"], ["down"]):
        if args == ["logs"] or args == ["down"]:
            assert stackctl(stack_file, "render").returncode == 0
        result = subprocess.run([sys.executable, "-m", "stackctl", "-f", str(stack_file), *args], capture_output=True,
                                text=True, env=env, timeout=60)
        assert result.returncode == 3, (args, result.stderr)
        assert "cannot reach the Docker engine" in result.stderr
        assert "Traceback" not in result.stderr
