"""The local images of tests.support.images: built from Debian packages, shaped like the official images, and
really serving. The rootfs checks need no Docker; the rest run containers and skip when no engine is reachable."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.debian import package_version
from tests.support.images import (
    LABEL_LOCAL,
    LABEL_SOURCE,
    LOCAL_IMAGES,
    NOBODY,
    REQUIRED_APPLETS,
    build_image,
    deb_version,
    docker_available,
    ensure_image,
    ensure_images,
    write_rootfs,
)

DOCKER = docker_available()
needs_docker = pytest.mark.skipif(not DOCKER, reason="no Docker engine reachable (docker info failed)")
SERVICES = list(LOCAL_IMAGES)
BINARIES = [(service, binary) for service, spec in LOCAL_IMAGES.items() for binary in spec.binaries]
TEST_LABEL = "org.stackctl.test=test_local_images"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


@contextlib.contextmanager
def container(image: str, *run_args: str) -> Iterator[str]:
    """A detached container of `image`, removed with its anonymous volumes afterwards."""
    container_id = docker("run", "-d", "--label", TEST_LABEL, *run_args, image).stdout.strip()
    try:
        yield container_id
    finally:
        docker("rm", "-f", "-v", container_id, check=False)


def wait_ready(container_id: str, port: int, path: str, timeout: float = 60) -> None:
    """Poll the way the stack's healthchecks do: busybox wget inside the container."""
    url = f"http://127.0.0.1:{port}{path}"
    deadline = time.monotonic() + timeout
    while True:
        if docker("exec", container_id, "wget", "-q", "--spider", url, check=False).returncode == 0:
            return
        if time.monotonic() > deadline:
            logs = docker("logs", "--tail", "30", container_id, check=False)
            pytest.fail(f"{url} not ready after {timeout}s; logs:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)


def published(container_id: str, port: int) -> str:
    """host:port where the container's port is published on 127.0.0.1."""
    return docker("port", container_id, f"{port}/tcp").stdout.split()[0]


def http_get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def active_jobs(address: str) -> set[str]:
    _, body = http_get(f"http://{address}/api/v1/targets")
    return {target["labels"]["job"] for target in json.loads(body)["data"]["activeTargets"]}


# --- no Docker needed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_rootfs_has_binaries_libraries_busybox_and_owned_dirs(service: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        write_rootfs(service, tar)
    buffer.seek(0)
    tar = tarfile.open(fileobj=buffer)
    names = tar.getnames()
    assert len(names) == len(set(names)), "no path is written twice"
    members = {member.name: member for member in tar.getmembers()}
    spec = LOCAL_IMAGES[service]

    for binary in spec.binaries:
        member = members[binary.lstrip("/")]
        assert member.isfile() and member.mode == 0o755 and member.uid == 0
    for library in ("lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"):
        assert members[library].isfile(), f"{library} must be the real file, not a symlink"
    assert members["bin/busybox"].isfile()
    for applet in REQUIRED_APPLETS:
        assert members[f"bin/{applet}"].issym() and members[f"bin/{applet}"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert members["etc/ssl/certs/ca-certificates.crt"].size > 0
    for directory in spec.owned_dirs:
        member = members[directory.lstrip("/")]
        assert member.isdir() and (member.uid, member.gid) == (NOBODY, NOBODY)
    passwd = tar.extractfile("etc/passwd").read().decode()
    assert "root:x:0:0:" in passwd and "nobody:x:65534:65534:" in passwd


def test_docker_available_is_false_when_the_engine_does_not_answer(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert docker_available() is False
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert docker_available() is False


# --- with Docker ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tags() -> dict[str, str]:
    return ensure_images()


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.usefixtures("tags")
class TestImage:
    pytestmark = [pytest.mark.docker, needs_docker]

    def test_tag_and_config_match_the_official_image(self, service: str, tags: dict[str, str]) -> None:
        spec = LOCAL_IMAGES[service]
        assert tags[service] == f"local/{service}:{package_version(spec.package)}"
        config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", tags[service]).stdout)
        assert config["User"] == "nobody"
        assert config["Entrypoint"] == list(spec.entrypoint)
        assert (config.get("Cmd") or []) == list(spec.cmd)
        assert config["WorkingDir"] == spec.workdir
        assert set(config["ExposedPorts"]) == {f"{spec.port}/tcp"}
        assert set(config.get("Volumes") or {}) == set(spec.volumes)
        assert config["Labels"][LABEL_SOURCE] == f"debian:{spec.package}={deb_version(spec.package)}"
        assert config["Labels"][LABEL_LOCAL] == "1"

    def test_runs_as_nobody_with_owned_dirs_and_busybox(self, service: str, tags: dict[str, str]) -> None:
        spec = LOCAL_IMAGES[service]
        dirs = " ".join(spec.owned_dirs)
        # Each owned dir must be writable by nobody (the data dirs are where the services write).
        script = f'id -u; id -g; pwd; for d in /tmp {dirs}; do touch $d/.w && rm $d/.w && stat -c "%n %u:%g" $d; done'
        result = docker("run", "--rm", "--entrypoint", "/bin/sh", tags[service], "-c", script)
        lines = result.stdout.splitlines()
        assert lines[:3] == ["65534", "65534", spec.workdir]
        assert lines[3:] == ["/tmp 0:0"] + [f"{directory} 65534:65534" for directory in spec.owned_dirs]

    def test_becomes_ready(self, service: str, tags: dict[str, str]) -> None:
        spec = LOCAL_IMAGES[service]
        with container(tags[service]) as container_id:
            wait_ready(container_id, spec.port, spec.health_path)


@pytest.mark.docker
@needs_docker
@pytest.mark.parametrize(("service", "binary"), BINARIES)
def test_binary_reports_the_package_version(service: str, binary: str, tags: dict[str, str]) -> None:
    result = docker("run", "--rm", "--entrypoint", binary, tags[service], "--version")
    assert package_version(LOCAL_IMAGES[service].package) in result.stdout + result.stderr


@pytest.mark.docker
@needs_docker
def test_prometheus_serves_its_api_on_a_published_port(tags: dict[str, str]) -> None:
    with container(tags["prometheus"], "-p", "127.0.0.1::9090") as container_id:
        wait_ready(container_id, 9090, "/-/ready")
        address = published(container_id, 9090)
        assert http_get(f"http://{address}/-/ready")[0] == 200
        _, body = http_get(f"http://{address}/api/v1/status/buildinfo")
        assert json.loads(body)["data"]["version"].startswith(package_version("prometheus"))
        # The default config scrapes Prometheus itself; the scrape manager syncs targets a few seconds after start.
        deadline = time.monotonic() + 30
        while not (jobs := active_jobs(address)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert jobs == {"prometheus"}
        check = docker("exec", container_id, "promtool", "check", "config", "/etc/prometheus/prometheus.yml")
        assert "SUCCESS" in check.stdout + check.stderr


@pytest.mark.docker
@needs_docker
def test_alertmanager_accepts_and_lists_an_alert(tags: dict[str, str]) -> None:
    with container(tags["alertmanager"], "-p", "127.0.0.1::9093") as container_id:
        wait_ready(container_id, 9093, "/-/ready")
        docker("exec", container_id, "amtool", "check-config", "/etc/alertmanager/alertmanager.yml")
        amtool = ("exec", container_id, "amtool", "--alertmanager.url=http://127.0.0.1:9093")
        docker(*amtool, "alert", "add", "LocalImageTest", "severity=info")
        assert "LocalImageTest" in docker(*amtool, "alert", "query").stdout
        _, body = http_get(f"http://{published(container_id, 9093)}/api/v2/status")
        assert json.loads(body)["versionInfo"]["version"].startswith(package_version("prometheus-alertmanager"))


@pytest.mark.docker
@needs_docker
def test_second_call_reuses_the_image(tags: dict[str, str]) -> None:
    before = {service: image_id(tag) for service, tag in tags.items()}
    started = time.monotonic()
    for service in SERVICES:
        assert build_image(service) == (tags[service], False)
    elapsed = time.monotonic() - started
    assert {service: image_id(tag) for service, tag in tags.items()} == before
    assert elapsed < 10, f"cached lookups took {elapsed:.1f}s"


@pytest.mark.docker
@needs_docker
def test_force_rebuilds_and_drops_the_replaced_image(tags: dict[str, str]) -> None:
    tag = tags["pushgateway"]
    old = image_id(tag)
    # The old image is kept while a container uses it (by design): make sure none does, so removal is expected.
    for container in docker("ps", "-aq", "--filter", f"ancestor={old}", check=False).stdout.split():
        docker("rm", "-f", container, check=False)
    assert build_image("pushgateway", force=True) == (tag, True)
    assert image_id(tag) != old
    assert docker("image", "inspect", old, check=False).returncode != 0, "replaced image is removed"
    assert ensure_image("pushgateway") == tag
