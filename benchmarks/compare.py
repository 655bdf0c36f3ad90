#!/usr/bin/env python3
"""Before and after: the per-record figures of an older commit and of this checkout, measured in
the same run, alternately, so that a restructuring can show it is not a slowdown.

    .venv/bin/python benchmarks/compare.py --base c740603            # or: make bench-compare BASE=c740603
    .venv/bin/python benchmarks/compare.py --base HEAD~5 --records 50000 --rounds 3

The older commit is checked out in a git worktree in a temporary directory (removed at the
end). Each round runs, for the older tree and then this one, bench_core.py (--skip-memory)
and bench_portfolio.py (--skip-cli, no profile), with the same interpreter and the same
record counts; each script puts its own tree first on sys.path, so each measures its own
engine. Per figure the best of the rounds is kept, and the table gives this checkout's
figure against the older one's (target: ratios within 5%).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent

# figure name -> (script, regex over its output); every figure is "lower is better"
FIGURES = {
    "core: engine us/record": ("bench_core.py", r"evaluate, us/record\s+([\d.]+)"),
    "core: engine / hand-written": ("bench_core.py", r"engine / hand-written\s+([\d.]+)x"),
    "portfolio: us/record (evaluate_many)": ("bench_portfolio.py", r"portfolio\s+([\d.]+) us/record \("),
    "portfolio: core us/record (same run)": ("bench_portfolio.py", r"core\s+([\d.]+) us/record \("),
    "portfolio / core (evaluate_many)": ("bench_portfolio.py", r"evaluate_many, portfolio / core.*\n\s+ratio\s+([\d.]+)x"),
    "portfolio / core (results kept)": ("bench_portfolio.py", r"results kept, portfolio / core.*\n\s+ratio\s+([\d.]+)x"),
}
ARGS = {"bench_core.py": ["--skip-memory"], "bench_portfolio.py": ["--skip-cli", "--profile", "never"]}


def measure(tree: Path, records: int, repeat: int) -> Dict[str, float]:
    found: Dict[str, float] = {}
    for script in ARGS:
        done = subprocess.run([sys.executable, str(tree / "benchmarks" / script), "--records", str(records),
                               "--repeat", str(repeat), *ARGS[script]], cwd=tree, capture_output=True, text=True)
        for name, (source, pattern) in FIGURES.items():
            if source == script:
                match = re.search(pattern, done.stdout)
                if match is None:
                    raise SystemExit(f"{tree}: {script} printed no '{name}' (exit {done.returncode}):\n"
                                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
                found[name] = float(match.group(1))
    return found


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the older commit (any git revision)")
    parser.add_argument("--records", type=int, default=50000, help="records per timing run (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="best of N inside each script (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of old-then-new (default 2)")
    args = parser.parse_args(argv)
    base = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="profit-bench-") as scratch:
        old_tree = Path(scratch) / base
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(old_tree), base], cwd=ROOT, check=True)
        try:
            best: Dict[str, Dict[str, float]] = {"old": {}, "new": {}}
            for round_number in range(1, args.rounds + 1):
                for side, tree in (("old", old_tree), ("new", ROOT)):
                    print(f"round {round_number}: {side} ({base if side == 'old' else head}) ...", flush=True)
                    for name, value in measure(tree, args.records, args.repeat).items():
                        best[side][name] = min(value, best[side].get(name, value))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False)
    print(f"\n{args.records:,} records per timing run, best of {args.repeat} x {args.rounds} rounds, "
          f"{sys.executable}")
    print(f"{'figure':<40} {base:>10} {head + ('+' if dirty else ''):>10} {'new/old':>8}")
    worst = 0.0
    for name in FIGURES:
        old, new = best["old"][name], best["new"][name]
        change = new / old
        if "/" in name or "us/record (evaluate_many)" in name:
            worst = max(worst, change)
        print(f"{name:<40} {old:>10.2f} {new:>10.2f} {change:>7.3f}x")
    print(f"\nworst change of a per-record ratio: {(worst - 1) * 100:+.1f}% (target: within +5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
