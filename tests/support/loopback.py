"""Real binaries and apps on loopback for the process tier and the fixture recordings: free ports, processes that
log to a file each and are stopped together, Debian's binaries (a test skips where they cannot be unpacked), and a
Prometheus or Alertmanager running a rendered bundle's configuration."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    """(HTTP status, body) of a GET, asking for the Prometheus text format."""
    request = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


# --- Debian's binaries --------------------------------------------------------------------------------------------


def debian_binary(package: str) -> Path:
    """The binary of that name in the unpacked Debian package (each package used here names its server so)."""
    from tests.support.debian import extract_package

    return extract_package(package) / "usr" / "bin" / package


def require_debian(*packages: str) -> None:
    """Skip the test where the packages cannot be unpacked (no apt): STACKCTL_REQUIRE_ALL turns that into a
    failure."""
    import pytest

    from tests.support.debian import extract_package

    try:
        for package in packages:
            extract_package(package)
    except Exception as error:
        pytest.skip(f"cannot unpack Debian's {', '.join(packages)}: {error}")


def alertmanager_argv(config: Path, storage: Path, listen: str, *extra: str) -> list[str]:
    """Debian's Alertmanager, which loads its default templates from /usr/share/prometheus/alertmanager (a Debian
    patch) and refuses to start without them. Where they are not installed it runs in a private mount namespace
    with the unpacked package's usr/share overlaid on /usr/share: nothing changes outside that process."""
    from tests.support.debian import extract_package

    root = extract_package("prometheus-alertmanager")
    argv = [str(root / "usr/bin/prometheus-alertmanager"), f"--config.file={config}", f"--storage.path={storage}",
            f"--web.listen-address={listen}", *extra]
    if Path("/usr/share/prometheus/alertmanager/default.tmpl").exists():
        return argv
    script = f'mount -t overlay overlay -o lowerdir={root / "usr/share"}:/usr/share /usr/share && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "alertmanager", *argv]


# --- processes ----------------------------------------------------------------------------------------------------


class Processes:
    """Processes started for a test or a recording, each logging to workdir/<name>.log; all stopped by stop_all()."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        self.started[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait_ready(self, name: str, url: str, timeout: float = 30) -> None:
        """Until `url` answers 200; fails with the process' log when it exits or the time is up."""
        process = self.started[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            try:
                if get(url, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name}: {url} not ready after {timeout}s:\n{self.log(name)}")

    def stop_all(self) -> None:
        for process in reversed(list(self.started.values())):
            if process.poll() is None:
                process.terminate()
        for process in reversed(list(self.started.values())):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    # --- what the tests start ---------------------------------------------------------------------------------

    def app(self, name: str, convention: str, namespace: str = "") -> tuple[int, int]:
        """tests.support.apps of that naming convention ("otel" or "prometheus-client"), serving once ready;
        returns (app port, metrics port)."""
        port, metrics_port = free_port(), free_port()
        self.start(name, [sys.executable, "-m", "tests.support.apps", convention, "--port", str(port),
                          "--metrics-port", str(metrics_port), *(["--namespace", namespace] if namespace else [])])
        self.wait_ready(name, f"http://127.0.0.1:{port}/ok")  # its metrics server starts first
        return port, metrics_port

    def prometheus(self, bundle: Path, *extra: str, alertmanager: str = "") -> str:
        """Debian's Prometheus with a rendered bundle's prometheus.yml and rules (read from the bundle, not from
        /etc/prometheus as in the container); `alertmanager` (host:port) replaces the bundle's Alertmanager
        address. Returns its base URL once ready."""
        config_dir = bundle / "configs" / "prometheus"
        text = (config_dir / "prometheus.yml").read_text().replace(
            "/etc/prometheus/rules/*.yml", str(config_dir / "rules" / "*.yml"))
        if alertmanager:
            text = text.replace("alertmanager:9093", alertmanager)
        config = self.workdir / "prometheus.yml"
        config.write_text(text)
        address = f"127.0.0.1:{free_port()}"
        self.start("prometheus", [str(debian_binary("prometheus")), f"--config.file={config}",
                                  f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                                  f"--web.listen-address={address}", *extra])
        self.wait_ready("prometheus", f"http://{address}/-/ready")
        return f"http://{address}"


@contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    running = Processes(workdir)
    try:
        yield running
    finally:
        running.stop_all()
