"""Benchmark: `stackctl verify` (default checks, run concurrently under one deadline) on a healthy metrics stack,
against the same checks run one after another (`verify --only NAME` for each). Target: the default checks finish
within 5 s on the metrics stack.

Uses the metrics services from local images (tests.support.images) with the default scrape and evaluation
intervals, on free ports and a project of its own; the stack is brought up once, allowed to settle (first scrapes
and rule evaluations), measured, and removed. Prints a Markdown table for bench/RESULTS.md; exits 1 when the
concurrent run misses the target.

    python bench/bench_verify.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.images import write_local_stack  # noqa: E402

TARGET_SECONDS = 5.0
SETTLE_SECONDS = 35  # two scrape and evaluation intervals of 15 s: every target scraped, every rule evaluated


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(argv: list[str], check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_")})
    elapsed = time.perf_counter() - start
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stackctl-bench-verify-"))
    stack_file = workdir / "stack.yaml"
    write_local_stack(stack_file)
    data = json.loads("".join(line for line in stack_file.read_text().splitlines(True) if not line.startswith("#")))
    data["project"] = f"bench-verify-{os.getpid()}"
    data["services"]["prometheus"]["port"] = free_port()
    data["services"]["alertmanager"]["port"] = free_port()
    stack_file.write_text(json.dumps(data))
    stackctl = [sys.executable, "-m", "stackctl", "-f", str(stack_file)]
    try:
        run(stackctl + ["up", "--timeout", "180"])
        time.sleep(SETTLE_SECONDS)
        _, first = run(stackctl + ["verify", "--json"])
        names = [c["name"] for c in json.loads(first.stdout)["checks"] if c["status"] == "passed"]
        concurrent_wall, concurrent_report, sequential_wall, sequential_checks = [], [], [], []
        for _ in range(args.runs):
            wall, result = run(stackctl + ["verify", "--json"])
            concurrent_wall.append(wall)
            concurrent_report.append(json.loads(result.stdout)["duration"])
            walls, checks = 0.0, 0.0
            for name in names:
                wall, result = run(stackctl + ["verify", "--json", "--only", name])
                walls += wall
                checks += json.loads(result.stdout)["duration"]
            sequential_wall.append(walls)
            sequential_checks.append(checks)
    finally:
        run(stackctl + ["down", "--volumes", "--yes"], check=False)
    median = statistics.median
    print(f"`python bench/bench_verify.py --runs {args.runs}`: metrics preset (Prometheus 2.42, Alertmanager 0.25, "
          f"node-exporter 1.5 from local images, Grafana off), default intervals, {len(names)} default checks "
          f"({', '.join(names)}); medians of {args.runs} runs.\n")
    print("| measurement | concurrent s | one after another s | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| checks only (the report's duration) | {median(concurrent_report):.2f} | {median(sequential_checks):.2f} | "
          f"{median(concurrent_report) / median(sequential_checks):.2f}x | |")
    print(f"| whole command (`stackctl verify`, process start included) | {median(concurrent_wall):.2f} | "
          f"{median(sequential_wall):.2f} ({len(names)} commands) | "
          f"{median(concurrent_wall) / median(sequential_wall):.2f}x | <= {TARGET_SECONDS:.0f} s |")
    return 0 if median(concurrent_wall) <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
