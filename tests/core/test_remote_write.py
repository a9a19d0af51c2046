"""services.prometheus.remote_write: samples sent on to a scalable backend, the password handed to Prometheus as a
file like every other secret, never written into the bundle."""

from __future__ import annotations

import pytest
import yaml

from stackctl.core import yamltext
from stackctl.core.errors import ConfigError
from stackctl.core.render import render_bundle
from stackctl.core.secrets import required_secrets
from stackctl.core.user_secrets import user_secrets
from tests.conftest import stack_from

MIMIR = {"url": "https://mimir.example.com/api/v1/push", "name": "mimir",
         "basic_auth": {"username": "team-a", "password": {"from_env": "MIMIR_PASSWORD"}},
         "headers": {"X-Scope-OrgID": "team-a"}, "queue": {"max_shards": 10, "batch_send_deadline": "5s"}}


def stack_with(*targets: dict, tmp_path):
    return stack_from(yaml.safe_dump({"preset": "metrics", "services": {"prometheus": {"remote_write": list(targets)}}}),
                      tmp_path)


def test_remote_write_is_rendered_with_a_password_file(tmp_path):
    stack = stack_with(MIMIR, {"url": "http://victoria:8428/api/v1/write"}, tmp_path=tmp_path)
    plan = render_bundle(stack)
    config = yamltext.load(plan["configs/prometheus/prometheus.yml"])
    assert config["remote_write"] == [
        {"url": "https://mimir.example.com/api/v1/push", "name": "mimir",
         "basic_auth": {"username": "team-a", "password_file": "/run/secrets/prometheus_remote_write_mimir_password"},
         "headers": {"X-Scope-OrgID": "team-a"}, "queue_config": {"max_shards": 10, "batch_send_deadline": "5s"}},
        {"url": "http://victoria:8428/api/v1/write", "name": "remote-2"},
    ]
    compose = yamltext.load(plan["compose.yaml"])
    (mounted,) = compose["services"]["prometheus"]["secrets"]
    assert mounted == {"source": "prometheus_remote_write_mimir_password", "target":
                       "prometheus_remote_write_mimir_password", "uid": "65534", "gid": "65534", "mode": 0o400}
    assert "alertmanager" not in [s for s, service in compose["services"].items() if service.get("secrets")]
    secret = user_secrets(stack.config)["prometheus_remote_write_mimir_password"]
    assert (secret.from_env, secret.service, secret.setting) == (
        "MIMIR_PASSWORD", "prometheus", "services.prometheus.remote_write[0].basic_auth.password")
    assert required_secrets(stack)["prometheus_remote_write_mimir_password"].consumers == ("prometheus",)


def test_no_remote_write_renders_none(tmp_path):
    config = yamltext.load(render_bundle(stack_with(tmp_path=tmp_path))["configs/prometheus/prometheus.yml"])
    assert "remote_write" not in config


@pytest.mark.parametrize("target, path, words", [
    ({"url": "ftp://x/write"}, "services.prometheus.remote_write[0].url", "http:// or https://"),
    ({"url": "https://user:pw@x/write"}, "services.prometheus.remote_write[0].url", "user name or password"),
    ({"url": "https://x/{{ .X }}"}, "services.prometheus.remote_write[0].url", "http:// or https://"),
    ({"url": "https://x/w", "basic_auth": {"username": "u", "password": "plain-text-secret"}},
     "services.prometheus.remote_write[0].basic_auth.password", "never written in stack.yaml"),
    ({"url": "https://x/w", "headers": {"Authorization": "Bearer x"}},
     "services.prometheus.remote_write[0].headers.Authorization", "set by Prometheus itself"),
    ({"url": "https://x/w", "headers": {"Bad Header": "x"}},
     "services.prometheus.remote_write[0].headers.Bad Header", "not an HTTP header name"),
    ({"url": "https://x/w", "queue": {"max_shards": 0}}, "services.prometheus.remote_write[0].queue.max_shards",
     "between 1 and"),
    ({"url": "https://x/w", "queue": {"min_shards": 5, "max_shards": 2}},
     "services.prometheus.remote_write[0].queue.min_shards", "max_shards"),
    ({"url": "https://x/w", "name": "Bad Name"}, "services.prometheus.remote_write[0].name", "lowercase"),
])
def test_bad_remote_write_settings_are_refused_at_their_key(tmp_path, target, path, words):
    with pytest.raises(ConfigError) as caught:
        stack_with(target, tmp_path=tmp_path)
    assert caught.value.path == path and words in str(caught.value)
    assert "plain-text-secret" not in str(caught.value)


def test_two_remote_writes_may_not_share_a_name(tmp_path):
    with pytest.raises(ConfigError, match="already used"):
        stack_with({"url": "https://a/w", "name": "x-y"}, {"url": "https://b/w", "name": "x_y"}, tmp_path=tmp_path)
