"""The stack file model: defaults, the file, STACKCTL_* environment variables and --set, and one clear error per
bad input (file, key path, line; exit code 2; nothing written)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from stackctl.core import catalog, schema
from stackctl.core.config import StackConfig, Services, env_overrides, load_config, parse_yaml
from stackctl.shells.stackfile import load_stack, locate
from stackctl.core.errors import ConfigError, StackError
from stackctl.core.versions import ImageRef, Version, with_mirror
from tests.conftest import Project, init_text, stack_from

# --- defaults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(catalog.PRESETS))
def test_init_template_loads_to_exactly_the_defaults(preset):
    data, lines = parse_yaml(init_text(preset), "stack.yaml")
    from_template = load_config(data, "stack.yaml", lines, environ={})
    defaults = StackConfig(preset=preset)
    assert schema.to_data(from_template) == schema.to_data(defaults)


def test_empty_file_and_no_file_load_the_defaults(tmp_path):
    empty = stack_from("", tmp_path)
    comments_only = stack_from("# nothing set\n", tmp_path, name="other.yaml")
    missing_ok = load_stack(tmp_path / "absent.yaml", environ={}, must_exist=False)
    for stack in (empty, comments_only, missing_ok):
        assert schema.to_data(stack.config) == schema.to_data(StackConfig())
        assert list(stack.services) == [s.key for s in catalog.CATALOG]  # preset full: everything


def test_template_covers_every_setting_of_every_service():
    """`stackctl init` documents each service's own settings (enabled and image are left to the preset/catalog)."""
    data, _ = parse_yaml(init_text(), "stack.yaml")
    for key in catalog.USER_SERVICES:
        model = {f.name for f in dataclasses.fields(type(getattr(Services(), key)))}
        shown = set(data["services"][key])
        assert model - shown <= {"enabled", "image", "port", "ports"}, key
        assert shown <= model, key


def test_defaults_are_the_catalog_values():
    services = StackConfig().services
    for key in catalog.USER_SERVICES:
        spec, settings = catalog.SERVICES[key], services.get(key)
        assert settings.memory == spec.memory
        published = [p for p in spec.ports if p.host is not None]
        if published:
            assert settings.port == spec.primary_port.host
            assert settings.ports == {p.name: p.host for p in published[1:]}
        else:
            assert settings.port is None and settings.ports == {}
        assert settings.enabled is None and settings.image is None


def test_services_model_has_exactly_the_user_services():
    assert [f.name for f in dataclasses.fields(Services)] == list(catalog.USER_SERVICES)


# --- overrides: file, environment, --set -----------------------------------------------------------------------


def test_file_overrides(tmp_path):
    stack = stack_from(
        "preset: metrics\n"
        "project: shop\n"
        "services:\n"
        "  prometheus:\n"
        "    retention: 30d\n"
        "    port: 19090\n"
        "  grafana:\n"
        "    plugins: [grafana-piechart-panel]\n"
        "  jaeger:\n"
        "    enabled: true\n",
        tmp_path,
    )
    assert stack.config.project == "shop"
    assert stack.get("prometheus").settings.retention == "30d"
    assert stack.get("prometheus").host_ports == {"web": 19090}
    assert stack.get("grafana").settings.plugins == ["grafana-piechart-panel"]
    assert set(stack.services) == {"prometheus", "alertmanager", "grafana", "node_exporter", "jaeger"}


def test_partial_ports_mapping_keeps_the_other_defaults(tmp_path):
    stack = stack_from("services:\n  logstash:\n    ports:\n      beats: 5045\n", tmp_path)
    assert stack.get("logstash").host_ports == {"api": 9600, "beats": 5045, "json": 5000}


def test_environment_overrides_nested_keys_with_yaml_types(tmp_path):
    env = {
        "STACKCTL_SERVICES__GRAFANA__PORT": "3001",
        "STACKCTL_SERVICES__GRAFANA__ANONYMOUS_VIEWER": "true",
        "STACKCTL_SERVICES__GRAFANA__PLUGINS": "[a-panel, b-app]",
        "STACKCTL_SERVICES__LOGSTASH__PORTS__BEATS": "5045",
        "STACKCTL_SERVICES__JAEGER__ENABLED": "false",
        "STACKCTL_PRESET": "full",
        "STACKCTL_BIND_ADDRESS": "0.0.0.0",
    }
    stack = stack_from("services:\n  grafana:\n    port: 3000\n", tmp_path, env=env)
    grafana = stack.get("grafana")
    assert grafana.host_ports == {"web": 3001}  # the environment wins over the file
    assert grafana.settings.anonymous_viewer is True
    assert grafana.settings.plugins == ["a-panel", "b-app"]
    assert stack.get("logstash").host_ports["beats"] == 5045
    assert not stack.enabled("jaeger")
    assert stack.config.bind_address == "0.0.0.0"


