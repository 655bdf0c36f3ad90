"""Shared by the benchmarks: the installed `profit`, a peak-memory measurement of a
command in a fresh process, and which commit was measured."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
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
