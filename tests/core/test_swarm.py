"""target: swarm without an engine: the settings, the stack file `docker stack deploy` reads (deploy sections, no
depends_on, per-node services, placement by node label, configs and secrets as content-hashed Swarm objects,
published ports), Prometheus' discovery of every task, and the names and checks of Swarm objects."""

from __future__ import annotations

import pytest
import yaml

from stackctl.core import catalog, swarm
from stackctl.core.checks import structural_checks
from stackctl.core.errors import ConfigError
from stackctl.core.render import COMPOSE_FILE, render_bundle
from tests.conftest import stack_from
from tests.support.stacks import make_stack

SWARM = {"target": "swarm"}
PROMETHEUS = "configs/prometheus/prometheus.yml"


def stack_file(data: dict) -> tuple[dict, dict[str, bytes]]:
    stack = make_stack(data)
    plan = render_bundle(stack)
    return yaml.safe_load(plan[COMPOSE_FILE]), plan


def services_of(data: dict) -> dict[str, dict]:
    return stack_file(data)[0]["services"]


# --- settings ------------------------------------------------------------------------------------------------------


def test_compose_is_the_default_target_and_swarm_is_set_like_any_key(tmp_path):
    assert make_stack().config.target == "compose" and not make_stack().on_swarm
    stack = stack_from("preset: metrics\n", tmp_path, sets=["target=swarm", "swarm.publish=[grafana]"])
    assert stack.on_swarm and stack.config.swarm.publish == ["grafana"]
    stack = stack_from("preset: metrics\n", tmp_path, env={"STACKCTL_TARGET": "swarm"})
    assert stack.on_swarm


@pytest.mark.parametrize("text, where, problem", [
    ("target: kubernetes\n", "target", "must be one of compose, swarm"),
    ("target: swarm\nswarm: {publish: [grafna]}\n", "swarm.publish[0]", "did you mean 'grafana'?"),
    ("target: swarm\nswarm: {publish: [grafana, grafana]}\n", "swarm.publish[1]", "grafana is listed twice"),
    ("target: swarm\nswarm: {data_label: stackctl.data}\n", "swarm.data_label", "must be a node label as key=value"),
    ("target: swarm\nswarm: {data_label: 'a=b c'}\n", "swarm.data_label", "must be a node label"),
    ("target: swarm\nswarm: {placement: {grafana: 'x=\"y\"'}}\n", "swarm.placement.grafana", "must be a node label"),
    ("target: swarm\nswarm: {placement: {grafnaa: a=b}}\n", "swarm.placement.grafnaa", "is not a service"),
    ("target: swarm\nswarm: {endpoint_mode: mesh}\n", "swarm.endpoint_mode", "must be one of vip, dnsrr"),
    ("target: swarm\nswarm: {forwarder_image: busybox}\n", "swarm.forwarder_image", "has no tag"),
    ("target: swarm\npreset: metrics\nswarm: {publish: [kibana]}\n", "swarm.publish[0]", "kibana is not enabled"),
    ("target: swarm\nswarm: {publish: [node_exporter]}\n", "swarm.publish[0]", "node_exporter has no port to publish"),
])
def test_swarm_settings_are_checked_with_their_line(tmp_path, text, where, problem):
    with pytest.raises(ConfigError) as raised:
        stack_from(text, tmp_path)
    assert f": {where}: " in raised.value.message and problem in raised.value.message
    assert raised.value.line is not None


def test_only_listed_services_publish_their_ports_on_swarm():
    stack = make_stack({**SWARM, "swarm": {"publish": ["grafana", "collector"]},
                        "services": {"collector": {"ports": {"otlp_http": 14318}}}})
    published = {key: svc.host_ports for key, svc in stack.services.items() if svc.host_ports}
    assert published == {"grafana": {"web": 3000}, "collector": {"otlp_grpc": 4317, "otlp_http": 14318,
                                                                  "health": 13133}}
    with pytest.raises(ConfigError, match="unknown port name"):  # still checked where it is not published
        make_stack({**SWARM, "services": {"prometheus": {"ports": {"wbe": 1}}}})


def test_a_port_clash_between_unpublished_services_is_no_clash_on_swarm():
    data = {"services": {"alertmanager": {"port": 9090}}}
    with pytest.raises(ConfigError, match="already used"):
        make_stack(data)
    assert make_stack({**SWARM, **data}).services["alertmanager"].host_ports == {}


def test_bind_address_set_on_swarm_is_warned_about(tmp_path):
    stack = stack_from("target: swarm\nbind_address: 0.0.0.0\n", tmp_path)
    assert any("bind_address 0.0.0.0 has no effect with target: swarm" in w for w in stack.warnings)
    assert not stack_from("target: swarm\n", tmp_path, name="b.yaml").warnings