def test_environment_keys_are_case_insensitive_and_string_values_stay_strings(tmp_path):
    stack = stack_from("", tmp_path, env={"STACKCTL_services__grafana__ADMIN_USER": "ops"})
    assert stack.get("grafana").settings.admin_user == "ops"
    stack = stack_from("", tmp_path, env={"STACKCTL_SERVICES__GRAFANA__ADMIN_USER": "1234"})
    assert stack.get("grafana").settings.admin_user == "1234"


def test_cli_options_in_the_environment_are_not_settings(tmp_path):
    reserved = {"STACKCTL_FILE": "other.yaml", "STACKCTL_DEBUG": "1", "STACKCTL_NO_COLOR": "1",
                # test tooling: .ci/run exports STACKCTL_REQUIRE_ALL=1 around every stackctl the tests start
                "STACKCTL_REQUIRE_ALL": "1", "STACKCTL_DEV_CACHE": "/tmp/cache"}
    assert env_overrides(reserved) == []
    assert env_overrides({"PATH": "/bin", "STACK_SECRET_X": "y"}) == []
    stack = stack_from("", tmp_path, env=reserved)
    assert schema.to_data(stack.config) == schema.to_data(StackConfig())


def test_locate_prefers_option_then_stackctl_file(monkeypatch):
    monkeypatch.delenv("STACKCTL_FILE", raising=False)
    assert locate(None) == Path("stack.yaml")
    monkeypatch.setenv("STACKCTL_FILE", "/srv/mon.yaml")
    assert locate(None) == Path("/srv/mon.yaml")
    assert locate("x.yaml") == Path("x.yaml")


def test_set_overrides_environment_and_file(tmp_path):
    stack = stack_from(
        "services:\n  grafana:\n    port: 3000\n", tmp_path,
        env={"STACKCTL_SERVICES__GRAFANA__PORT": "3001"},
        sets=["services.grafana.port=3002", "services.prometheus.retention=7d", "services.kibana.enabled=false"],
    )
    assert stack.get("grafana").host_ports == {"web": 3002}
    assert stack.get("prometheus").settings.retention == "7d"
    assert not stack.enabled("kibana")


def test_set_value_that_is_not_yaml_is_a_string(tmp_path):
    with pytest.raises(ConfigError) as info:
        stack_from("", tmp_path, sets=["services.grafana.port=["])
    assert str(info.value) == "--set services.grafana.port=...: services.grafana.port: must be an integer, got '[' (a string)"


@pytest.mark.parametrize("name", ["STACKCTL_", "STACKCTL_SERVICES____PORT", "STACKCTL_SERVICES__GRAFANA__"])
def test_environment_variables_naming_no_setting_are_refused_not_ignored(tmp_path, name):
    with pytest.raises(ConfigError, match=f"environment variable {name}: names no setting"):
        stack_from("", tmp_path, env={name: "1"})


def test_set_never_repeats_the_value(tmp_path):
    secret = "https://hooks.slack.example/T0/B0/verysecretvalue"
    for sets in (["alerting.receivers=" + secret], ["alerting.group_wait=" + secret], [secret], ["=" + secret],
                 ["services..port=" + secret]):
        with pytest.raises(StackError) as info:
            stack_from("", tmp_path, sets=sets)
        assert "verysecretvalue" not in info.value.message + info.value.details, sets


def test_set_without_equals_is_refused(tmp_path):
    with pytest.raises(StackError, match="KEY=VALUE"):
        stack_from("", tmp_path, sets=["services.grafana.port"])


# --- one clear error per bad input -----------------------------------------------------------------------------


def _error(tmp_path: Path, text: str, env: dict | None = None, sets: list | None = None) -> ConfigError:
    with pytest.raises(StackError) as info:
        stack_from(text, tmp_path, env=env, sets=sets)
    return info.value


