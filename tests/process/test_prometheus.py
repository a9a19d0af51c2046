"""The real Prometheus binary (Debian's 2.42) runs the rendered config and rules on loopback.

Beyond what promtool checks statically: Prometheus loads every rule pack and evaluates every rule without an error,
the SLO rules included; and real instrumented apps of either HTTP naming convention (tests.support.apps) get their
RED series, SLO and HTTP alerts. (Alertmanager on loopback: test_heartbeat_and_fixtures.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.provisioning.test_rules import render_stack
from tests.support.loopback import processes, require_debian

pytestmark = pytest.mark.process

STACK = """
preset: metrics
services:
  prometheus:
    evaluation_interval: 1s
rules:
  slos:
    - {name: checkout-availability, service: checkout, objective: 99.9, window: 30d}
"""


def test_prometheus_loads_and_evaluates_every_rendered_rule(tmp_path: Path):
    require_debian("prometheus")
    bundle = render_stack(tmp_path, yaml.safe_load(STACK))
    with processes(tmp_path) as run:
        base = run.prometheus(bundle, "--web.enable-remote-write-receiver")

        def rules():
            groups = requests.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
            return [rule for group in groups for rule in group["rules"]]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(r.get("health") == "unknown" for r in rules()):
            time.sleep(0.5)
        loaded = rules()
        names = {r["name"] for r in loaded}
        assert {"TargetDown", "HostCpuUsageHigh", "HTTPErrorRatioHigh", "SLOErrorBudgetBurn",
                "job:http_requests:rate5m", "slo:error_budget_remaining:ratio"} <= names
        broken = {r["name"]: r.get("lastError") for r in loaded if r.get("health") != "ok"}
        assert broken == {}
        files = {g["file"] for g in requests.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]}
        rules_dir = bundle / "configs" / "prometheus" / "rules"
        assert {Path(f).name for f in files} == {p.name for p in rules_dir.glob("*.yml")}


# --- Instrumented apps of either naming convention (issue: OpenTelemetry apps get the same alerts) --------------


def query(base: str, expr: str) -> list[dict]:
    return requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]


@pytest.mark.parametrize("convention", ["otel", "prometheus-client"])
def test_http_alerts_and_slos_work_for_a_real_app_of_either_convention(convention, tmp_path):
    """A real app instrumented with the OpenTelemetry SDK (or prometheus_client) answers 1 request in 5 with a 500;
    Prometheus 2.42, scraping it with the rendered config and rules, records its error ratio, its SLO burns, and
    HTTPErrorRatioHigh goes pending."""
    require_debian("prometheus")
    job = f"checkout-{convention}"
    with processes(tmp_path) as run:
        port, metrics_port = run.app("app", convention)
        stack = {"preset": "metrics",
                 "services": {"prometheus": {"scrape_interval": "1s", "evaluation_interval": "1s"}},
                 "scrape_targets": [{"job": job, "targets": [f"127.0.0.1:{metrics_port}"]}],
                 "rules": {"slos": [{"name": "checkout", "service": job, "objective": 99.9}]}}
        base = run.prometheus(render_stack(tmp_path, stack))
        deadline = time.monotonic() + 60
        sent = 0
        ratio, pending, sli = [], [], []
        while time.monotonic() < deadline and not (ratio and pending and sli):
            for path in ("/ok", "/ok", "/slow", "/ok", "/fail"):  # bounded: at most 60 s of 25 requests/s
                requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                sent += 1
            time.sleep(0.2)
            ratio = query(base, f'job:http_requests_error_ratio:rate5m{{job="{job}"}} > 0.1')
            sli = query(base, 'slo:sli_error:ratio_rate5m{slo="checkout"} > 0.1')
            pending = [a for a in requests.get(f"{base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                       if a["labels"]["alertname"] == "HTTPErrorRatioHigh" and a["labels"].get("job") == job]
        assert ratio, f"no error ratio recorded for {job} after {sent} requests"
        assert 0.1 < float(ratio[0]["value"][1]) <= 0.3, ratio
        assert sli and sli[0]["metric"]["service"] == job, sli
        assert pending and {a["state"] for a in pending} <= {"pending", "firing"}, pending
        assert {a["labels"]["severity"] for a in pending} == {"warning", "critical"}
        codes = {r["metric"]["code"] for r in query(base, f'job_code:http_requests:rate5m{{job="{job}"}}')}
        assert codes == {"200", "500"}, codes
        p95 = query(base, f'job:http_request_duration_seconds:p95_5m{{job="{job}"}}')
        assert p95 and 0.04 < float(p95[0]["value"][1]) < 1, p95  # /slow takes 50 ms: seconds, not ms
