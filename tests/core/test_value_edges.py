"""Edges of the value rules and formats that other tests only cross in the middle: the smallest and largest value
a setting accepts, the reserved label names, the units of a byte count past the largest unit, the registry part of
an image reference, the archive's timestamps, and what a manifest keeps of what a backup did not hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from stackctl.core import catalog
from stackctl.core.archive import Manifest, NotKept, iso
from stackctl.core.errors import ConfigError
from stackctl.core.units import format_bytes
from stackctl.core.versions import with_mirror
from stackctl.core.yamltext import dump
from tests.conftest import stack_from


def load(data: dict, tmp_path):
    return stack_from(yaml.safe_dump(data), tmp_path)


def refused(data: dict, tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        load(data, tmp_path)
    return info.value.message


def test_jaeger_keeps_at_least_one_trace(tmp_path):
    assert load({"services": {"jaeger": {"max_traces": 1}}}, tmp_path).config.services.jaeger.max_traces == 1
    assert "between 1 and" in refused({"services": {"jaeger": {"max_traces": 0}}}, tmp_path)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_scrape_targets_take_either_scheme(tmp_path, scheme):
    stack = load({"scrape_targets": [{"job": "app", "targets": ["app:8000"], "scheme": scheme}]}, tmp_path)
    assert stack.config.scrape_targets[0].scheme == scheme


@pytest.mark.parametrize("label", ["job", "instance", "__name__"])
def test_labels_prometheus_sets_itself_are_reserved(tmp_path, label):
    message = refused({"scrape_targets": [{"job": "app", "targets": ["app:8000"], "labels": {label: "x"}}]}, tmp_path)
    assert "is reserved" in message and label in message


def test_byte_counts_stay_in_gib_past_the_largest_unit():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**2) == "3.0 MiB"
    assert format_bytes(2048 * 1024**3) == "2048.0 GiB"


@pytest.mark.parametrize("repository, expected", [
    ("prom/prometheus", "mirror.example:5000/prom/prometheus"),
    ("docker.elastic.co/elasticsearch/elasticsearch", "mirror.example:5000/elasticsearch/elasticsearch"),
    ("registry:5000/team/app", "mirror.example:5000/team/app"),  # a registry named by host:port, no dot
    ("localhost/team/app", "mirror.example:5000/team/app"),
])
def test_a_mirror_replaces_the_registry_host_only(repository, expected):
    assert with_mirror(repository, "mirror.example:5000/") == expected


def test_archive_times_are_rfc3339_utc_with_microseconds():
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2026-03-04T03:06:07.890123Z"


def test_a_manifest_keeps_why_a_service_was_not_kept_and_which_stackctl_rendered_the_bundle():
    manifest = Manifest(project="p", stackctl_version="0.1.0", bundle_stackctl_version="", created="c", finished="f",
                        segments=(), not_kept=(NotKept("jaeger", "in-memory storage: traces are not kept"),),
                        encrypted=False, includes_secrets=True)
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again.not_kept == manifest.not_kept
    assert again.bundle_stackctl_version == "" and again.includes_secrets is True


def test_wget_healthchecks_are_quiet_spider_requests():
    assert catalog._wget("http://127.0.0.1:9090/-/ready") == (
        "CMD", "wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready")


def test_rendered_yaml_goes_through_stackctls_dumper():
    """The dumper keeps strings that YAML would read as something else quoted, and never emits Python tags."""
    text = dump({"a": "yes", "b": "1.0", "c": "on", "d": ("x",)})
    assert yaml.safe_load(text) == {"a": "yes", "b": "1.0", "c": "on", "d": ["x"]}
