"""Every metric the stack reads exists, with the labels the tests give it, at the versions stackctl renders for.

The fixtures (tests/fixtures/metrics, see tests.support.expositions): recordings of the binaries that run here
(Debian's Prometheus 2.42, Alertmanager 0.25, node-exporter 1.5, blackbox 0.23, the two instrumented apps), and
for the pinned images the families the stack reads, written from the upstream source at the pinned tag.
- Each scraped component has a fixture for the version the catalog pins: a version bump without one fails.
- Every metric an alert, recording rule, dashboard panel or runbook query reads is in the fixture of the pinned
  version of its component (or an app's).
- Every input series of the promtool cases has a name and label names some fixture exposes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from stackctl.core import catalog, verify
from tests.provisioning.test_dashboards import DASHBOARD_FILES, collect_promql, load, metric_names
from tests.provisioning.test_rules import RULE_TEST_FILES, TEST_STACK, render_stack, rule_groups
from tests.provisioning.test_runbooks import PROMQL_BLOCK, RUNBOOKS
from tests.support.expositions import RECORDED, UPSTREAM, load as load_fixture

# Series every Prometheus target or rule evaluation makes, not any exposition; and the probes `stackctl verify`
# sends itself (its verification rule fires on one of them only).
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_post_metric_relabeling",
             "scrape_series_added", "scrape_samples_scraped", verify.RULE_SERIES, verify.METRIC_NAME}
# Labels Prometheus adds to scraped series: the target's, and the probe label of the blackbox job.
TARGET_LABELS = {"job", "instance", "probe"}
APPS = ("app-opentelemetry-sdk", "app-prometheus-client", "app-opentelemetry-pre-1.0")


def fixture_stem(spec: catalog.ServiceSpec) -> str:
    return f"{spec.key.replace('_', '-')}-{spec.version.lstrip('v')}"


SCRAPED = [spec for spec in catalog.CATALOG if spec.metrics]


def fixture_path(stem: str) -> Path | None:
    for directory in (UPSTREAM, RECORDED):
        if (directory / f"{stem}.prom").exists():
            return directory / f"{stem}.prom"
    return None


@pytest.mark.parametrize("spec", SCRAPED, ids=lambda s: s.key)
def test_each_pinned_version_has_a_fixture(spec):
    """A catalog version bump fails here until the fixture of the new version is recorded or written."""
    assert fixture_path(fixture_stem(spec)), (
        f"no tests/fixtures/metrics/{{upstream,recorded}}/{fixture_stem(spec)}.prom for {spec.title} {spec.version}: "
        "record it (python -m tests.support.expositions) or write it from the upstream source at that tag")


@pytest.mark.parametrize("path", sorted(UPSTREAM.glob("*.prom")), ids=lambda p: p.name)
def test_upstream_fixtures_name_where_they_were_read(path):
    """Written, not recorded: the header names the repository and the version read, and a # SOURCE line the file."""
    lines = path.read_text().splitlines()
    header = " ".join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("# "))]
                      if not line.startswith(("# TYPE", "# SOURCE")))
    assert re.search(r"\b[\w.-]+/[\w.-]+\b", header), "the header names no repository (owner/name)"
    if not path.stem.startswith("app-"):  # an app's fixture names the semantic conventions' version instead
        version = path.stem.rsplit("-", 1)[1]
        assert version in header, f"the header does not name version {version}"
    families = [line for line in lines if line.startswith("# TYPE")]
    assert len(families) == 1 or any(line.startswith("# SOURCE") for line in lines), "no # SOURCE line"


def pinned_families() -> dict[str, set[str]]:
    """metric name -> fixtures (pinned versions and the apps) that expose it."""
    found: dict[str, set[str]] = {}
    stems = [fixture_stem(spec) for spec in SCRAPED] + list(APPS)
    for stem in stems:
        path = fixture_path(stem)
        assert path, stem
        for name in load_fixture(path):
            found.setdefault(name, set()).add(stem)
    return found


def every_fixture() -> dict[str, list]:
    families: dict[str, list] = {}
    for path in sorted(RECORDED.glob("*.prom")) + sorted(UPSTREAM.glob("*.prom")):
        for name, family in load_fixture(path).items():
            families.setdefault(name, []).append((path.name, family))
    return families


def read_metrics(tmp_path_factory) -> dict[str, set[str]]:
    """metric name -> where the stack reads it (rules, dashboards, runbooks)."""
    bundle = render_stack(tmp_path_factory.mktemp("fixtures"), TEST_STACK)
    exprs: dict[str, str] = {}
    for file, groups in rule_groups(bundle).items():
        for group in groups:
            for rule in group["rules"]:
                exprs[f"{file} {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    for path in DASHBOARD_FILES:
        exprs.update(collect_promql(path, load(path)))
    for name, path in RUNBOOKS.items():
        for i, query in enumerate(PROMQL_BLOCK.findall(path.read_text())):
            exprs[f"runbooks/{name}.md query {i + 1}"] = query
    recorded = {rule.get("record") for groups in rule_groups(bundle).values() for g in groups for rule in g["rules"]}
    used: dict[str, set[str]] = {}
    for where, expr in exprs.items():
        for name in metric_names(expr):
            if name not in SYNTHETIC and name not in recorded:
                used.setdefault(name, set()).add(where)
    return used


def test_every_metric_the_stack_reads_exists_at_the_pinned_versions(tmp_path_factory):
    used = read_metrics(tmp_path_factory)
    assert len(used) > 80, sorted(used)
    known = pinned_families()
    missing = {name: sorted(where)[:3] for name, where in used.items() if name not in known}
    assert not missing, f"read but exposed by no pinned version: {missing}"


def test_a_renamed_metric_is_caught():
    """The check is not vacuous: the names of the dead alerts are exposed by no pinned version."""
    known = pinned_families()
    for dead in ("otelcol_receiver_refused_spans_total", "otelcol_exporter_send_failed_spans_total",
                 "elasticsearch_cluster_health_up"):
        assert dead not in known, dead
    assert {"otelcol_receiver_refused_spans", "elasticsearch_cluster_health_status"} <= set(known)


SERIES = re.compile(r"(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?")


def input_series() -> list[tuple[str, str, set[str]]]:
    found = []
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for series in case.get("input_series") or []:
                match = SERIES.fullmatch(series["series"].strip())
                assert match, series["series"]
                labels = {part.split("=", 1)[0].strip() for part in re.findall(r'[A-Za-z_]+\s*=\s*"', match["labels"] or "")}
                found.append((path.name, match["name"], labels))
    return found


def test_promtool_inputs_have_the_shapes_of_the_fixtures():
    """Names that no version exposes, or labels no version puts on them, make tests that pass on series the stack
    never sees (as the _total collector names and elasticsearch_cluster_health_up did)."""
    fixtures = every_fixture()
    problems = []
    for file, name, labels in input_series():
        if name in SYNTHETIC:
            continue
        if name not in fixtures:
            problems.append(f"{file}: {name} is in no fixture")
            continue
        own = labels - TARGET_LABELS
        if not any(own <= set(label_set) for _, family in fixtures[name] for label_set in family.label_sets):
            shapes = sorted({tuple(sorted(s)) for _, f in fixtures[name] for s in f.label_sets})
            problems.append(f"{file}: {name} with labels {sorted(own)}; the fixtures have {shapes}")
    assert not problems, "\n".join(problems)
