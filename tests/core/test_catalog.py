"""The service catalog as data: pinned supported images, unique ports, health for every long-running service with
tools its image really has, presets and the stack.yaml model in step with it."""

from __future__ import annotations

import dataclasses
import re
import shlex

import pytest

from stackctl.core import catalog
from stackctl.core.secrets import required_secrets
from tests.conftest import stack_from
from stackctl.core.config import Services
from stackctl.core.versions import ImageRef, Version

SPECS = list(catalog.CATALOG)
IDS = [s.key for s in SPECS]
LONG_RUNNING = [s for s in SPECS if not s.oneshot]

# What each image family can run inside the container (checked against the upstream images):
# prom/* and jaegertracing/* are busybox-based (wget, no curl); grafana/grafana and the Elastic images ship curl
# and bash; the collector image is FROM scratch (nothing at all).
IMAGE_TOOLS: list[tuple[str, set[str]]] = [
    (r"^prom/", {"wget", "sh", "cat"}),
    (r"^jaegertracing/", {"wget", "sh", "cat"}),
    # Built FROM quay.io/prometheus/busybox, like the prom/* images.
    (r"^quay\.io/prometheuscommunity/", {"wget", "sh", "cat"}),
    (r"^grafana/grafana$", {"curl", "sh", "bash", "cat"}),
    (r"^docker\.elastic\.co/", {"curl", "sh", "bash", "cat", "printf"}),  # printf: a shell builtin too
    (r"^otel/opentelemetry-collector", set()),
]


def image_tools(spec: catalog.ServiceSpec) -> set[str]:
    for pattern, tools in IMAGE_TOOLS:
        if re.search(pattern, spec.image):
            return tools
    raise AssertionError(f"{spec.key}: image {spec.image} is not in IMAGE_TOOLS; add what the image contains")


def healthcheck_commands(test: tuple[str, ...]) -> set[str]:
    """The programs a Docker healthcheck test runs."""
    kind, *rest = test
    if kind == "CMD":
        return {rest[0]}
    assert kind == "CMD-SHELL", f"unexpected healthcheck form {kind}"
    script = rest[0].replace("$$(", "$(")  # compose's escape for a literal $
    commands = {"sh", shlex.split(script)[0]}  # CMD-SHELL runs /bin/sh -c
    unquoted = re.sub(r"'[^']*'", "''", script)  # single quotes hold data (URLs), never commands
    commands |= set(re.findall(r"\$\(\s*([\w./-]+)", unquoted))  # command substitutions
    commands |= set(re.findall(r"(?:&&|\|\||;|\|)\s*([\w./-]+)", unquoted))  # after && || ; |
    return commands


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_default_image_is_pinned_to_a_supported_version(spec):
    assert spec.version and spec.version != "latest"
    ref = ImageRef.parse(spec.default_image)
    assert ref.repository == spec.image and ref.tag == spec.version
    assert ref.version is not None, f"{spec.default_image}: tag is not a version"
    low, high = (Version.parse(v) for v in spec.supported)
    assert low is not None and high is not None and low < high
    assert low <= ref.version < high
    assert spec.check_version(ref.version) is None


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_versions_outside_the_range_are_refused_with_the_range(spec):
    low, high = (Version.parse(v) for v in spec.supported)
    below = Version(low.major, low.minor - 1, 0) if low.minor else Version(low.major - 1, 99, 0)
    for version in (below, high):
        problem = spec.check_version(version)
        assert problem and spec.supported[0] in problem and spec.supported[1] in problem


def test_published_host_ports_are_unique():
    seen: dict[int, str] = {}
    for spec in SPECS:
        for port in spec.ports:
            if port.host is None:
                continue
            assert port.host not in seen, f"{spec.key}.{port.name} and {seen[port.host]} both publish {port.host}"
            seen[port.host] = f"{spec.key}.{port.name}"
            assert 1 <= port.host <= 65535 and 1 <= port.container <= 65535


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_port_names_are_unique_within_a_service(spec):
    names = [p.name for p in spec.ports]
    assert len(names) == len(set(names))
    containers = [p.container for p in spec.ports]
    assert len(containers) == len(set(containers))


@pytest.mark.parametrize("spec", LONG_RUNNING, ids=[s.key for s in LONG_RUNNING])
def test_every_long_running_service_has_a_healthcheck_or_an_external_probe(spec):
    assert (spec.healthcheck is None) != (spec.probe is None), "exactly one of healthcheck and probe"
    if spec.probe:
        port = spec.port(spec.probe.port)
        assert port.host is not None, "an external probe needs a published port"
        assert spec.probe.path.startswith("/")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.healthcheck], ids=[s.key for s in SPECS if s.healthcheck])
def test_healthcheck_uses_only_tools_the_image_has(spec):
    used = healthcheck_commands(spec.healthcheck.test)
    available = image_tools(spec)
    assert used <= available, f"{spec.image} has no {sorted(used - available)}"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.healthcheck], ids=[s.key for s in SPECS if s.healthcheck])