BAD_FILES = [
    # id, stack.yaml, expected message (after "<file>:"), line
    ("malformed-yaml", "project: stackctl\nservices:\n  grafana: [port\n",
     r"not valid YAML: ", 4),
    ("tab-indent", "services:\n\tgrafana: {}\n", r"not valid YAML: ", 2),
    ("unknown-top-key", "servces:\n  grafana: {}\n",
     r"servces: unknown key \(did you mean 'services'\?\)", 1),
    ("unknown-nested-key", "services:\n  prometheus:\n    retension: 30d\n",
     r"services\.prometheus\.retension: unknown key \(did you mean 'retention'\?\)", 3),
    ("unknown-service", "services:\n  grafna:\n    port: 3001\n",
     r"services\.grafna: unknown key \(did you mean 'grafana'\?\)", 2),
    ("wrong-type-port", "services:\n  grafana:\n    port: abc\n",
     r"services\.grafana\.port: must be an integer, got 'abc' \(a string\)", 3),
    ("wrong-type-bool", "services:\n  grafana:\n    enabled: 'maybe'\n",
     r"services\.grafana\.enabled: must be true or false, got 'maybe' \(a string\)", 3),
    ("wrong-type-mapping", "services:\n  prometheus: 5\n",
     r"services\.prometheus: must be a mapping, got 5 \(an integer\)", 2),
    ("wrong-type-list", "services:\n  grafana:\n    plugins: a-panel\n",
     r"services\.grafana\.plugins: must be a list, got 'a-panel' \(a string\)", 3),
    ("port-zero", "services:\n  grafana:\n    port: 0\n",
     r"services\.grafana\.port: must be a port between 1 and 65535 \(got 0\)", 3),
    ("port-too-big", "services:\n  grafana:\n    port: 70000\n",
     r"services\.grafana\.port: must be a port between 1 and 65535 \(got 70000\)", 3),
    ("named-port-too-big", "services:\n  logstash:\n    ports:\n      beats: 70000\n",
     r"services\.logstash\.ports\.beats: must be a port between 1 and 65535 \(got 70000\)", 4),
    ("unknown-port-name", "services:\n  logstash:\n    ports:\n      beat: 5045\n",
     r"services\.logstash\.ports\.beat: unknown port name; logstash publishes beats, json .*did you mean 'beats'", 4),
    ("port-on-unpublished-service", "services:\n  node_exporter:\n    port: 9100\n",
     r"services\.node_exporter\.port: node_exporter publishes no port on the host", 3),
    ("bad-duration", "services:\n  prometheus:\n    retention: 15 days\n",
     r"services\.prometheus\.retention: must be a duration like 30s, 5m, 1h30m or 15d, units largest first "
     r"\(got '15 days'\)", 3),
    ("duration-units-out-of-order", "services:\n  prometheus:\n    scrape_interval: 1s1m\n",
     r"services\.prometheus\.scrape_interval: must be a duration", 3),
    ("bad-size", "services:\n  grafana:\n    memory: lots\n",
     r"services\.grafana\.memory: must be a memory size like 512m or 2g", 3),
    ("port-clash", "services:\n  grafana:\n    port: 9090\n",
     r"services\.grafana\.port: host port 9090 is already used by prometheus \(web\)", 3),
    ("port-clash-blames-the-changed-port", "services:\n  grafana:\n    enabled: true\n  prometheus:\n    port: 3000\n",
     r"services\.prometheus\.port: host port 3000 is already used by grafana \(web\)", 5),
    ("port-clash-named-port", "services:\n  collector:\n    ports:\n      health: 9093\n",
     r"services\.collector\.ports\.health: host port 9093 is already used by alertmanager \(web\)", 4),
    ("image-without-tag", "services:\n  grafana:\n    image: grafana/grafana\n",
     r"services\.grafana\.image: image override 'grafana/grafana' has no tag", 3),
    ("image-registry-port-no-tag", "services:\n  grafana:\n    image: localhost:5000/grafana\n",
     r"services\.grafana\.image: image override 'localhost:5000/grafana' has no tag", 3),
    ("duplicate-key", "preset: full\nproject: a\npreset: metrics\n", r"preset: is set twice", 3),
    ("duplicate-nested-key", "services:\n  grafana:\n    port: 3001\n    port: 3002\n",
     r"services\.grafana\.port: is set twice", 4),
    ("prometheus-too-old", "services:\n  prometheus:\n    image: prom/prometheus:v2.20.0\n",
     r"services\.prometheus\.image: Prometheus 2\.20\.0 is not supported: .*2\.33\.0 up to \(not including\) 4\.0\.0", 3),
    ("jaeger-v1", "services:\n  jaeger:\n    image: jaegertracing/all-in-one:1.60.0\n",
     r"services\.jaeger\.image: Jaeger 1\.60\.0 is not supported: .*Jaeger v1 reached end of life", 3),
    ("collector-too-old", "services:\n  collector:\n    image: otel/opentelemetry-collector-contrib:0.90.0\n",
     r"services\.collector\.image: OpenTelemetry collector 0\.90\.0 is not supported", 3),
    ("elastic-major-mismatch", "services:\n  kibana:\n    image: docker.elastic.co/kibana/kibana:8.15.0\n",
     r"services\.kibana\.image: kibana 8\.15\.0 does not work with Elasticsearch 9\.5\.1", 3),
    ("kibana-without-elasticsearch", "services:\n  elasticsearch:\n    enabled: false\n  kibana:\n    enabled: true\n",
     r"services\.kibana\.enabled: kibana needs elasticsearch, which is disabled "
     r"\(enable services\.elasticsearch or disable services\.kibana\)", 5),
    ("elasticsearch-off-under-preset-dependents", "services:\n  elasticsearch:\n    enabled: false\n",
     r"services\.elasticsearch\.enabled: kibana needs elasticsearch, which is disabled", 3),
    ("unknown-preset", "preset: metric\n",
     r"preset: must be one of metrics, logs, traces, full \(got 'metric'\) \(did you mean 'metrics'\?\)", 1),
    ("bad-bind-address", "bind_address: localhost\n", r"bind_address: must be an IP address", 1),
    ("mirror-with-scheme", "registry_mirror: https://mirror.example.com\n", r"registry_mirror: must be a registry host", 1),
    ("bad-project", "project: My Stack\n", r"project: must be lowercase letters", 1),
    ("schema-version", "version: 2\n", r"version: this stackctl reads stack file version 1, got 2", 1),
    ("not-a-mapping", "- prometheus\n- grafana\n", r"the stack file must be a mapping of settings at the top level", 1),
    ("scrape-target-no-port", "scrape_targets:\n  - job: app\n    targets: [app]\n",
     r"scrape_targets\[0\]\.targets\[0\]: must be host:port, got 'app'", 3),
    ("scrape-target-job-clash", "scrape_targets:\n  - job: prometheus\n    targets: ['app:80']\n",
     r"scrape_targets\[0\]\.job: job name 'prometheus' is already used", 2),
    ("scrape-target-missing-job", "scrape_targets:\n  - targets: ['app:80']\n",
     r"scrape_targets\[0\]\.job: is required", 2),
]