# --- the stack file ------------------------------------------------------------------------------------------------


def test_the_stack_file_moves_limits_and_restarts_under_deploy_and_drops_depends_on():
    compose = services_of({})  # compose: the same stack for comparison
    services = services_of(SWARM)
    assert set(services) == set(compose)
    for name, service in services.items():
        spec = catalog.BY_NAME[name]
        assert not {"restart", "mem_limit", "depends_on", "container_name"} & set(service), name
        deploy = service["deploy"]
        assert deploy["resources"] == {"limits": {"memory": spec.memory}}
        assert deploy["labels"] == {swarm.SERVICE_LABEL: spec.key}
        assert deploy["endpoint_mode"] == "vip"
        if spec.oneshot:
            assert deploy["restart_policy"] == {"condition": "on-failure", "delay": "10s",
                                                "max_attempts": swarm.ONESHOT_ATTEMPTS}
        else:
            assert deploy["restart_policy"] == {"condition": "any", "delay": "5s"}
        assert service["image"] == compose[name]["image"]
        assert service.get("healthcheck") == compose[name].get("healthcheck")
    assert any("depends_on" in s for s in compose.values())


def test_node_exporter_runs_on_every_node_with_the_host_mounts_it_needs():
    exporter = services_of(SWARM)["node-exporter"]
    assert exporter["deploy"]["mode"] == "global" and "replicas" not in exporter["deploy"]
    assert "placement" not in exporter["deploy"]  # every node, data node or not
    assert exporter["volumes"] == ["/:/host:ro"]
    assert "pid" not in exporter  # Swarm has no host PID namespace: /proc and /sys are read through the mount
    assert {"--path.rootfs=/host", "--path.procfs=/host/proc", "--path.sysfs=/host/sys"} <= set(exporter["command"])
    compose = services_of({})["node-exporter"]
    assert compose["pid"] == "host" and "--path.procfs=/host/proc" not in compose["command"]
    others = [s for n, s in services_of(SWARM).items() if n != "node-exporter"]
    assert all(s["deploy"]["mode"] == "replicated" and s["deploy"]["replicas"] == 1 for s in others)


def test_services_keeping_data_are_placed_by_the_data_label_and_overrides_win():
    services = services_of({**SWARM, "swarm": {"placement": {"grafana": "disk=ssd", "jaeger": "zone=b"},
                                               "data_label": "role=data"}})
    placed = {name: s["deploy"].get("placement", {}).get("constraints") for name, s in services.items()}
    assert placed == {
        "prometheus": ["node.labels.role == data"], "alertmanager": ["node.labels.role == data"],
        "grafana": ["node.labels.disk == ssd"], "elasticsearch": ["node.labels.role == data"],
        "kibana": ["node.labels.role == data"], "jaeger": ["node.labels.zone == b"],
        "elasticsearch-setup": None, "elasticsearch-exporter": None, "logstash": None, "otel-collector": None,
        "blackbox-exporter": None,
        "node-exporter": None}
    default = services_of(SWARM)["prometheus"]["deploy"]["placement"]
    assert default == {"constraints": ["node.labels.stackctl.data == true"]}


def test_placements_name_each_label_and_the_services_it_places():
    stack = make_stack({**SWARM, "preset": "metrics", "swarm": {"placement": {"grafana": "ui=yes"}}})
    assert swarm.placements(stack) == {"stackctl.data=true": ["prometheus", "alertmanager"], "ui=yes": ["grafana"]}


def test_bundle_files_become_swarm_configs_named_by_content_and_mounted_where_compose_mounts_them():
    document, plan = stack_file(SWARM)
    configs = document["configs"]
    prometheus = document["services"]["prometheus"]
    mounted = {c["target"]: c["source"] for c in prometheus["configs"]}
    rule_files = sorted(p for p in plan if p.startswith("configs/prometheus/"))
    assert sorted(mounted) == sorted("/etc/prometheus/" + p[len("configs/prometheus/"):] for p in rule_files)
    for target, name in mounted.items():
        path = configs[name]["file"][2:]
        assert configs[name]["name"] == name == swarm.config_object_name("stackctl", path, plan[path])
        assert target.endswith(path[len("configs/prometheus"):])
    assert all(c["mode"] == 0o444 for c in prometheus["configs"])
    assert prometheus["volumes"] == ["prometheus-data:/prometheus"]  # the named volume stays a volume
    kibana = document["services"]["kibana"]  # a single file mounted onto a path
    assert [c["target"] for c in kibana["configs"]] == ["/usr/share/kibana/config/kibana.yml"]
    assert "volumes" in document and "prometheus-data" in document["volumes"]
    for service in document["services"].values():  # nothing of the bundle is bind-mounted: other nodes lack it
        assert not any(v.startswith("./") for v in service.get("volumes", []))


