#!/usr/bin/env python3
"""Checking hostile policies: time and memory of parse + check on 1 MB policies.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_check.py``, ~1 min).
Each case runs in a fresh process, which:

1. makes its policy (the same generators as tests/test_hostile.py), just under the
   1,000,000-byte limit (``engine.parser.MAX_SOURCE_BYTES``);
2. parses a small policy once, so that building Lark's tables is not counted;
3. times ``check(parse(text))`` ``--repeat`` times (default 3) and keeps the best, in
   wall time and CPU time (the CPU time is steadier on a shared machine);
4. reports its peak RSS (``ru_maxrss``) above what it held before checking.

The cases: a valid policy (one classification of ~30,000 rules, as many reductions per
byte as a policy has); unbalanced parentheses (one line of '(' to the end of the file,
an unclosed '(' whose formula goes on over every line, and 25 lines with an unclosed '('
at the end of the file); 25 syntax errors at the end of the file; an error at the end of a ~980,000-character line; ~38,000 costs, far
over the checker's 2,000 names; ~90,000 unknown names (each one an error, and the first
ones a did-you-mean hint over all the names defined). The timed ``check(parse(text))`` is what
``profit check`` does (``engine.check_policy``); for the valid policy, ``load_policy``, which
also compiles it, is timed too.

``--root DIR`` measures the engine of another checkout (e.g. an export of an older
commit) with the same generators; ``--timeout S`` gives up on a case after S seconds.
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEAD = (
    'policy "Hostile"\n'
    "currency EUR\n"
    "record customer\n"
    "  id text key\n"
    "  revenue money\n"
    "  cost_of_goods money\n"
    "measure profit = revenue - cost_of_goods\n"
)
SIZE = 990_000
ERRORS = 25


# ---- the generators (as in tests/test_hostile.py) ------------------------------------------


def _fill(head: str, line, size: int, tail: str = "") -> str:
    parts, used, n = [head], len(head) + len(tail), 0
    while True:
        text = line(n)
        if used + len(text) > size:
            break
        parts.append(text)
        used += len(text)
        n += 1
    return "".join(parts) + tail


def valid_policy(size: int = SIZE) -> str:
    return _fill(HEAD + "classify class\n", lambda n: f"  r{n} when profit > {n} EUR\n", size,
                 tail="  rest otherwise\n")


def unbalanced_one_line(size: int = SIZE) -> str:
    return HEAD + "measure m = " + "(" * (size - len(HEAD) - 13) + "\n"


def unbalanced_formula(size: int = SIZE) -> str:
    return _fill(HEAD + "measure m = (revenue\n", lambda n: "  + revenue\n", size)


def errors_at_the_end(size: int = SIZE) -> str:
    bad = "".join(f"measure bad{n} = 1 2\n" for n in range(ERRORS))
    return valid_policy(size - len(bad)) + bad


def unbalanced_at_the_end(size: int = SIZE) -> str:
    bad = "".join(f"measure open{n} = (revenue + {n}\n" for n in range(ERRORS))
    return valid_policy(size - len(bad)) + bad


def one_long_line(size: int = SIZE) -> str:
    terms = (size - len(HEAD) - 30) // len(" + revenue")
    return HEAD + "measure m = revenue" + " + revenue" * terms + " + )\n"


def too_many_names(size: int = SIZE) -> str:
    return _fill(HEAD, lambda n: f"cost c{n} = revenue * 2\n", size)


def unknown_names(size: int = SIZE) -> str:
    head = HEAD + "classify class\n  rest otherwise\n"
    return _fill(head, lambda n: f"measure m{n} = " + " + ".join(f"u{n}x{k}" for k in range(60)) + "\n", size)


CASES = {
    "valid": ("valid policy, 1 classification of ~30,000 rules", valid_policy),
    "unbalanced": ("unbalanced parentheses: one line of '(' to the end", unbalanced_one_line),
    "unbalanced-formula": ("unbalanced parentheses: an unclosed '(' over every line", unbalanced_formula),
    "unbalanced-at-end": (f"unbalanced parentheses: {ERRORS} unclosed '(' at the end", unbalanced_at_the_end),
    "errors-at-end": (f"{ERRORS} syntax errors at the end", errors_at_the_end),
    "long-line": ("an error at the end of a ~980,000-character line", one_long_line),
    "too-many-names": ("~38,000 costs (the checker allows 2,000 names)", too_many_names),
    "unknown-names": ("~90,000 unknown names, each its own error", unknown_names),
}


# ---- one case, in its own process ------------------------------------------------------------


def _peak_rss() -> int:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def measure_one(name: str, repeat: int, with_load: bool) -> dict:
    from engine import load_policy
    from engine.checker import check
    from engine.diagnostics import PolicyError
    from engine.parser import parse

    text = CASES[name][1]()
    try:
        check(parse(HEAD + "classify c\n  a otherwise\n"))  # Lark's tables are built once per process
    except PolicyError:
        pass
    before = _peak_rss()
    best_wall = best_cpu = float("inf")
    outcome = ""
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            checked = check(parse(text, "hostile.policy"))
            outcome = f"valid, {sum(len(c.rules) for c in checked.classifications):,} rules"
        except PolicyError as error:
            first = error.diagnostics[0]
            outcome = f"{len(error.diagnostics):,} diagnostics, first {first.code} on line {first.span.line}"
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    result = {"bytes": len(text.encode()), "wall": best_wall, "cpu": best_cpu, "rss": _peak_rss() - before,
              "outcome": outcome}
    if with_load and name == "valid":
        wall = time.perf_counter()
        load_policy(text)
        result["load"] = time.perf_counter() - wall
    return result


def run_case(name: str, args) -> dict:
    argv = [sys.executable, __file__, "--one", name, "--repeat", str(args.repeat), "--root", str(args.root)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"still running after {args.timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept (default 3)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose engine is measured")
    parser.add_argument("--only", action="append", choices=sorted(CASES), help="measure only this case")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a case is given up")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    if args.one:
        print(json.dumps(measure_one(args.one, args.repeat, with_load=True)))
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from measure import git_revision  # noqa: E402

    revision = git_revision() if args.root.resolve() == ROOT else str(args.root)
    print(f"bench_check: parse + check of hostile policies, best of {args.repeat}, engine {revision}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'case':<20} {'size':>10} {'wall':>8} {'CPU':>8} {'peak RSS':>10}  outcome")
    failed = False
    for name in args.only or list(CASES):
        result = run_case(name, args)
        if "error" in result:
            print(f"{name:<20} {'':>10} {'':>8} {'':>8} {'':>10}  {result['error']}")
            failed = True
            continue
        print(f"{name:<20} {result['bytes']:>10,} {result['wall']:>7.2f}s {result['cpu']:>7.2f}s "
              f"{result['rss'] / 2**20:>7.0f} MiB  {result['outcome']}")
        if "load" in result:
            print(f"{'':<20} {'':>10} {result['load']:>7.2f}s {'':>8} {'':>10}  load_policy: parse, check and "
                  "compile (profit check stops after the check)")
    print(f"(each case in a fresh process; {CASES['valid'][0]} etc. are made as in tests/test_hostile.py)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
