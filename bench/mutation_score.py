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
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "bench" / "mutation-equivalent.txt"
REPORT = ROOT / "bench" / "MUTATION.md"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the report in bench/MUTATION.md")
    args = parser.parse_args()
    mutmut("export-cicd-stats")
    stats = json.loads((ROOT / "mutants" / "mutmut-cicd-stats.json").read_text())
    statuses: dict[str, str] = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().partition(": ")
        if name:
            statuses[name] = status
    equivalent = equivalent_mutants()
    survivors = [name for name, status in statuses.items() if status in ("survived", "no tests")]
    counted = [name for name in survivors if name not in equivalent]
    killed = stats["killed"] + stats["timeout"]
    considered = killed + len(counted)
    score = 100.0 * killed / considered if considered else 0.0
    by_module = collections.Counter(module_of(name) for name in counted)
    lines = [
        f"## {time.strftime('%Y-%m-%d')}: {score:.1f}% of non-equivalent mutants killed (goal: at least 80%)",
        "",
        f"`make mutation` (mutmut, fast tier: no Docker, tools or processes). {stats['total']} mutants: "
        f"{stats['killed']} killed by a failing test, {stats['timeout']} by a timeout, {stats['survived']} survived, "
        f"{stats['no_tests']} not covered by any test, {stats['skipped']} skipped; {len(equivalent)} survivors "
        f"are equivalent (bench/mutation-equivalent.txt, each with its reason).",
        "",
        "| module | surviving non-equivalent mutants |",
        "|---|---|",
        *(f"| `{module}` | {count} |" for module, count in by_module.most_common()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        header = ("# Mutation testing\n\nHow well the fast test tier notices small bugs in `stackctl/`. "
                  "Regenerate with `make mutation` (takes hours on two cores).\n\n")
        REPORT.write_text(header + text)
    return 0 if score >= 80 else 1


if __name__ == "__main__":
    sys.exit(main())
