"""libyaml and the pure-Python YAML code give the same bundle, so a machine without libyaml renders the same bytes."""

from __future__ import annotations

import pytest
import yaml

from stackctl.core import yamltext
from stackctl.core.render import render_bundle
from tests.conftest import init_text, stack_from


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML was built without libyaml")
def test_the_pure_python_fallback_renders_the_same_bundle(tmp_path, monkeypatch):
    stack = stack_from(init_text("full"), tmp_path)
    with_libyaml = render_bundle(stack)
    assert yamltext.Loader is yaml.CSafeLoader and yamltext.Dumper is yaml.CSafeDumper
    monkeypatch.setattr(yamltext, "Loader", yaml.SafeLoader)
    monkeypatch.setattr(yamltext, "Dumper", yaml.SafeDumper)
    assert render_bundle(stack) == with_libyaml


@pytest.mark.parametrize("value", ["plain", "a: b", "x-${VAR}", "multi\nline", "tab\there", "quote'\"", "emoji 😀",
                                   "", "123", "true", "null", "-", "#not a comment", " leading space"])
def test_both_dumpers_agree_on_awkward_strings(value):
    data = {"services": {"s": {"environment": {"KEY": value}, "command": [value]}}}
    pure = yaml.dump(data, Dumper=yaml.SafeDumper, sort_keys=True, default_flow_style=False, width=120)
    assert yamltext.dump(data) == pure
    assert yamltext.load(pure) == data
