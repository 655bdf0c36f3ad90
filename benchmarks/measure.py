"""Shared by the benchmarks: the installed `profit`, a peak-memory measurement of a
command in a fresh process, which commit was measured, and the parts both scripts'
command lines, timing loops and printed reports have in common."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_profit():
    for candidate in (ROOT / ".venv" / "bin" / "profit", Path(sys.executable).parent / "profit"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("profit")


# Runs in a fresh, small interpreter: a child forked straight from this (large)
# benchmark process would inherit its RSS high-water mark through fork + exec.
_WRAPPER = r"""
import json, os, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as err:
    child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - start,
                  "maxrss": usage.ru_maxrss}))
"""


def run_measured(argv):
    """Run argv in a fresh process; (exit status, wall seconds, peak RSS in bytes, stderr lines)."""
    with tempfile.NamedTemporaryFile(suffix=".stderr", delete=False) as err:
        err_path = err.name
    try:
        done = subprocess.run([sys.executable, "-c", _WRAPPER, err_path, *argv], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout)
        with open(err_path, encoding="utf-8", errors="replace") as err:
            lines = err.read().strip().splitlines()
    finally:
        os.unlink(err_path)
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = result["maxrss"] if sys.platform == "darwin" else result["maxrss"] * 1024
    return result["status"], result["wall"], peak, lines


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=30)
        if head.returncode != 0:
            return "unknown revision (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "engine",
                                "policies"], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return head.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown revision"


# ---- command line and report --------------------------------------------------

def benchmark_parser(doc, *, records_help, rows_option, rows_help, skip_option, skip_help,
                     repeat_default):
    """The options both benchmarks take: --records, a list of CSV sizes, a skip switch,
    --repeat and --seed (in that order)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help=records_help)
    parser.add_argument(rows_option, default="100000,1000000", help=rows_help)
    parser.add_argument(skip_option, action="store_true", help=skip_help)
    parser.add_argument("--repeat", type=int, default=repeat_default,
                        help=f"timing runs, best is kept (default {repeat_default})")
    parser.add_argument("--seed", type=int, default=2026, help="generator seed (default 2026)")
    return parser


def parse_rows(parser, text, option):
    """The comma-separated whole numbers of a rows option (underscores allowed)."""
    try:
        return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        parser.error(f"{option} must be comma-separated whole numbers")


def header(name) -> str:
    """The first line of a benchmark's report."""
    return (f"profit-engine {name} benchmark -- {datetime.datetime.now():%Y-%m-%d %H:%M}, "
            f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")


def print_table(table):
    """The summary: (key, value) rows, the first one the heading."""
    width = max(len(k) for k, _ in table)
    print(f"  {table[0][0]:<{width}}  {table[0][1]}")
    print(f"  {'-' * width}  {'-' * 40}")
    for key, value in table[1:]:
        print(f"  {key:<{width}}  {value}")


# ---- timing and the CLI ---------------------------------------------------------

def time_evaluate_many(policy, records, keep=False):
    """evaluate_many, consumed: (seconds, decisions, errors).  With `keep`, every result is
    also kept in a tuple, as evaluate_portfolio must (it returns them all)."""
    from engine import RecordError  # the scripts put the project on sys.path first

    decisions = errors = 0
    kept = []
    start = time.perf_counter()
    for result in policy.evaluate_many(records):
        if keep:
            kept.append(result)
        if isinstance(result, RecordError):
            errors += 1
        else:
            decisions += 1
    if keep:
        kept = tuple(kept)
    return time.perf_counter() - start, decisions, errors


def measure_floor(profit):
    """Peak RSS of `profit --help` (interpreter + imports), printed and returned."""
    _, _, floor, _ = run_measured([profit, "--help"])
    print(f"  `profit --help` (interpreter + imports): peak RSS {floor / 2**20:.1f} MiB")
    return floor
