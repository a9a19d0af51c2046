"""Benchmark: `stackctl backup` and `stackctl restore` of a Prometheus holding a synthetic TSDB of at least 1 GiB,
against the physical floor: `tar` of the same block files piped through `zstd` at the same level and thread count,
on the same disk (and `zstd -d | tar -x` for the restore).

The TSDB is made of real blocks: OpenMetrics text written here, turned into blocks by Debian's `promtool tsdb
create-blocks-from openmetrics` (cached under ~/.cache/stackctl-dev/bench-tsdb/). Its series are 70% gauges that
move like real ones (a random walk with two decimals, 5 s apart with millisecond jitter) and 30% high-entropy
values. A stack of its own (Prometheus 2.42 from the local Debian-built image, nothing else) gets the blocks in its
volume, then each run, alternating floor and stackctl, times:

- backup: `stackctl backup --services prometheus` (admin-API snapshot, copied out through the engine's archive API,
  SHA-256 of every file, zstd, written) against `tar -cf - BLOCKS | zstd -3 -T1` reading the volume's directory.
- restore: `stackctl restore --services prometheus --yes --no-verify` (every check, staging into the volume through
  the engine, the swap, Prometheus stopped and started and healthy again) against `zstd -d | tar -x` into an empty
  directory of the same disk. The restore's own phase times are reported too.

Prints a Markdown section for bench/RESULTS.md.

    python bench/bench_backup.py [--size-mib 1100] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import images  # noqa: E402
from tests.support.debian import cache_root, tools_bin_dir  # noqa: E402

LEVEL = 3
INTERVAL = 5.0  # seconds between samples of a series
WINDOW = 7200  # one 2 h block: promtool reads its input once per block range, and Prometheus never compacts one block
RECIPE = 1  # bump when the data changes


def generate_openmetrics(path: Path, series: int, seed: int = 1) -> int:
    """One 2 h window of samples for `series` series; returns the number of samples."""
    rnd = random.Random(seed)
    per_series = int(WINDOW / INTERVAL) - 2
    start = (int(time.time()) // WINDOW) * WINDOW - 2 * WINDOW + 1  # a whole window, in the past, within retention
    count = 0
    with path.open("w", buffering=1 << 22) as handle:
        handle.write("# TYPE bench_value gauge\n")
        for s in range(series):
            kind = "walk" if s % 10 < 7 else "entropy"
            labels = f'bench_value{{series="{s}",kind="{kind}"}} '
            times = [start + i * INTERVAL + rnd.randint(-20, 20) / 1000 for i in range(per_series)]
            if kind == "walk":
                value = rnd.uniform(0, 10000)
                values = []
                for _ in range(per_series):
                    value += rnd.uniform(-1, 1)
                    values.append(f"{value:.2f}")
            else:
                values = [repr(rnd.random()) for _ in range(per_series)]
            handle.write("".join(f"{labels}{v} {t:.3f}\n" for v, t in zip(values, times)))
            count += per_series
        handle.write("# EOF\n")
    return count


def tsdb_blocks(size_mib: int, promtool: Path) -> Path:
    """Blocks of at least `size_mib` MiB, made once and cached."""
    root = cache_root() / "bench-tsdb" / f"r{RECIPE}-{size_mib}mib"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # About 8.5 bytes a sample in the blocks with this mix (measured); aim a little higher.
    series = int(size_mib * 1024 * 1024 / 8.0 / (WINDOW / INTERVAL)) + 1
    with tempfile.TemporaryDirectory(prefix="bench-openmetrics-", dir=root.parent) as scratch:
        text = Path(scratch) / "input.om"
        started = time.perf_counter()
        samples = generate_openmetrics(text, series)
        print(f"generated {samples} samples of {series} series ({text.stat().st_size >> 20} MiB of OpenMetrics) in "
              f"{time.perf_counter() - started:.0f}s", file=sys.stderr)
        started = time.perf_counter()
        subprocess.run([str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(text), str(root)], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"promtool made the blocks in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    if size < size_mib * 1024 * 1024:
        raise SystemExit(f"the blocks hold {size >> 20} MiB, less than the {size_mib} MiB asked for: raise RECIPE's "
                         "sample count")
    (root / ".complete").write_text(f"{size}\n")
    return root


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def run(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-3000:]}")
    return result


def timed(argv: list[str], shell: bool = False) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    if shell:
        result = subprocess.run(argv[0], shell=True, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {result.stderr[-2000:]}")
    else:
        result = run(argv)
    return time.perf_counter() - started, result


def load_blocks(stackctl: list[str], project: str, blocks: Path) -> None:
    """Put the cached blocks into the stack's Prometheus volume (stopped), the way an operator would: docker cp."""
    import docker

    client = docker.from_env(timeout=600)
    container = client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                          "com.docker.compose.service=prometheus"]})[0]
    container.stop()
    run(["docker", "cp", f"{blocks}/.", f"{container.id}:/prometheus/"])
    helper = client.containers.run(container.image.id, entrypoint=["/bin/sh", "-c"], user="0", remove=True,
                                   command=["chown -R 65534:65534 /prometheus && rm -f /prometheus/.complete"],
                                   volumes={f"{project}_prometheus-data": {"bind": "/prometheus", "mode": "rw"}})
    del helper
    container.start()
    run(stackctl + ["up", "--timeout", "300"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1100, help="size of the TSDB (default 1100 MiB)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not images.docker_available():
        raise SystemExit("no Docker engine reachable")
    tools = tools_bin_dir()
    promtool = tools / "promtool"
    zstd = shutil.which("zstd")
    if zstd is None:
        raise SystemExit("the zstd CLI is missing (apt-get install zstd): the floor is measured with it")
    local = images.ensure_images(["prometheus"])
    blocks = tsdb_blocks(args.size_mib, promtool)
    size = tree_size(blocks)
    workdir = Path(tempfile.mkdtemp(prefix="stackctl-bench-backup-"))
    project = f"bench-backup-{uuid.uuid4().hex[:6]}"
    stack_file = workdir / "stack.yaml"
    import yaml

    stack_file.write_text(yaml.safe_dump({"project": project, "preset": "metrics", "services": {
        "grafana": {"enabled": False}, "alertmanager": {"enabled": False}, "node_exporter": {"enabled": False},
        "prometheus": {"image": local["prometheus"], "port": _free_port()}}}))
    env_path = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path
    stackctl = [sys.executable, "-m", "stackctl", "-f", str(stack_file)]
    results: dict[str, list[float]] = {k: [] for k in ("backup", "floor backup", "restore", "floor restore")}
    phases: list[dict] = []
    sizes: dict[str, int] = {}
    try:
        run(stackctl + ["up", "--timeout", "300"])
        load_blocks(stackctl, project, blocks)
        mountpoint = Path(json.loads(run(["docker", "volume", "inspect", f"{project}_prometheus-data"]).stdout)[0]
                          ["Mountpoint"])
        source = mountpoint if os.access(mountpoint, os.R_OK) else blocks
        names = sorted(p.name for p in source.iterdir() if len(p.name) == 26)  # the ULID-named block directories
        archives = workdir / "archives"
        floor_file = workdir / "floor.tar.zst"
        extract = workdir / "floor-extract"
        for _ in range(args.runs):
            seconds, _ = timed([f"tar -cf - -C {source} {' '.join(names)} | {zstd} -{LEVEL} -T1 -q -c > {floor_file}"],
                               shell=True)
            results["floor backup"].append(seconds)
            sizes["floor"] = floor_file.stat().st_size
            shutil.rmtree(archives, ignore_errors=True)
            seconds, result = timed(stackctl + ["backup", "--services", "prometheus", "--output", str(archives),
                                                "--json"])
            results["backup"].append(seconds)
            archive = Path(json.loads(result.stdout)["archive"])
            sizes["archive"] = archive.stat().st_size
            shutil.rmtree(extract, ignore_errors=True)
            extract.mkdir()
            seconds, _ = timed([f"{zstd} -d -q -c {floor_file} | tar -x -C {extract}"], shell=True)
            results["floor restore"].append(seconds)
            shutil.rmtree(extract, ignore_errors=True)
            seconds, result = timed(stackctl + ["restore", str(archive), "--services", "prometheus", "--yes",
                                                "--no-verify", "--json"])
            results["restore"].append(seconds)
            phases.append(json.loads(result.stdout).get("phases") or {})
    finally:
        subprocess.run(stackctl + ["down", "--volumes", "--yes"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"TSDB: {size / 2**20:.0f} MiB in {len(names)} block(s) ({source}); zstd -{LEVEL} -T1 for both; "
          f"medians of {args.runs} runs, floor and stackctl alternating\n")
    print("| measurement | stackctl | floor | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| backup, s | {median['backup']:.2f} | {median['floor backup']:.2f} | "
          f"{median['backup'] / median['floor backup']:.2f}x | <= 1.2x |")
    print(f"| restore, s | {median['restore']:.2f} | {median['floor restore']:.2f} | "
          f"{median['restore'] / median['floor restore']:.2f}x | <= 1.2x |")
    print(f"| archive size, MiB | {sizes['archive'] / 2**20:.1f} | {sizes['floor'] / 2**20:.1f} | "
          f"{sizes['archive'] / sizes['floor']:.3f}x | <= 1.05x |")
    print("\nall runs (s): " + "; ".join(f"{k}: {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in results.items()))
    if phases and phases[0]:
        keys = list(phases[0])
        print("restore phases (median s): " + ", ".join(
            f"{k} {statistics.median(p.get(k, 0) for p in phases):.2f}" for k in keys))
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
