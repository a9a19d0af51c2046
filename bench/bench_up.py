"""Benchmark: `stackctl up` to healthy vs plain `docker compose up -d --wait` on the same bundle, and a no-op up.

Uses the metrics services from local images (tests.support.images), so it runs without a registry. Each cold run
starts from nothing (down --volumes). Prints a Markdown table; paste it into bench/RESULTS.md with the date.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.images import write_local_stack  # noqa: E402


def timed(argv: list[str], env: dict | None = None, show: bool = False) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})},
                            stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if show:
        print(f"{' '.join(argv[-2:])}: {elapsed:.2f}s: {result.stdout.strip()} {result.stderr.strip()[-300:]}",
              file=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stackctl-bench-"))
    stack_file = workdir / "stack.yaml"
    write_local_stack(stack_file)
    text = stack_file.read_text().replace('"preset": "metrics"', '"project": "stackctl-bench", "preset": "metrics"')
    stack_file.write_text(text)
    stackctl = [sys.executable, "-m", "stackctl", "-f", str(stack_file)]
    subprocess.run(stackctl + ["render"], check=True, capture_output=True)
    bundle = workdir / "build"
    compose = ["docker", "compose", "--project-name", "stackctl-bench", "--project-directory", str(bundle),
               "--file", str(bundle / "compose.yaml")]
    results: dict[str, list[float]] = {"stackctl up (cold, to healthy)": [],
                                       "docker compose up -d --wait (cold)": [],
                                       "stackctl up (no-op, stack running)": []}
    try:
        for _ in range(args.runs):
            timed(compose + ["down", "--volumes"])
            results["docker compose up -d --wait (cold)"].append(timed(compose + ["up", "-d", "--wait"]))
            timed(compose + ["down", "--volumes"])
            results["stackctl up (cold, to healthy)"].append(timed(stackctl + ["up", "--timeout", "120"]))
            results["stackctl up (no-op, stack running)"].append(timed(stackctl + ["up"], show=True))
    finally:
        subprocess.run(compose + ["down", "--volumes"], capture_output=True)
    print(f"| measurement ({args.runs} runs, metrics preset, local images) | median s | min s | max s |")
    print("|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
