"""Grafana expands $VAR, ${VAR}, $__file{...} and $__env{...} in every string of a provisioning file and only `$$`
escapes (Grafana's provisioning docs; REFERENCE.md "Grafana provisioning interpolation"). The datasources' data
link and trace-to-logs query carry Grafana's own ${__...} variables: they must arrive intact, so they are written
$${...}; every other `$` is a deliberate file or environment reference."""

from __future__ import annotations

import re

from stackctl.core import yamltext
from stackctl.core.render import render_bundle
from tests.conftest import stack_from

PROVISIONING = "grafana/provisioning/"


def expand_like_grafana(text: str) -> str:
    """What Grafana's interpolation leaves of a string: $$ -> $, ${X}/$X -> value of X (empty here)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$__file{", i) or text.startswith("$__env{", i):
            end = text.index("}", i)
            out.append("<file or environment reference>")
            i = end + 1
        elif text.startswith("${", i):
            i = text.index("}", i) + 1
        elif re.match(r"\$[A-Za-z_]", text[i:]):
            i = re.match(r"\$[A-Za-z_][A-Za-z0-9_]*", text[i:]).end() + i
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def test_data_links_and_trace_to_logs_reach_grafana_with_their_variables(tmp_path):
    plan = render_bundle(stack_from("", tmp_path))
    sources = {ds["uid"]: ds for ds in yamltext.load(plan[PROVISIONING + "datasources/datasources.yaml"])["datasources"]}
    link = sources["elasticsearch-logs"]["jsonData"]["dataLinks"][0]["url"]
    query = sources["jaeger"]["jsonData"]["tracesToLogsV2"]["query"]
    assert expand_like_grafana(link) == "${__value.raw}"
    assert expand_like_grafana(query) == 'trace_id:"${__span.traceId}"'


def test_no_other_dollar_in_provisioning_is_eaten(tmp_path):
    """Every `$` of a provisioning file survives Grafana's expansion, or is a $__file{}/$__env{} reference."""
    plan = render_bundle(stack_from("", tmp_path))
    files = [path for path in plan if path.startswith(PROVISIONING)]
    assert files
    for path in files:
        for text in strings(yamltext.load(plan[path])):
            expanded = expand_like_grafana(text)
            assert expanded.count("$") == text.count("$$"), f"{path}: {text!r} loses a variable to Grafana"
