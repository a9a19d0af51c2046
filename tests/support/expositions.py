"""Metric expositions as fixtures: what each component really exposes, at the version stackctl renders for.

tests/fixtures/metrics/ holds two kinds (see its README.md):
- recorded/: the /metrics text of binaries that run here, recorded by `record()` below on loopback: Debian's
  Prometheus, Alertmanager, node-exporter, Pushgateway and blackbox exporter, and the two instrumented apps of
  tests.support.apps (OpenTelemetry SDK and prometheus_client). The process tier records them again and compares.
- upstream/: for versions that do not run here (the pinned images), the metric families the stack reads, written
  in the exposition format from the upstream source at the pinned tag; a # SOURCE line names the file above each
  family or group of families.

`parse()` reads either into {metric name: Family}, which the metric-existence and series-shape tests use.

    python -m tests.support.expositions [--out DIR]    # re-record tests/fixtures/metrics/recorded
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.loopback import alertmanager_argv, debian_binary, free_port, get, processes, wait_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics"
RECORDED = FIXTURES / "recorded"
UPSTREAM = FIXTURES / "upstream"

_SAMPLE = re.compile(r'(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+\S+(?:\s+\S+)?\s*$')
_LABEL = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class Family:
    """One metric name as exposed: its type (from # TYPE) and every label-name set it appears with."""

    name: str
    type: str = "untyped"
    label_sets: set[frozenset[str]] = field(default_factory=set)
    values: dict[str, set[str]] = field(default_factory=dict)  # label name -> values seen

    @property
    def label_names(self) -> set[str]:
        return set().union(*self.label_sets) if self.label_sets else set()


def parse_labels(text: str) -> dict[str, str]:
    labels, pos = {}, 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if not match:
            raise ValueError(f"cannot parse labels {text!r} at {pos}")
        labels[match.group("key")] = match.group("value")
        pos = match.end()
    return labels


def parse(text: str) -> dict[str, Family]:
    """Sample names (with _bucket/_count/_sum/_total as exposed) -> Family."""
    types: dict[str, str] = {}
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind.strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"not an exposition line: {line!r}")
        name = match.group("name")
        labels = parse_labels(match.group("labels") or "")
        base = re.sub(r"_(bucket|count|sum|total|created|info)$", "", name)
        family = families.setdefault(name, Family(name, types.get(name) or types.get(base, "untyped")))
        family.label_sets.add(frozenset(labels))
        for key, value in labels.items():
            family.values.setdefault(key, set()).add(value)
    return families


def load(path: Path) -> dict[str, Family]:
    return parse(path.read_text())


def shape(families: dict[str, Family]) -> dict[str, tuple[str, frozenset[frozenset[str]]]]:
    """What must stay the same when a recording is made again: names, types and label-name sets, not values."""
    return {name: (f.type, frozenset(f.label_sets)) for name, f in families.items()}


# --- recording the binaries that run here -------------------------------------------------------------------------