@pytest.mark.parametrize("text, message, line", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_file_gives_one_message_with_file_key_and_line(tmp_path, text, message, line):
    error = _error(tmp_path, text)
    file = str(tmp_path / "stack.yaml")
    assert isinstance(error, ConfigError)
    assert error.exit_code == 2
    assert error.line == line, error.message
    assert error.message.startswith(f"{file}:{line}: "), error.message
    assert re.search(message, error.message), error.message
    assert "\n" not in error.message and "Traceback" not in error.message
    assert not error.details


def test_missing_stack_file_says_to_run_init(tmp_path):
    with pytest.raises(StackError) as info:
        load_stack(tmp_path / "stack.yaml", environ={})
    assert "no stack file" in info.value.message
    assert "stackctl init" in info.value.message
    assert info.value.exit_code == 2


def test_unreadable_stack_file_is_a_clear_error(tmp_path):
    (tmp_path / "stack.yaml").write_bytes(b"project: \xff\xfe\n")
    with pytest.raises(StackError, match="not UTF-8 text"):
        load_stack(tmp_path / "stack.yaml", environ={})


BAD_ENV = [
    ("unknown-key-suggests", {"STACKCTL_SERVICES__GRAFANA__PORTT": "3001"},
     "environment variable STACKCTL_SERVICES__GRAFANA__PORTT: services.grafana.portt: unknown key (did you mean 'port'?)"),
    ("unknown-top-level-suggests", {"STACKCTL_SERVCES__GRAFANA__PORT": "3001"},
     "environment variable STACKCTL_SERVCES__GRAFANA__PORT: servces.grafana.port: unknown setting (did you mean 'services'?)"),
    ("wrong-type", {"STACKCTL_SERVICES__GRAFANA__PORT": "abc"},
     "environment variable STACKCTL_SERVICES__GRAFANA__PORT: services.grafana.port: must be an integer, got 'abc' (a string)"),
    ("invalid-port", {"STACKCTL_SERVICES__GRAFANA__PORT": "70000"},
     "environment variable STACKCTL_SERVICES__GRAFANA__PORT: services.grafana.port: must be a port between 1 and 65535 (got 70000)"),
    ("port-clash-blames-the-variable", {"STACKCTL_SERVICES__GRAFANA__PORT": "9090"},
     "environment variable STACKCTL_SERVICES__GRAFANA__PORT: services.grafana.port: host port 9090 is already used by prometheus (web) (give one of them another port)"),
    ("unsupported-version", {"STACKCTL_SERVICES__PROMETHEUS__IMAGE": "prom/prometheus:v2.20.0"},
     "environment variable STACKCTL_SERVICES__PROMETHEUS__IMAGE: services.prometheus.image: Prometheus 2.20.0 is not supported"),
    ("inside-a-scalar", {"STACKCTL_PROJECT__NAME": "x"},
     "environment variable STACKCTL_PROJECT__NAME: project: must be a string, got a mapping"),
]


@pytest.mark.parametrize("env, message", [b[1:] for b in BAD_ENV], ids=[b[0] for b in BAD_ENV])
def test_bad_environment_variable_is_named_instead_of_the_file(tmp_path, env, message):
    error = _error(tmp_path, "services:\n  grafana:\n    port: 3000\n", env=env)
    assert error.message.startswith(message), error.message
    assert getattr(error, "line", None) is None


BAD_SETS = [
    ("unknown-key", ["services.grafna.port=1"],
     "--set services.grafna.port=...: services.grafna: unknown key (did you mean 'grafana'?)"),
    ("wrong-type", ["services.grafana.anonymous_viewer=yes please"],
     "--set services.grafana.anonymous_viewer=...: services.grafana.anonymous_viewer: must be true or false"),
    ("port-clash", ["services.jaeger.port=3000"],
     "--set services.jaeger.port=...: services.jaeger.port: host port 3000 is already used by grafana (web)"),
    ("dependency", ["services.elasticsearch.enabled=false"],
     "--set services.elasticsearch.enabled=...: services.elasticsearch.enabled: kibana needs elasticsearch"),
]


@pytest.mark.parametrize("sets, message", [b[1:] for b in BAD_SETS], ids=[b[0] for b in BAD_SETS])
def test_bad_set_option_is_named_instead_of_the_file(tmp_path, sets, message):
    error = _error(tmp_path, "services:\n  grafana:\n    port: 3000\n", sets=sets)
    assert error.message.startswith(message), error.message


def test_set_fixing_a_file_error_wins(tmp_path):
    stack = stack_from("services:\n  grafana:\n    port: 9090\n", tmp_path, sets=["services.grafana.port=3001"])
    assert stack.get("grafana").host_ports == {"web": 3001}


# --- what resolution decides ----------------------------------------------------------------------------------


def test_presets_enable_their_services_and_setup_jobs_follow_their_parent(tmp_path):
    for preset, keys in catalog.PRESETS.items():
        stack = stack_from(f"preset: {preset}\n", tmp_path)
        expected = set(keys) | ({"elasticsearch_setup"} if "elasticsearch" in keys else set())
        assert set(stack.services) == expected, preset


def test_explicit_enabled_wins_over_preset(tmp_path):
    stack = stack_from("preset: traces\nservices:\n  grafana:\n    enabled: false\n  prometheus:\n    enabled: true\n",
                       tmp_path)
    assert set(stack.services) == {"jaeger", "collector", "prometheus"}


def test_image_override_decides_the_version(tmp_path):
    stack = stack_from("services:\n  prometheus:\n    image: local/prometheus:2.42.0\n", tmp_path)
    assert stack.get("prometheus").image == "local/prometheus:2.42.0"
    assert stack.get("prometheus").version == Version(2, 42, 0)


def test_image_override_with_a_non_version_tag_warns_and_renders_for_the_default(tmp_path):
    stack = stack_from("services:\n  grafana:\n    image: grafana/grafana:main\n", tmp_path)
    assert stack.get("grafana").version == Version.parse(catalog.SERVICES["grafana"].version)
    assert any("'main'" in w and "not a version" in w for w in stack.warnings)


def test_setup_job_follows_its_parents_image_override(tmp_path):
    stack = stack_from("services:\n  elasticsearch:\n    image: mirror.local/es:9.1.0\n  kibana:\n    enabled: false\n"
                       "  logstash:\n    enabled: false\n", tmp_path)
    assert stack.get("elasticsearch_setup").image == "mirror.local/es:9.1.0"


def test_secrets_follow_the_enabled_services(tmp_path):
    stack = stack_from("preset: metrics\n", tmp_path)
    assert {u.name for s in stack.services.values() for u in s.secrets} == {"grafana_admin_password"}
    stack = stack_from("preset: full\n", tmp_path)
    setup = {u.name for u in stack.get("elasticsearch_setup").secrets}
    assert setup == {"elastic_password", "kibana_system_password", "logstash_writer_password",
                     "collector_writer_password", "grafana_reader_password", "elasticsearch_exporter_password"}


def test_state_dir_is_relative_to_the_stack_file(tmp_path):
    (tmp_path / "sub").mkdir()
    stack = stack_from("state_dir: .state\n", tmp_path / "sub")
    assert stack.state_dir == (tmp_path / "sub" / ".state").resolve()


# --- versions and image references ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("v3.14.0", Version(3, 14, 0)), ("2.42.0", Version(2, 42, 0)), ("12.4", Version(12, 4, 0)),
    ("0.155.0-rc1", Version(0, 155, 0)), ("latest", None), ("main", None), ("", None),
])
def test_version_parse(text, expected):
    assert Version.parse(text) == expected


