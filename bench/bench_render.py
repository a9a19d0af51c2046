"""Benchmark: the cost of stackctl's own steps, as ratios measured side by side in one run.

- `stackctl render` of the full default bundle against `docker compose config -q` of the same bundle (target: at
  most 5x), both for a re-render (bundle and secrets present: the common case) and a render into an empty
  directory;
- `stackctl --help` against `--help` of a bare Typer app with two commands (target: at most 1.15x).

Runs alternate between the two sides of each pair, after a warm-up, so both see the same machine load; the ratio
is of the medians. Prints a Markdown table for bench/RESULTS.md; exits 1 when a ratio misses its target.

    python bench/bench_render.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_TYPER_APP = '''
import typer

app = typer.Typer()


@app.command()
def first() -> None:
    """The first command."""


@app.command()
def second() -> None:
    """The second command."""


app()
'''


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def pair(name: str, ours: list[str], theirs: list[str], cwd: Path, env: dict[str, str], runs: int,
         before_ours=lambda: None) -> tuple[str, float, float]:
    for _ in range(2):  # warm-up: file caches, the template cache
        before_ours()
        timed(ours, cwd, env)
        timed(theirs, cwd, env)
    a, b = [], []
    for _ in range(runs):
        before_ours()
        a.append(timed(ours, cwd, env))
        b.append(timed(theirs, cwd, env))
    return name, statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stackctl-bench-render-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_")}
    # Measure stackctl as installed: pip compiles a wheel's modules at install time. From a source checkout with
    # PYTHONDONTWRITEBYTECODE set (as on the CI machines), every run would compile stackctl from source instead.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "stackctl"), quiet=1)
    stackctl = [sys.executable, "-m", "stackctl"]
    subprocess.run(stackctl + ["init"], cwd=work, env=env, check=True, capture_output=True)
    subprocess.run(stackctl + ["render"], cwd=work, env=env, check=True, capture_output=True)
    bundle = work / "build"
    compose = ["docker", "compose", "--project-name", "stackctl", "--project-directory", str(bundle),
               "--file", str(bundle / "compose.yaml"), "config", "--quiet"]
    (work / "bare.py").write_text(BARE_TYPER_APP)
    empty = work / "empty"

    def clear_empty() -> None:
        subprocess.run(["rm", "-rf", str(empty)], check=True)
        # Settle the deletion (journal commit, discard on this disk) before the clock starts, so the previous
        # run's cleanup is not billed to the next render.
        os.sync()

    rows = [
        pair("stackctl render (bundle present) / docker compose config -q", stackctl + ["render"], compose,
             work, env, args.runs),
        pair("stackctl render --out EMPTY_DIR / docker compose config -q", stackctl + ["render", "--out", str(empty)],
             compose, work, env, args.runs, before_ours=clear_empty),
        pair("stackctl --help / bare two-command Typer app --help", stackctl + ["--help"],
             [sys.executable, str(work / "bare.py"), "--help"], work, env, args.runs),
    ]
    targets = {0: 5.0, 1: 5.0, 2: 1.15}
    print(f"{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {args.runs} runs each, medians")
    print()
    print("| measurement | stackctl s | reference s | ratio | target |")
    print("|---|---|---|---|---|")
    missed = False
    for i, (name, ours, theirs) in enumerate(rows):
        ratio = ours / theirs
        missed |= ratio > targets[i]
        print(f"| {name} | {ours:.3f} | {theirs:.3f} | {ratio:.2f}x | <= {targets[i]}x |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
