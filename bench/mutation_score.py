"""The mutation score of the last `mutmut run` (make mutation), as a Markdown report for bench/MUTATION.md.

Score = mutants killed (tests failed, or the mutant hung until mutmut's timeout) / mutants that are not equivalent.
A mutant is equivalent when no test could tell it apart (a changed default that is always overridden, a log text
nobody reads): those are listed by name, each with the reason, in bench/mutation-equivalent.txt, and left out.
Survivors that are not listed there count against the score. Run from the repository root after `mutmut run`.

    python bench/mutation_score.py [--write]
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "bench" / "mutation-equivalent.txt"
REPORT = ROOT / "bench" / "MUTATION.md"
SAMPLE = ROOT / "mutants" / "sample.txt"


def mutmut(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def equivalent_mutants() -> dict[str, str]:
    """name -> reason, from lines `name: reason` (# comments allowed)."""
    found = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, reason = line.partition(":")
                found[name.strip()] = reason.strip()
    return found


def module_of(mutant: str) -> str:
    """stackctl.core.render.x_render_bundle__mutmut_3 -> stackctl.core.render"""
    return re.sub(r"\.x[_ǁ].*$", "", mutant)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion k/n (Wilson score interval), in percent."""
    if n == 0:
        return 0.0, 100.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the report in bench/MUTATION.md")
    args = parser.parse_args()
    statuses: dict[str, str] = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().partition(": ")
        if name:
            statuses[name] = status
    sample_note = ""
    if SAMPLE.exists():  # bench/mutation_sample.py: only the sampled mutants count
        header, *names = SAMPLE.read_text().splitlines()
        statuses = {name: statuses.get(name, "not checked") for name in names}
        sample_note = f"A uniform random sample ({header.lstrip('# ')}; bench/mutation_sample.py). "
    equivalent = equivalent_mutants()
    counts = collections.Counter(statuses.values())
    unchecked = counts["not checked"]
    survivors = [name for name, status in statuses.items() if status in ("survived", "no tests")]
    counted = [name for name in survivors if name not in equivalent]
    killed = counts["killed"] + counts["timeout"]
    considered = killed + len(counted)
    score = 100.0 * killed / considered if considered else 0.0
    low, high = wilson(killed, considered)
    by_module = collections.Counter(module_of(name) for name in counted)
    lines = [
        f"## {time.strftime('%Y-%m-%d')}: {score:.1f}% of non-equivalent mutants killed (goal: at least 80%)",
        "",
        f"{sample_note}Fast tier (no Docker, tools or processes). {len(statuses)} mutants: {counts['killed']} killed "
        f"by a failing test, {counts['timeout']} by a timeout, {counts['survived']} survived, {counts['no tests']} "
        f"not covered by any test, {unchecked} not checked; {len(survivors) - len(counted)} survivors are "
        f"equivalent (bench/mutation-equivalent.txt, each with its reason) and left out. 95% interval of the score: "
        f"{low:.1f}-{high:.1f}%."
        + (f" {unchecked} sampled mutants were not checked before the run was stopped (mutmut runs the mutants "
           f"with the slowest tests last): were every one of them a survivor, the score would be "
           f"{100.0 * killed / (considered + unchecked):.1f}%." if unchecked else ""),
        "",
        "| module | surviving non-equivalent mutants |",
        "|---|---|",
        *(f"| `{module}` | {count} |" for module, count in by_module.most_common()),
        "",
        "Surviving, not equivalent: " + ", ".join(f"`{name}`" for name in sorted(counted)),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        header = ("# Mutation testing\n\nHow well the fast test tier notices small bugs in `stackctl/`. "
                  "Regenerate with `make mutation` (every mutant: most of a day on two cores) or `make mutation "
                  "SAMPLE=600` (a random sample, under an hour).\n\n")
        REPORT.write_text(header + text)
    return 0 if score >= 80 and not unchecked else 1


if __name__ == "__main__":
    sys.exit(main())