def test_version_compares_with_versions_and_tuples():
    assert Version(2, 42, 0) < Version(3, 0, 0) < (3, 1)
    assert Version(3, 0, 0) >= (3, 0) and Version(3, 0, 0) == (3,)
    assert not Version(0, 143, 9) >= (0, 144)


@pytest.mark.parametrize("text, repository, tag", [
    ("prom/prometheus:v3.14.0", "prom/prometheus", "v3.14.0"),
    ("localhost:5000/prom/prometheus:v3.0.0", "localhost:5000/prom/prometheus", "v3.0.0"),
    ("localhost:5000/prom/prometheus", "localhost:5000/prom/prometheus", None),
    ("grafana/grafana@sha256:" + "ab" * 32, "grafana/grafana", None),
    ("grafana/grafana:12.0.0@sha256:" + "ab" * 32, "grafana/grafana", "12.0.0"),
    ("Mirror.Example.com:5000/prom/prometheus:v3.0.0", "Mirror.Example.com:5000/prom/prometheus", "v3.0.0"),
    ("[::1]:5000/prom/prometheus:v3.0.0", "[::1]:5000/prom/prometheus", "v3.0.0"),
])
def test_image_ref_parse(text, repository, tag):
    ref = ImageRef.parse(text)
    assert (ref.repository, ref.tag) == (repository, tag)
    assert str(ref) == text


