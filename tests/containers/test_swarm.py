"""target: swarm on the real engine: a single-node swarm (made here, and left afterwards, only when the engine was
not in one), the local images built from Debian packages, `stackctl up/status/logs/verify/secrets rotate/down`.

This kernel has no IPVS, so Swarm's virtual IPs and routing mesh do not work here: the stacks use
`swarm.endpoint_mode: dnsrr` (services find each other's tasks by DNS; published ports open on the node running the
task). The default `vip` differs only in the stack file, which unit tests cover. Each stack places its data by a node
label of its own, added to this node for the run and removed afterwards; stack names are unique, and nothing is
removed that these tests did not create."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.containers.test_smoke import free_port, local_images, stackctl, wait_for  # noqa: F401
from tests.support import images

pytestmark = pytest.mark.docker

if not images.docker_available():
    pytest.skip("no Docker engine reachable", allow_module_level=True)

SLACK = "https://hooks.slack.example/services/T0/B0/{}"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
    return result


@pytest.fixture(scope="module")
def swarm_node():
    """This engine as a swarm manager carrying a data label of this run; leaves the swarm only if it made it (and
    removes docker_gwbridge only if swarm init made it: `docker network rm` refuses while anything uses it)."""
    info = json.loads(docker("info", "--format", "{{json .Swarm}}").stdout)
    created = False
    # swarm init also makes the docker_gwbridge network, which leaving the swarm keeps: removed too if made here.
    had_gwbridge = docker("network", "inspect", "docker_gwbridge", check=False).returncode == 0
    if info["LocalNodeState"] == "inactive":
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        created = True
        info = json.loads(docker("info", "--format", "{{json .Swarm}}").stdout)
    elif not info.get("ControlAvailable"):
        pytest.skip("this engine is a swarm worker; the Swarm tests need a manager")
    key = f"stackctl-test-{uuid.uuid4().hex[:8]}"
    docker("node", "update", "--label-add", f"{key}=true", info["NodeID"])
    try:
        yield {"node": info["NodeID"], "label": f"{key}=true"}
    finally:
        docker("node", "update", "--label-rm", key, info["NodeID"], check=False)
        if created:
            docker("swarm", "leave", "--force", check=False)
            if not had_gwbridge:
                docker("network", "rm", "docker_gwbridge", check=False)


def write_swarm_stack(directory: Path, project: str, label: str, services: dict, **swarm) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {"project": project, "preset": "metrics", "target": "swarm",
            "swarm": {"endpoint_mode": "dnsrr", "data_label": label, "forwarder_image": "local/prometheus:2.42.0",
                      **swarm},
            "services": services, "verify": {"webhook_port": free_port()}}
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def remove_stack(stack_file: Path, project: str) -> None:
    """stackctl down --volumes, then whatever of this project is left (only its own objects)."""
    stackctl(stack_file, "down", "--volumes", "--yes", timeout=180)
    docker("stack", "rm", project, check=False)
    for kind in ("volume", "secret", "config"):
        names = docker(kind, "ls", "-q", "--filter", f"label=com.docker.stack.namespace={project}", check=False)
        for name in names.stdout.split():
            docker(kind, "rm", name, check=False)


def tasks(project: str) -> dict[str, set[str]]:
    """Running task ids by service (compose name)."""
    import docker as sdk

    found = {}
    for service in sdk.from_env().services.list(filters={"label": f"com.docker.stack.namespace={project}"}):
        found[service.name.removeprefix(f"{project}_")] = {
            t["ID"] for t in service.tasks() if t["Status"]["State"] == "running" and t["DesiredState"] == "running"}
    return found


def objects(kind: str, project: str) -> set[str]:
    listed = docker(kind, "ls", "--format", "{{.Name}}", "--filter", f"label=com.docker.stack.namespace={project}")
    return set(listed.stdout.split())


def task_container(project: str, service: str):
    import docker as sdk

    (container,) = sdk.from_env().containers.list(
        filters={"label": f"com.docker.swarm.service.name={project}_{service}"})
    return container


@pytest.fixture(scope="module")
def stack(tmp_path_factory, local_images, swarm_node):  # noqa: F811
    project = f"swarm-{uuid.uuid4().hex[:8]}"
    directory = tmp_path_factory.mktemp("swarm-stack")
    (directory / "slack-url").write_text(SLACK.format("first"))
    port = free_port()
    stack_file = write_swarm_stack(directory, project, swarm_node["label"], {
        "grafana": {"enabled": False},
        "prometheus": {"image": local_images["prometheus"], "port": port, "scrape_interval": "2s",
                       "evaluation_interval": "2s"},
        "alertmanager": {"image": local_images["alertmanager"]},
        "node_exporter": {"image": local_images["node-exporter"]}}, publish=["prometheus"])
    data = yaml.safe_load(stack_file.read_text())
    data["alerting"] = {"receivers": [{"name": "ops", "type": "slack", "channel": "#ops",
                                       "api_url": {"from_file": "slack-url"}}]}
    stack_file.write_text(yaml.safe_dump(data))
    try:
        yield {"file": stack_file, "project": project, "prometheus": f"http://127.0.0.1:{port}", **swarm_node}
    finally:
        remove_stack(stack_file, project)


def test_01_up_deploys_and_waits_until_every_service_runs_healthy(stack):
    result = stackctl(stack["file"], "up", "--timeout", "180", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    rows = {s["service"]: s for s in report["services"]}
    assert set(rows) == {"prometheus", "alertmanager", "node-exporter"}
    for row in rows.values():
        assert (row["phase"], row["state"], row["running"], row["desired"]) == ("ready", "running", 1, 1)
        assert row["health"] == "healthy"
    for service in rows:
        assert f"{service}: healthy" in result.stderr  # progress, one line per change
    assert "Traceback" not in result.stderr


def test_02_node_exporter_runs_on_every_node_and_prometheus_finds_it_through_swarm_dns(stack):
    import docker as sdk

    services = {s.name: s.attrs["Spec"] for s in sdk.from_env().services.list(
        filters={"label": f"com.docker.stack.namespace={stack['project']}"})}
    project = stack["project"]
    assert "Global" in services[f"{project}_node-exporter"]["Mode"]
    assert services[f"{project}_prometheus"]["TaskTemplate"]["Placement"]["Constraints"] == [
        f"node.labels.{stack['label'].split('=')[0]} == true"]
    assert "Placement" not in services[f"{project}_node-exporter"]["TaskTemplate"] or not \
        services[f"{project}_node-exporter"]["TaskTemplate"]["Placement"].get("Constraints")

    def node_exporter_targets():
        data = requests.get(f"{stack['prometheus']}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        found = [t for t in data if t["labels"]["job"] == "node-exporter"]
        return found if found and all(t["health"] == "up" for t in found) else None

    (target,) = wait_for(node_exporter_targets, 60, "Prometheus to scrape node-exporter")
    assert target["discoveredLabels"]["__meta_dns_name"] == "tasks.node-exporter"
    query = requests.get(f"{stack['prometheus']}/api/v1/query", params={"query": "node_uname_info"}, timeout=5).json()
    assert len(query["data"]["result"]) == 1  # one per node: this one


def test_03_status_logs_urls_and_doctor_describe_the_swarm(stack):
    status = stackctl(stack["file"], "status")
    assert status.returncode == 0, status.stderr
    assert "1/1 running" in status.stdout and "on " in status.stdout  # node-exporter's task, by node
    logs = stackctl(stack["file"], "logs", "prometheus", "--tail", "50")
    assert logs.returncode == 0, logs.stderr
    said = logs.stdout + logs.stderr  # docker service logs passes a task's stderr on as its own
    assert f"{stack['project']}_prometheus.1@" in said and "Server is ready to receive web requests" in said
    urls = stackctl(stack["file"], "urls", "--json")
    assert [row["service"] for row in json.loads(urls.stdout)] == ["prometheus"]
    assert json.loads(urls.stdout)[0]["open_on"] == "the node running it"
    doctor = json.loads(stackctl(stack["file"], "doctor", "--json").stdout)
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["swarm"]["status"] == "ok"
    assert checks[f"node label {stack['label']}"]["status"] == "ok"
    assert "prometheus, alertmanager" in checks[f"node label {stack['label']}"]["found"]


def test_04_verify_passes_reaching_unpublished_services_through_a_forwarder_it_removes(stack):
    result = stackctl(stack["file"], "verify", "--deep", "--json", "--timeout", "90")
    report = json.loads(result.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if c["status"] != "passed"}
    assert result.returncode == 0 and report["ok"], failed
    assert failed == {}
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["ready:alertmanager"]["detail"] == "GET /-/ready answered 2xx"  # not published: the forwarder
    assert "node-exporter" in checks["scrape:targets"]["detail"]
    leftovers = docker("ps", "-aq", "--filter", f"label=org.stackctl.forwarder={stack['project']}").stdout.split()
    assert leftovers == []


def rolled_by_up(stack: dict, change) -> set[str]:
    """The services whose running tasks were replaced when `up` applied `change()`."""
    before = tasks(stack["project"])
    change()
    result = stackctl(stack["file"], "up", "--timeout", "180")
    assert result.returncode == 0, result.stderr
    after = tasks(stack["project"])
    assert set(after) == set(before)
    return {name for name in before if after[name] != before[name]}


def test_05_a_config_change_rolls_only_the_service_using_it(stack):
    configs_before = objects("config", stack["project"])

    def slower_evaluation() -> None:
        data = yaml.safe_load(stack["file"].read_text())
        data["services"]["prometheus"]["evaluation_interval"] = "3s"
        stack["file"].write_text(yaml.safe_dump(data))

    assert rolled_by_up(stack, slower_evaluation) == {"prometheus"}
    configs_after = objects("config", stack["project"])
    (old,) = configs_before - configs_after
    (new,) = configs_after - configs_before
    assert old.startswith(f"{stack['project']}_prometheus.yml-") and new.startswith(f"{stack['project']}_prometheus.yml-")
    config = requests.get(f"{stack['prometheus']}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    assert "evaluation_interval: 3s" in config


def test_06_a_changed_secret_is_a_new_swarm_secret_that_only_its_service_gets(stack):
    secrets_before = objects("secret", stack["project"])
    assert rolled_by_up(stack, lambda: (stack["file"].parent / "slack-url").write_text(SLACK.format("second"))) == {
        "alertmanager"}
    secrets_after = objects("secret", stack["project"])
    assert len(secrets_before) == len(secrets_after) == 1 and secrets_before != secrets_after
    code, output = task_container(stack["project"], "alertmanager").exec_run(
        ["cat", "/run/secrets/alertmanager_ops_api_url"])
    assert (code, output.decode().strip()) == (0, SLACK.format("second"))
    bundle = stack["file"].parent / "build"
    assert not [p for p in bundle.rglob("*") if p.is_file() and b"T0/B0" in p.read_bytes()]


def test_07_down_removes_the_services_and_keeps_the_volumes_with_their_data(stack):
    prometheus = stack["prometheus"]
    silence = {"matchers": [{"name": "alertname", "value": "SwarmTest", "isRegex": False}],
               "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z", "createdBy": "swarm-test",
               "comment": "must survive down/up"}
    # Alertmanager is not published: post the silence from inside its task.
    code, output = task_container(stack["project"], "alertmanager").exec_run(
        ["amtool", "silence", "add", "alertname=SwarmTest", "--alertmanager.url=http://127.0.0.1:9093",
         "--comment=must survive down/up", "--duration=1000h", "--author=swarm-test"])
    assert code == 0, output
    silence_id = output.decode().strip()
    volumes = objects("volume", stack["project"])
    assert volumes == {f"{stack['project']}_prometheus-data", f"{stack['project']}_alertmanager-data"}
    down = stackctl(stack["file"], "down")
    assert down.returncode == 0, down.stderr
    assert "data volumes kept" in down.stdout
    assert tasks(stack["project"]) == {}
    assert objects("secret", stack["project"]) == set() and objects("config", stack["project"]) == set()
    assert objects("volume", stack["project"]) == volumes
    up = stackctl(stack["file"], "up", "--timeout", "180")
    assert up.returncode == 0, up.stderr
    code, output = task_container(stack["project"], "alertmanager").exec_run(
        ["amtool", "silence", "query", "-q", "--alertmanager.url=http://127.0.0.1:9093"])
    assert code == 0 and silence_id in output.decode().split(), (silence, output)
    assert requests.get(f"{prometheus}/-/ready", timeout=5).status_code == 200


def test_08_down_volumes_deletes_this_nodes_volumes_and_says_others_remain(stack):
    refused = stackctl(stack["file"], "down", "--volumes")  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert tasks(stack["project"])
    result = stackctl(stack["file"], "down", "--volumes", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Volumes on other nodes remain" in result.stdout
    assert objects("volume", stack["project"]) == set() and tasks(stack["project"]) == {}


def test_up_refuses_when_no_node_carries_the_label_and_deploys_nothing(tmp_path, local_images, swarm_node):  # noqa: F811
    project = f"swarm-nolabel-{uuid.uuid4().hex[:6]}"
    stack_file = write_swarm_stack(tmp_path, project, f"stackctl-nobody-{uuid.uuid4().hex[:6]}=true", {
        "grafana": {"enabled": False}, "node_exporter": {"enabled": False},
        "prometheus": {"image": local_images["prometheus"]}, "alertmanager": {"image": local_images["alertmanager"]}})
    result = stackctl(stack_file, "up", "--timeout", "30")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no node carries stackctl-nobody-" in result.stderr and "docker node update --label-add" in result.stderr
    assert tasks(project) == {} and not (tmp_path / "build").exists()


@pytest.fixture(scope="module")
def grafana_stack(tmp_path_factory, local_images, swarm_node):  # noqa: F811
    """Grafana (a stand-in: tests.support.standins) and node-exporter, neither published."""
    import docker as sdk

    from tests.support.standins import grafana_standin

    image = grafana_standin(sdk.from_env(), local_images["prometheus"])
    project = f"swarm-rot-{uuid.uuid4().hex[:6]}"
    stack_file = write_swarm_stack(tmp_path_factory.mktemp("swarm-rotate"), project, swarm_node["label"], {
        "prometheus": {"enabled": False}, "alertmanager": {"enabled": False},
        "grafana": {"image": image}, "node_exporter": {"image": local_images["node-exporter"]}})
    try:
        up = stackctl(stack_file, "up", "--timeout", "180")
        assert up.returncode == 0, up.stdout + up.stderr
        yield {"file": stack_file, "project": project}
    finally:
        remove_stack(stack_file, project)
        sdk.from_env().images.remove(image, noprune=True)


def test_rotating_a_secret_makes_a_new_swarm_secret_and_updates_only_its_services(grafana_stack):
    project, store = grafana_stack["project"], grafana_stack["file"].parent / ".stackctl" / "secrets"
    old = (store / "grafana_admin_password").read_text().strip()
    before = tasks(project)
    secrets_before = objects("secret", project)
    result = stackctl(grafana_stack["file"], "secrets", "rotate", "grafana_admin_password", "--yes", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["changed_in"], report["recreated"]) == ("Grafana", ["grafana"])
    new = (store / "grafana_admin_password").read_text().strip()
    assert new != old and old not in result.stdout + result.stderr and new not in result.stdout + result.stderr
    after = tasks(project)
    assert after["grafana"] != before["grafana"] and after["node-exporter"] == before["node-exporter"]
    secrets_after = objects("secret", project)
    assert len(secrets_after) == len(secrets_before) == 1 and secrets_after != secrets_before
    grafana = task_container(project, "grafana")
    assert grafana.exec_run(["cat", "/run/secrets/grafana_admin_password"]).output.decode().strip() == new
    # The new value reached Grafana through its API first (kept in its data volume, as Grafana keeps it).
    assert grafana.exec_run(["cat", "/var/lib/grafana/admin_password"]).output.decode().strip() == new
    assert docker("ps", "-aq", "--filter", f"label=org.stackctl.forwarder={project}").stdout.split() == []
