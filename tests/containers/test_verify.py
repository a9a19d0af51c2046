"""`stackctl verify` against a real Prometheus, Alertmanager and Pushgateway (the local images built from Debian's
packages, started by `stackctl up`): every metrics and alert check passes on a healthy stack, --deep included (real
delivery from the Alertmanager container to verify's webhook on the host), and each fails with the right message
when one piece is broken: Alertmanager stopped, a rule with an evaluation error, a scrape target down, a route that
sends critical alerts nowhere."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.containers.test_smoke import (force_down, free_port, local_images, stackctl, user_app, wait_for,  # noqa: F401
                                         write_stack)
from tests.support import images

pytestmark = pytest.mark.docker

if not images.docker_available():
    pytest.skip("no Docker engine reachable", allow_module_level=True)

BROKEN_RULES = """groups:
  - name: verify-test.broken
    rules:
      # Evaluation error: many-to-many matching ("found duplicate series for the match group").
      - record: verify_test:broken
        expr: up * on() up
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images, user_app):  # noqa: F811
    directory = tmp_path_factory.mktemp("verify-stack")
    project = f"verify-{uuid.uuid4().hex[:8]}"
    stack_file = write_stack(directory, project, local_images, scrape_targets=[
        {"job": "user-app", "targets": [f"host.docker.internal:{user_app['port']}"]}],
        alerting={"receivers": [{"name": "pager", "type": "webhook", "severities": ["critical"],
                                 "url": "http://192.0.2.1:9/never-called"}]},
        verify={"webhook_port": free_port()})
    try:
        up = stackctl(stack_file, "up", "--timeout", "120")
        assert up.returncode == 0, up.stdout + up.stderr
        config = json.loads(stackctl(stack_file, "urls", "--json").stdout)
        urls = {row["service"]: row["url"].replace("localhost", "127.0.0.1") for row in config}
        yield {"file": stack_file, "project": project, "bundle": directory / "build", **urls}
    finally:
        force_down(stack_file)