def test_healthcheck_probes_a_port_of_the_service_on_loopback(spec):
    text = " ".join(spec.healthcheck.test)
    urls = re.findall(r"http://([^/:'\"]+):(\d+)", text)
    assert urls, f"{spec.key}: healthcheck has no http URL"
    for host, port in urls:
        assert host in ("127.0.0.1", "localhost")
        assert int(port) in {p.container for p in spec.ports}


def test_image_without_any_tool_has_a_probe_not_a_healthcheck():
    for spec in LONG_RUNNING:
        if not image_tools(spec):
            assert spec.healthcheck is None and spec.probe is not None, spec.key
    assert catalog.SERVICES["collector"].probe is not None


def test_presets_name_only_user_services_and_satisfy_their_requirements():
    assert set(catalog.PRESETS) == {"metrics", "logs", "traces", "full"}
    assert set(catalog.PRESETS["full"]) == set(catalog.USER_SERVICES)
    for name, keys in catalog.PRESETS.items():
        assert len(keys) == len(set(keys)), name
        assert set(keys) <= set(catalog.USER_SERVICES), name
        for key in keys:
            assert set(catalog.SERVICES[key].requires) <= set(keys), f"{name}: {key} needs {catalog.SERVICES[key].requires}"


def test_user_services_are_the_services_model():
    assert {s.key for s in SPECS if not s.oneshot} == set(catalog.USER_SERVICES)
    assert [f.name for f in dataclasses.fields(Services)] == list(catalog.USER_SERVICES)


def test_keys_and_names_are_unique_and_usable():
    assert len({s.key for s in SPECS}) == len(SPECS)
    assert len({s.name for s in SPECS}) == len(SPECS)
    for spec in SPECS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.key), spec.key
        assert re.fullmatch(r"[a-z][a-z0-9-]*", spec.name), spec.name  # a DNS label
        assert catalog.spec_for(spec.key) is spec and catalog.spec_for(spec.name) is spec
    with pytest.raises(KeyError):
        catalog.spec_for("nginx")


def test_references_between_services_point_into_the_catalog():
    keys = set(catalog.SERVICES)
    for spec in SPECS:
        assert set(spec.requires) <= keys and set(spec.after) <= keys, spec.key
        assert spec.key not in spec.requires + spec.after
        for use in spec.secrets:
            assert not use.when or use.when in keys, f"{spec.key}: secret {use.name} when {use.when}"
            assert use.generate in ("password", "key32", None)
        if spec.metrics:
            assert spec.port(spec.metrics[0]) and spec.metrics[1].startswith("/")
        if spec.oneshot:
            assert spec.part_of in catalog.USER_SERVICES and not spec.ports and spec.healthcheck is None
        else:
            assert not spec.part_of


def test_oneshot_setup_job_can_run_in_its_parents_image():
    setup, parent = catalog.SERVICES["elasticsearch_setup"], catalog.SERVICES["elasticsearch"]
    assert setup.default_image == parent.default_image
    assert setup.supported == parent.supported


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_memory_and_user_are_well_formed(spec):
    assert re.fullmatch(r"\d+[mg]", spec.memory)
    if spec.user:
        assert re.fullmatch(r"\d+(:\d+)?", spec.user)
        assert spec.uid >= 0 and spec.gid >= 0


def test_secret_consumers_are_every_enabled_service_reading_it(tmp_path):
    specs = required_secrets(stack_from("", tmp_path))
    assert specs["elastic_password"].consumers == ("elasticsearch", "elasticsearch_setup")
    assert specs["kibana_encryption_key"].generate == "key32"
    assert specs["grafana_reader_password"].consumers == ("grafana", "elasticsearch_setup")
    for spec in specs.values():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
    without_grafana = required_secrets(stack_from("services:\n  grafana: {enabled: false}\n", tmp_path))
    assert "grafana_reader_password" not in without_grafana  # neither Grafana nor the setup job needs it now


def test_healthchecks_run_commands_the_images_have():
    assert catalog.SERVICES["prometheus"].healthcheck.test == (
        "CMD", "wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready")
    assert catalog.SERVICES["grafana"].healthcheck.test == (
        "CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3000/api/health")
    assert catalog.SERVICES["kibana"].healthcheck.test == (
        "CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:5601/api/status")
    assert catalog.SERVICES["collector"].healthcheck is None and catalog.SERVICES["collector"].probe.path == "/"


def test_spec_lookup_by_key_or_compose_name():
    assert catalog.spec_for("node_exporter") is catalog.spec_for("node-exporter") is catalog.SERVICES["node_exporter"]
    assert catalog.spec_for("otel-collector") is catalog.SERVICES["collector"]
    with pytest.raises(KeyError):
        catalog.spec_for("nginx")