def record(out: Path, settle: float = 5.0) -> dict[str, str]:
    """Run the Debian binaries and the two apps on loopback, wired as the stack wires them, and write their
    expositions to out/<component>-<version>.prom. Returns {file name: url recorded}."""
    from tests.support.debian import package_version

    def binary(package: str) -> str:
        return str(debian_binary(package))

    versions = {pkg: package_version(pkg) for pkg in (
        "prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "prometheus-pushgateway",
        "prometheus-blackbox-exporter")}
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="record-metrics-") as tmp, processes(Path(tmp)) as run:
        work = Path(tmp)
        port = {name: free_port() for name in ("am", "am_cluster", "node", "pg", "bb", "prom", "closed")}
        am, node, pg, bb, prom = (f"127.0.0.1:{port[k]}" for k in ("am", "node", "pg", "bb", "prom"))
        # Alertmanager: one webhook to a closed loopback port, so a notification is attempted and fails.
        (work / "alertmanager.yml").write_text(
            "route: {receiver: webhook, group_by: [alertname], group_wait: 1s, group_interval: 5s}\n"
            f"receivers:\n  - name: webhook\n    webhook_configs: [{{url: 'http://127.0.0.1:{port['closed']}/'}}]\n")
        run.start("alertmanager", alertmanager_argv(
            work / "alertmanager.yml", work / "am-data", am,
            f"--cluster.listen-address=127.0.0.1:{port['am_cluster']}",
            f"--cluster.advertise-address=127.0.0.1:{port['am_cluster']}"))
        run.wait_ready("alertmanager", f"http://{am}/-/ready")
        run.start("node", [binary("prometheus-node-exporter"),
                           f"--web.listen-address={node}", "--no-collector.systemd"])
        run.wait_ready("node", f"http://{node}/metrics")
        run.start("pushgateway", [binary("prometheus-pushgateway"),
                                  f"--web.listen-address={pg}", f"--persistence.file={work / 'pg.data'}"])
        run.wait_ready("pushgateway", f"http://{pg}/-/ready")
        push = urllib.request.Request(f"http://{pg}/metrics/job/record/instance/loopback", method="PUT",
                                      data=b"# TYPE record_last_success_timestamp_seconds gauge\n"
                                           b"record_last_success_timestamp_seconds 1.7e+09\n")
        urllib.request.urlopen(push, timeout=5).close()
        (work / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
        run.start("blackbox", [binary("prometheus-blackbox-exporter"),
                               f"--config.file={work / 'blackbox.yml'}", f"--web.listen-address={bb}"])
        run.wait_ready("blackbox", f"http://{bb}/-/healthy")
        app_metrics = {}
        for app, convention in (("otel", "otel"), ("pc", "prometheus-client")):
            app_port, app_metrics[app] = run.app(app, convention, namespace="shop")
            for path in ("/ok", "/fail", "/slow"):
                get(f"http://127.0.0.1:{app_port}{path}")
        (work / "rules.yml").write_text(
            "groups:\n  - name: record\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n"
            "        expr: vector(1)\n")
        (work / "prometheus.yml").write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ['{work / "rules.yml"}']
alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{am}']}}]}}]}}
scrape_configs:
  - {{job_name: prometheus, static_configs: [{{targets: ['{prom}']}}]}}
  - {{job_name: alertmanager, static_configs: [{{targets: ['{am}']}}]}}
  - {{job_name: node-exporter, static_configs: [{{targets: ['{node}']}}]}}
""")
        run.start("prometheus", [binary("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'prom-data'}", f"--web.listen-address={prom}",
                                 "--rules.alert.resend-delay=1s"])
        run.wait_ready("prometheus", f"http://{prom}/-/ready")

        def notification_failed() -> bool:
            return any(line.startswith('alertmanager_notifications_failed_total{integration="webhook"')
                       and not line.endswith(" 0") for line in get(f"http://{am}/metrics")[1].splitlines())

        if not wait_for(notification_failed, 90):
            raise RuntimeError("Alertmanager never recorded the failed webhook notification")
        time.sleep(settle)  # a few more scrapes and rule evaluations
        probe = urllib.parse.urlencode({"target": f"http://{prom}/-/ready", "module": "http_2xx"})
        targets = {
            f"prometheus-{versions['prometheus']}": f"http://{prom}/metrics",
            f"alertmanager-{versions['prometheus-alertmanager']}": f"http://{am}/metrics",
            f"node-exporter-{versions['prometheus-node-exporter']}": f"http://{node}/metrics",
            f"pushgateway-{versions['prometheus-pushgateway']}": f"http://{pg}/metrics",
            f"blackbox-exporter-{versions['prometheus-blackbox-exporter']}": f"http://{bb}/metrics",
            f"blackbox-exporter-{versions['prometheus-blackbox-exporter']}-probe": f"http://{bb}/probe?{probe}",
            "app-opentelemetry-sdk": f"http://127.0.0.1:{app_metrics['otel']}/metrics",
            "app-prometheus-client": f"http://127.0.0.1:{app_metrics['pc']}/metrics",
        }
        for name, url in targets.items():
            status, text = get(url)
            if status != 200:
                raise RuntimeError(f"{url}: HTTP {status}")
            (out / f"{name}.prom").write_text(text)
            written[f"{name}.prom"] = url
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RECORDED)
    args = parser.parse_args(argv)
    for name in sorted(record(args.out)):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