def test_a_changed_config_renames_only_the_objects_of_the_files_that_changed():
    before, _ = stack_file({**SWARM, "preset": "metrics"})
    after, _ = stack_file({**SWARM, "preset": "metrics", "services": {"prometheus": {"evaluation_interval": "30s"}}})
    changed = {name for name in before["services"] if before["services"][name] != after["services"][name]}
    assert changed == {"prometheus"}
    old = {c["target"]: c["source"] for c in before["services"]["prometheus"]["configs"]}
    new = {c["target"]: c["source"] for c in after["services"]["prometheus"]["configs"]}
    assert [t for t in old if old[t] != new[t]] == ["/etc/prometheus/prometheus.yml"]


def test_secrets_are_external_swarm_objects_named_at_deploy_time_never_by_value(tmp_path):
    stack = stack_from("target: swarm\n", tmp_path)
    plan = render_bundle(stack)
    document = yaml.safe_load(plan[COMPOSE_FILE])
    assert document["secrets"]["grafana_admin_password"] == {
        "external": True, "name": "${STACK_SWARM_SECRET_GRAFANA_ADMIN_PASSWORD:?stackctl up sets it}"}
    grafana = document["services"]["grafana"]
    assert {"source": "grafana_admin_password", "target": "grafana_admin_password", "uid": "472", "gid": "0",
            "mode": 0o400} in grafana["secrets"]
    assert set(document["secrets"]) == {use.name for svc in stack.services.values() for use in svc.secrets}
    assert b"environment: STACK_SECRET_" not in plan[COMPOSE_FILE]  # no value travels through the environment


def test_every_other_dollar_is_escaped_for_the_deploy(tmp_path):
    text = render_bundle(stack_from("target: swarm\n", tmp_path))[COMPOSE_FILE].decode()
    assert '"$$(cat /run/secrets/elastic_password)"' in text
    unescaped = [line for line in text.splitlines() if "${" in line and "$${" not in line and "#" not in line]
    assert unescaped and all("STACK_SWARM_SECRET_" in line for line in unescaped)


@pytest.mark.parametrize("mode, port_mode", [("vip", "ingress"), ("dnsrr", "host")])
def test_published_ports_follow_the_endpoint_mode_and_ignore_the_bind_address(mode, port_mode):
    services = services_of({**SWARM, "bind_address": "10.1.2.3",
                            "swarm": {"publish": ["grafana"], "endpoint_mode": mode}})
    assert services["grafana"]["ports"] == [{"target": 3000, "published": 3000, "protocol": "tcp", "mode": port_mode}]
    assert all("ports" not in s for name, s in services.items() if name != "grafana")
    assert all(s["deploy"]["endpoint_mode"] == mode for s in services.values())


def test_the_overlay_network_is_attachable_for_the_forwarder_and_compose_keys_are_gone():
    document, _ = stack_file(SWARM)
    assert document["networks"] == {"default": {"driver": "overlay", "attachable": True}}
    assert "name" not in document  # docker stack deploy takes the stack's name on its command line


def test_unpublished_alertmanager_links_to_its_address_on_the_stack_network():
    command = services_of(SWARM)["alertmanager"]["command"]
    assert "--web.external-url=http://alertmanager:9093" in command
    published = services_of({**SWARM, "swarm": {"publish": ["alertmanager"]}})["alertmanager"]["command"]
    assert "--web.external-url=http://127.0.0.1:9093" in published


# --- several nodes: discovery, not a list of hosts -----------------------------------------------------------------


def test_prometheus_discovers_every_task_through_swarm_dns_so_new_nodes_need_no_render():
    _, plan = stack_file(SWARM)
    config = yaml.safe_load(plan[PROMETHEUS])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["node-exporter"]["dns_sd_configs"] == [
        {"names": ["tasks.node-exporter"], "type": "A", "port": 9100, "refresh_interval": "5s"}]
    assert "static_configs" not in jobs["node-exporter"]
    for svc in make_stack(SWARM).services.values():
        if svc.spec.metrics and svc.key != "prometheus":
            (sd,) = jobs[svc.name]["dns_sd_configs"]
            assert sd["names"] == [f"tasks.{svc.name}"] and sd["port"] == svc.spec.port(svc.spec.metrics[0]).container
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["localhost:9090"]}]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["dns_sd_configs"][0]["names"] == ["tasks.alertmanager"]
    compose = yaml.safe_load(render_bundle(make_stack())[PROMETHEUS])
    assert all("dns_sd_configs" not in job for job in compose["scrape_configs"])