@pytest.mark.parametrize("text", [
    "PROM/Prometheus:v3.14.0", "prom/Prometheus:v3.14.0", "prom/prom etheus:v3", "prom/prometheus:v3 .0",
    "prom/prometheus:", "prom//prometheus", "prom/prometheus:-v3", "grafana/grafana@sha256:abc",
    "prom/prometheus:${STACK_SECRET_X}", "x-$HOME/p:1", "prom/prometheus\n:v3", "", "prom/prometheus:" + "v" * 129,
])
def test_image_references_the_engine_refuses_are_refused(text):
    with pytest.raises(ValueError, match="not a valid image reference"):
        ImageRef.parse(text)


@pytest.mark.parametrize("repository, mirror, expected", [
    ("prom/prometheus", "", "prom/prometheus"),
    ("prom/prometheus", "mirror.example.com:5000", "mirror.example.com:5000/prom/prometheus"),
    ("docker.elastic.co/elasticsearch/elasticsearch", "mirror.example.com:5000/",
     "mirror.example.com:5000/elasticsearch/elasticsearch"),
    ("localhost/x/y", "m.example", "m.example/x/y"),
])
def test_with_mirror(repository, mirror, expected):
    assert with_mirror(repository, mirror) == expected


def test_project_fixture_is_the_init_output(project: Project):
    assert project.file.read_text() == init_text("full")
