"""Check PromQL expressions (e.g. from Grafana dashboards) with the real promtool.

Each expression becomes one recording rule in a temporary rules file, which `promtool check rules` parses with the
same parser Prometheus uses. Grafana template variables are replaced by plain values first, since promtool does not
know them. promtool comes from `tests.support.debian.tools_bin_dir()` (Debian's prometheus package) unless a path is
given.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

# Grafana's interval macros: all become a plain duration.
DURATION_MACROS = (
    "__rate_interval_ms",
    "__rate_interval",
    "__interval_ms",
    "__interval",
    "__range_ms",
    "__range_s",
    "__range",
)
DEFAULT_DURATION = "5m"
DEFAULT_VALUE = "placeholder"

# $var, ${var}, ${var:format}, ${var.path}, [[var]], [[var:format]]
VARIABLE_RE = re.compile(
    r"\$\{(?P<braced>[A-Za-z0-9_]+)(?:[.:][^}]*)?\}"
    r"|\[\[(?P<bracketed>[A-Za-z0-9_]+)(?::[^\]]*)?\]\]"
    r"|\$(?P<plain>[A-Za-z0-9_]+)"
)

RULE_ERROR_RE = re.compile(r'group "(?P<group>[^"]*)", rule (?P<index>\d+), "(?P<record>[^"]*)": (?P<message>.*)')


def template_variables(text: str) -> set[str]:
    """Names of the Grafana template variables referenced in text ($x, ${x}, ${x:fmt}, [[x]])."""
    names = set()
    for match in VARIABLE_RE.finditer(text):
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name and not name.isdigit():
            names.add(name)
    return names


def substitute_variables(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables by plain values: interval macros by 5m, any other variable by `values` or a word."""
    values = values or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name.isdigit():  # "$1" in label_replace replacements is not a Grafana variable
            return match.group(0)
        if name in values:
            return values[name]
        if name in DURATION_MACROS:
            if name.endswith("_ms"):
                return "300000"
            if name.endswith("_s"):
                return "300"
            return DEFAULT_DURATION
        return DEFAULT_VALUE

    return VARIABLE_RE.sub(replace, expr)


def _promtool(promtool: str | Path | None) -> str:
    if promtool is not None:
        return str(promtool)
    from tests.support.debian import tools_bin_dir

    return str(tools_bin_dir() / "promtool")


def _rules_document(exprs: list[str]) -> str:
    rules = [{"record": f"dashboard_check:expr{i}", "expr": expr} for i, expr in enumerate(exprs)]
    # JSON is YAML, and it needs no quoting rules of its own.
    return json.dumps({"groups": [{"name": "dashboard_exprs", "rules": rules}]}, indent=2)


def _run(promtool: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "rules", "--lint=none", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_promql(
    exprs: dict[str, str],
    *,
    variables: dict[str, str] | None = None,
    promtool: str | Path | None = None,
) -> dict[str, str]:
    """Check every expression with `promtool check rules`; returns {name: error message} for those that fail.

    `exprs` maps a name (e.g. "stack-overview.json: panel 3 'Targets up' A") to a PromQL expression, which may
    contain Grafana variables; `variables` overrides the value used for some of them.
    """
    if not exprs:
        return {}
    tool = _promtool(promtool)
    names = list(exprs)
    substituted = [substitute_variables(exprs[name], variables) for name in names]
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="promql-check-") as tmp:
        tmp_path = Path(tmp)
        # Fast path: one file, one promtool run. promtool names the failing rule by its 1-based index.
        all_file = tmp_path / "all.rules.yml"
        all_file.write_text(_rules_document(substituted))
        result = _run(tool, [all_file])
        if result.returncode == 0:
            return {}
        output = result.stdout + result.stderr
        for line in output.splitlines():
            match = RULE_ERROR_RE.search(line)
            if match:
                index = int(match.group("index")) - 1
                if 0 <= index < len(names):
                    name = names[index]
                    errors[name] = (errors[name] + "\n" if name in errors else "") + match.group("message")
        if errors:
            return errors
        # The file failed as a whole (or the output was not understood): one file per expression, so each error
        # is attributed by the file it names.
        files = []
        for i, expr in enumerate(substituted):
            path = tmp_path / f"expr{i}.rules.yml"
            path.write_text(_rules_document([expr]))
            files.append(path)
        result = _run(tool, files)
        output = result.stdout + result.stderr
        for i, path in enumerate(files):
            lines = [line for line in output.splitlines() if str(path) + ":" in line]
            if lines:
                errors[names[i]] = "\n".join(line.split(str(path) + ":", 1)[1].strip() for line in lines)
        if not errors:
            errors["<promtool>"] = (
                f"promtool failed (exit {result.returncode}) without naming a rule:\n{output[-2000:]}"
            )
    return errors
