"""What a user reads when a receiver's secret or setting is written wrongly in stack.yaml: the kind of value found
(never the value), who reads the secret and how to say where it comes from."""

from __future__ import annotations

import pytest
import yaml

from stackctl.core.errors import ConfigError
from tests.conftest import stack_from

WHERE = "say where the value comes from with {from_file: PATH} or {from_env: VARIABLE}"


def message(receiver: dict, tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        stack_from(yaml.safe_dump({"alerting": {"receivers": [{"name": "s", "type": "slack", **receiver}]}}), tmp_path)
    return info.value.message.replace(f"{tmp_path}/", "")


@pytest.mark.parametrize("value, kind", [("https://hooks.example/T0/B0/sekret", "text"), (42, "a plain value")])
def test_a_secret_written_in_the_file_is_refused_by_its_kind(tmp_path, value, kind):
    text = message({"api_url": value}, tmp_path)
    assert text == (f"stack.yaml:3: alerting.receivers[0].api_url: is {kind}, but secrets are never written in "
                    f"stack.yaml: {WHERE} (stackctl hands the value to Alertmanager as a file under /run/secrets)")


def test_a_secret_given_under_an_unknown_key_says_how_secrets_are_given(tmp_path):
    assert message({"api_url": {"value": "x"}}, tmp_path) == (
        "stack.yaml:4: alerting.receivers[0].api_url.value: unknown key (a secret is given as {from_file: PATH} or "
        "{from_env: VARIABLE})")


def test_template_braces_and_bad_channels_are_refused(tmp_path):
    assert message({"api_url": {"from_env": "U"}, "channel": "{{ .x }}"}, tmp_path) == (
        "stack.yaml:5: alerting.receivers[0].channel: must not contain {{ or }}: Alertmanager reads it as a Go "
        "template")
    assert message({"api_url": {"from_env": "U"}, "channel": "a b"}, tmp_path) == (
        "stack.yaml:5: alerting.receivers[0].channel: must be a channel like #alerts (got 'a b')")
