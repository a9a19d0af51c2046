"""Debian packages as a source of real binaries (promtool, amtool, prometheus, ...) without installing services.

`apt-get download` fetches the .deb and `dpkg -x` unpacks it into a cache directory, so nothing is started and
nothing outside the cache is touched. The binaries link only libc, so they run on the host and inside the local
images built by `tests.support.images`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Debian package -> binaries it ships under usr/bin (the ones the project uses).
PACKAGES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus", "promtool"),
    "prometheus-alertmanager": ("prometheus-alertmanager", "amtool"),
    "prometheus-node-exporter": ("prometheus-node-exporter",),
    "prometheus-pushgateway": ("prometheus-pushgateway",),
    "prometheus-blackbox-exporter": ("prometheus-blackbox-exporter",),
    "busybox-static": (),
}

TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def cache_root() -> Path:
    base = os.environ.get("STACKCTL_DEV_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stackctl-dev"
    )
    return Path(base)


def extract_package(name: str) -> Path:
    """Download and unpack one Debian package (cached); returns the unpacked root."""
    root = cache_root() / "debs" / name
    marker = root / ".complete"
    if marker.exists():
        return root
    download_dir = cache_root() / "downloads"
    download_dir.mkdir(parents=True, exist_ok=True)
    debs = sorted(download_dir.glob(f"{name}_*.deb"))
    if not debs:
        result = subprocess.run(
            ["apt-get", "download", name], cwd=download_dir, capture_output=True, text=True
        )
        if result.returncode != 0 and os.geteuid() == 0:
            # A fresh machine has no package lists yet: fetch them once and try again.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            result = subprocess.run(
                ["apt-get", "download", name], cwd=download_dir, capture_output=True, text=True
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"apt-get download {name} failed (exit {result.returncode}); run 'apt-get update' first?\n"
                + result.stderr[-2000:]
            )
        debs = sorted(download_dir.glob(f"{name}_*.deb"))
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(staging)], check=True)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    marker.write_text(debs[-1].name + "\n")
    return root


def package_version(name: str) -> str:
    """Upstream version of the cached package, e.g. '2.42.0' for prometheus 2.42.0+ds-5+deb12u1."""
    root = extract_package(name)
    deb_name = (root / ".complete").read_text().strip()
    version = deb_name.split("_")[1].replace("%3a", ":")
    version = version.split(":", 1)[-1]
    for sep in ("+", "-", "~"):
        version = version.split(sep, 1)[0]
    return version


def tools_bin_dir() -> Path:
    """A directory with promtool and amtool, suitable for PATH."""
    bin_dir = cache_root() / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool, package in TOOLS.items():
        source = extract_package(package) / "usr" / "bin" / tool
        link = bin_dir / tool
        if not link.exists() or link.resolve() != source.resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(source)
    return bin_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools-path", action="store_true", help="unpack promtool/amtool and print their bin dir")
    args = parser.parse_args(argv)
    if args.tools_path:
        print(tools_bin_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