def test_the_rendered_stack_file_passes_the_structural_checks_and_they_see_a_bad_reference():
    stack = make_stack(SWARM)
    plan = render_bundle(stack)
    results = {c.name: c for c in structural_checks(stack, plan, {})}
    assert {name: c.status for name, c in results.items()} == {
        "collector pipelines": "passed", "references to enabled services": "passed",
        "no secret values in files": "passed", "swarm configs": "passed"}
    broken = dict(plan)
    broken[PROMETHEUS] = plan[PROMETHEUS].replace(b"tasks.node-exporter", b"tasks.nodeexporter")
    failed = {c.name: c.message for c in structural_checks(stack, broken, {}) if c.status == "failed"}
    assert "job node-exporter scrapes nodeexporter, which is not enabled" in failed["references to enabled services"]
    assert "swarm configs" not in {c.name for c in structural_checks(make_stack(), render_bundle(make_stack()), {})}


def test_configs_swarm_cannot_hold_are_refused_before_the_deploy():
    stack = make_stack(SWARM)
    plan = dict(render_bundle(stack))
    plan["configs/prometheus/rules/host.rules.yml"] = b"#" * (swarm.MAX_OBJECT_SIZE + 1)
    document = yaml.safe_load(plan[COMPOSE_FILE])
    assert swarm.check_stack_file(stack, plan, document) == [
        f"configs/prometheus/rules/host.rules.yml: 500 KiB is more than the 500 KiB Swarm holds in one config"]
    del plan["configs/jaeger/config.yaml"]
    assert any("which the bundle does not hold" in p for p in swarm.check_stack_file(stack, plan, document))


# --- object names and the cluster ----------------------------------------------------------------------------------


def test_object_names_carry_a_content_hash_and_fit_swarm_rules():
    a = swarm.secret_object_name("shop", "grafana_admin_password", "one")
    assert a != swarm.secret_object_name("shop", "grafana_admin_password", "two")
    assert a == swarm.secret_object_name("shop", "grafana_admin_password", "one")
    assert a.startswith("shop_grafana_admin_password-") and "one" not in a
    long = swarm.secret_object_name("p" * 63, "alertmanager_" + "x" * 60, "v")
    assert len(long) == swarm.MAX_OBJECT_NAME and long[-12:] == swarm._digest(
        ("alertmanager_" + "x" * 60).encode(), b"v")
    odd = swarm.config_object_name("shop", "grafana/dashboards/my board+.json", b"{}")
    assert odd.startswith("shop_my-board-.json-")
    import re
    for name in (a, long, odd):
        assert re.fullmatch(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?", name)


def test_the_deploy_environment_names_each_secret_object():
    stack = make_stack({**SWARM, "project": "shop"})
    env = swarm.secret_names_env(stack, {"grafana_admin_password": "s3cr3t-value"})
    assert env == {"STACK_SWARM_SECRET_GRAFANA_ADMIN_PASSWORD":
                   swarm.secret_object_name("shop", "grafana_admin_password", "s3cr3t-value")}
    assert "s3cr3t-value" not in str(env)


def node(hostname: str, labels: dict | None = None, availability="active", state="ready") -> swarm.NodeInfo:
    return swarm.NodeInfo(hostname, hostname, "worker", availability, state, "10.0.0.1", labels or {})


def test_unplaced_labels_are_those_no_usable_node_carries():
    stack = make_stack({**SWARM, "preset": "metrics", "swarm": {"placement": {"grafana": "ui=yes"}}})
    nodes = [node("a", {"stackctl.data": "true"}, availability="drain"), node("b", {"ui": "yes"}),
             node("c", {"stackctl.data": "false"})]
    assert swarm.unplaced(stack, nodes) == {"stackctl.data=true": ["prometheus", "alertmanager"]}
    nodes.append(node("d", {"stackctl.data": "true"}))
    assert swarm.unplaced(stack, nodes) == {}


@pytest.mark.parametrize("docker_host, host", [
    ("", None), ("unix:///var/run/docker.sock", None), ("tcp://127.0.0.1:2375", None),
    ("tcp://manager-1.example.com:2376", "manager-1.example.com"), ("ssh://ops@10.0.0.5", "10.0.0.5"),
    ("ssh://ops@[fd00::1]:22", "[fd00::1]"), ("npipe:////./pipe/docker_engine", None),
])
def test_engine_host_is_the_machine_docker_host_names(docker_host, host):
    assert swarm.engine_host(docker_host) == host


def test_the_forwarder_image_follows_the_mirror_unless_set():
    assert swarm.forwarder_image(make_stack(SWARM)) == "busybox:1.37.0"
    assert swarm.forwarder_image(make_stack({**SWARM, "registry_mirror": "mirror.local:5000"})) == \
        "mirror.local:5000/busybox:1.37.0"
    assert swarm.forwarder_image(make_stack({**SWARM, "swarm": {"forwarder_image": "local/x:1"}})) == "local/x:1"