def job_health(stack: dict, job: str) -> str:
    targets = requests.get(f"{stack['prometheus']}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return next(t["health"] for t in targets if t["labels"]["job"] == job)


def checks(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_every_metrics_and_alert_check_passes_deep_included(stack):
    result = stackctl(stack["file"], "verify", "--deep", "--json", "--timeout", "60")
    got = checks(result)
    assert result.returncode == 0, {n: c["detail"] for n, c in got.items() if c["status"] != "passed"}
    assert {n for n, c in got.items() if c["status"] == "passed"} == {
        "ready:prometheus", "scrape:targets", "scrape:rules", "scrape:alertmanager", "metrics:path",
        "alerts:rule-path", "ready:alertmanager", "alerts:routing", "alerts:delivery", "ready:node-exporter"}
    assert "critical -> pager; warning -> default; info -> null" in got["alerts:routing"]["detail"]
    assert "remote-write to prometheus /api/v1/write" in got["metrics:path"]["detail"]  # Prometheus 2.42: no OTLP
    assert "user-app" in got["scrape:targets"]["detail"]
    # Nothing synthetic is left: no alert in Alertmanager, no series in Prometheus, no failed notification.
    def synthetic_alerts():
        alerts = requests.get(f"{stack['alertmanager']}/api/v2/alerts", timeout=5).json()
        return [a["labels"]["alertname"] for a in alerts if "stackctl_verify" in a["labels"]]

    assert wait_for(lambda: synthetic_alerts() == [], 10, "the synthetic alerts to be resolved")
    failed = requests.get(f"{stack['prometheus']}/api/v1/query", timeout=5,
                          params={"query": "sum(alertmanager_notifications_failed_total)"}).json()
    assert failed["data"]["result"][0]["value"][1] == "0"
    query = requests.get(f"{stack['prometheus']}/api/v1/query", timeout=5,
                         params={"query": "stackctl_verify_probe or stackctl_verify_rule_probe"}).json()
    assert query["data"]["result"] == []


def test_human_output_is_a_table_and_a_summary(stack):
    result = stackctl(stack["file"], "verify", "--only", "scrape", "--only", "ready:prometheus")
    assert result.returncode == 0, result.stderr
    assert "scrape:targets" in result.stdout and "4 passed, 0 failed, 0 skipped" in result.stdout
    assert "alerts:routing" not in result.stdout


def test_a_route_that_sends_critical_nowhere_fails_routing(stack):
    config = stack["bundle"] / "configs/alertmanager/alertmanager.yml"
    original = config.read_text()
    assert '        - receiver: "pager"\n' in original
    config.write_text(original.replace('        - receiver: "pager"\n', '        - receiver: "null"\n'))
    try:
        assert requests.post(f"{stack['alertmanager']}/-/reload", timeout=10).status_code == 200
        result = stackctl(stack["file"], "verify", "--only", "alerts:routing")
        assert result.returncode == 1
        assert "critical alerts reach null, stack.yaml routes them to pager" in result.stderr
        assert f"look: {stack['alertmanager']}/#/status".replace("127.0.0.1", "127.0.0.1") in result.stderr
    finally:
        config.write_text(original)
        requests.post(f"{stack['alertmanager']}/-/reload", timeout=10)
    assert stackctl(stack["file"], "verify", "--only", "alerts:routing").returncode == 0


def test_a_rule_with_an_evaluation_error_fails_rules(stack):
    broken = stack["bundle"] / "configs/prometheus/rules/broken.yml"
    broken.write_text(BROKEN_RULES)
    try:
        assert requests.post(f"{stack['prometheus']}/-/reload", timeout=10).status_code == 200
        result = stackctl(stack["file"], "verify", "--only", "scrape:rules", "--json", "--timeout", "20")
        rules = checks(result)["scrape:rules"]
        assert result.returncode == 1 and rules["status"] == "failed"
        assert "verify_test:broken (group verify-test.broken, broken.yml)" in rules["detail"]
        assert "duplicate series" in rules["detail"]
        assert rules["look"] == f"{stack['prometheus']}/rules"
    finally:
        broken.unlink()
        requests.post(f"{stack['prometheus']}/-/reload", timeout=10)


def test_a_scrape_target_down_fails_targets_naming_the_job(stack, user_app):  # noqa: F811
    import docker

    (gateway,) = [c for c in docker.from_env().containers.list()
                  if c.ports.get("9091/tcp") and int(c.ports["9091/tcp"][0]["HostPort"]) == user_app["port"]]
    gateway.pause()  # scrapes time out
    try:
        wait_for(lambda: job_health(stack, "user-app") == "down", 30, "Prometheus to see the user's app down")
        result = stackctl(stack["file"], "verify", "--only", "scrape:targets", "--json", "--timeout", "30")
        targets = checks(result)["scrape:targets"]
        assert result.returncode == 1
        assert targets["detail"].startswith("user-app (http://host.docker.internal:")
        assert targets["look"] == f"{stack['prometheus']}/targets"  # the user's app: Prometheus' targets page
    finally:
        gateway.unpause()


def test_alertmanager_stopped_fails_every_check_that_needs_it(stack):
    import docker

    (am,) = docker.from_env().containers.list(filters={"label": [
        f"com.docker.compose.project={stack['project']}", "com.docker.compose.service=alertmanager"]})
    am.stop(timeout=5)
    try:
        # scrape:alertmanager reports Prometheus' own view, as of its last scrape of Alertmanager.
        wait_for(lambda: job_health(stack, "alertmanager") == "down", 30, "Prometheus to see Alertmanager down")
        result = stackctl(stack["file"], "verify", "--json", "--timeout", "30")
        got = checks(result)
        assert result.returncode == 1
        assert got["ready:alertmanager"]["status"] == "failed"
        assert "no answer from" in got["ready:alertmanager"]["detail"]
        assert got["alerts:routing"]["status"] == "failed"
        assert "no answer from Alertmanager" in got["alerts:routing"]["detail"]
        assert got["scrape:alertmanager"]["status"] == "failed"
        assert "Prometheus sends alerts to http://alertmanager:9093/api/v2/alerts, which does not answer" in \
            got["scrape:alertmanager"]["detail"]
        for name in ("ready:alertmanager", "alerts:routing", "scrape:alertmanager"):
            assert got[name]["look"] == "stackctl logs alertmanager"
        assert got["metrics:path"]["status"] == "passed"  # the rest still answers
    finally:
        am.start()
    up = stackctl(stack["file"], "up", "--timeout", "60")
    assert up.returncode == 0, up.stderr
