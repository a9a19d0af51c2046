"""`stackctl verify` at the CLI edge: options, JSON for scripts, exit codes, one message for a user error."""

from __future__ import annotations

import json

from stackctl.ops.context import Runtime
from tests.conftest import Project
from tests.fakes.compose import FakeEngine, container


def test_unknown_check_is_a_user_error_with_exit_2(project: Project, cli):
    result = cli("-f", project.file, "verify", "--only", "scrap")
    assert result.code == 2
    assert "no check named 'scrap'" in result.stderr and "scrape" in result.stderr  # the closest name
    assert "Traceback" not in result.output


def test_json_report_and_exit_1_when_a_check_fails(project: Project, cli):
    """Nothing answers on the stack's ports here: readiness fails with where to look; engine-judged services pass."""
    project.write("preset: metrics\nservices: {grafana: {enabled: false}, prometheus: {port: 1}}\n")
    runtime = Runtime(engine=FakeEngine(running={"node-exporter": container("node-exporter")}))
    result = cli("-f", project.file, "verify", "--only", "ready", "--json", "--timeout", "3", runtime=runtime)
    assert result.code == 1
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"ready:prometheus", "ready:alertmanager", "ready:node-exporter"}
    assert checks["ready:prometheus"]["status"] == "failed"
    assert checks["ready:prometheus"]["look"] == "stackctl logs prometheus"
    assert "no answer from http://127.0.0.1:1/-/ready" in checks["ready:prometheus"]["detail"]
    assert checks["ready:node-exporter"]["status"] == "passed"
    assert report["ok"] is False and len(report["run_id"]) == 12


def test_table_names_the_failure_and_where_to_look(project: Project, cli):
    project.write("preset: metrics\nservices: {grafana: {enabled: false}, alertmanager: {port: 1}}\n")
    result = cli("-f", project.file, "verify", "--only", "ready:alertmanager", "--timeout", "3",
                 runtime=Runtime(engine=FakeEngine()))
    assert result.code == 1
    assert "ready:alertmanager failed (alertmanager)" in result.stderr
    assert "look: stackctl logs alertmanager" in result.stderr
    assert "0 passed, 1 failed, 0 skipped" in result.stdout


def test_a_named_check_that_cannot_run_fails_the_run(project: Project, cli):
    project.write("preset: metrics\n")
    result = cli("-f", project.file, "verify", "--only", "alerts:delivery", runtime=Runtime(engine=FakeEngine()))
    assert result.code == 1
    assert "alerts:delivery did not run: runs with --deep" in result.stderr


def test_bad_timeout_is_a_user_error(project: Project, cli):
    result = cli("-f", project.file, "verify", "--timeout", "0", runtime=Runtime(engine=FakeEngine()))
    assert result.code == 2 and "--timeout must be above 0" in result.stderr


def test_up_has_a_verify_option(project: Project, cli):
    result = cli("up", "--help")
    assert "--verify" in result.stdout
