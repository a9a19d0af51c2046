"""Mutation testing on a uniform random sample of stackctl's mutants (`make mutation SAMPLE=600`).

All ~16 000 mutants of stackctl/ take most of a day on two cores, because mutmut runs every test that covers a
mutated function, and the functions every command uses are covered by hundreds of tests. A uniform random sample
estimates the same score with a known margin (bench/mutation_score.py reports a 95% interval) in under an hour.

    python bench/mutation_sample.py [--size 600] [--seed 20261201]

Generates the mutants (`mutmut run` on a name that matches nothing, which mutmut ends with "nothing matches"),
lists every mutant, draws the sample with a fixed seed (so a re-run after adding tests checks the same mutants),
records it in mutants/sample.txt for the score, and runs mutmut on it.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "mutants" / "sample.txt"
NOTHING = "stackctl.no_such_module.*"


def mutmut(*args: str, capture: bool = False, check: bool = True) -> str:
    result = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=ROOT, check=check, text=True,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.DEVNULL if not check else None)
    return result.stdout or ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--max-children", default=str(os.cpu_count() or 1))
    args = parser.parse_args()
    # Generates every mutant, then stops with "nothing matches" (mutmut has no generate-only command).
    mutmut("run", "--max-children", args.max_children, NOTHING, check=False)
    names = sorted(line.strip().partition(": ")[0] for line in mutmut("results", "--all", "true", capture=True)
                   .splitlines() if line.strip())
    if not names:
        raise SystemExit("mutmut listed no mutants")
    sample = sorted(random.Random(args.seed).sample(names, min(args.size, len(names))))
    SAMPLE.write_text(f"# seed {args.seed}, {len(sample)} of {len(names)} mutants\n" + "\n".join(sample) + "\n")
    mutmut("run", "--max-children", args.max_children, *sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
