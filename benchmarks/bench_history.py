#!/usr/bin/env python3
"""Histories: the lifecycle policy over 8 quarters per customer, against the core policy.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_history.py``; a few minutes
at the default 100,000 customers, ``--customers 20000`` for a quicker look). It

1. writes a history of ``--customers`` customers (800,000 rows at the default) by copying
   examples/customer_history.csv (8 quarters, 10 of them missing) under new ids, in
   customer order, and a flat file of as many rows from examples/customers.csv;
2. in a fresh process each, times ``policy.run(RecordSource.open(...))`` read to the end:
   policies/lifecycle.policy over the history with ``input sorted`` (streamed) and with
   ``input unsorted`` (every row held), and policies/standard.policy over the flat file
   (the core policy, per record), with the peak RSS of each;
3. runs the sorted history again at an eighth of the customers, so that the two peaks
   show whether streamed memory grows with the customers (it should not).

It reports the cost per customer (8 periods, each a full decision with six history
functions and three warnings) as a ratio to the core policy's cost per record, measured
in the same run; the target is within 8x. Standard library only.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_history(path: Path, customers: int) -> int:
    """`customers` customers of examples/customer_history.csv, copied under new ids that keep
    the customer order; returns the rows written."""
    with open(ROOT / "examples" / "customer_history.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    originals = list(dict.fromkeys(row[0] for row in body))
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for copy in range(-(-customers // len(originals))):
            keep = set(originals[: customers - copy * len(originals)])
            for row in body:
                if row[0] in keep:
                    writer.writerow([f"K{copy:05d}-{row[0]}", *row[1:]])
                    written += 1
    return written


def write_flat(path: Path, records: int) -> None:
    with open(ROOT / "examples" / "customers.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for n in range(records):
            row = body[n % len(body)]
            writer.writerow([f"K{n // len(body):05d}-{row[0]}", *row[1:]])


def measure_one(policy_path: str, data: str) -> dict:
    import resource
    sys.path.insert(0, str(ROOT))
    from engine import load_policy
    from engine.records import RecordSource
    policy = load_policy(policy_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    run = policy.run(RecordSource.open(data))
    results = sum(1 for _ in run)
    summary = run.summary
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "results": results,
            "line": summary.line(), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rss_before": before * 1024}


def run_case(policy: Path, data: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--one", str(policy), str(data)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def unsorted_policy(folder: Path) -> Path:
    text = (ROOT / "policies" / "lifecycle.policy").read_text(encoding="utf-8")
    path = folder / "lifecycle-unsorted.policy"
    path.write_text(text.replace("  input sorted ", "  input unsorted "), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        history, small, flat = folder / "history.csv", folder / "small.csv", folder / "flat.csv"
        rows = write_history(history, args.customers)
        write_history(small, max(1, args.customers // 8))
        write_flat(flat, rows)
        lifecycle = ROOT / "policies" / "lifecycle.policy"
        cases = {
            "core (standard, per record)": run_case(ROOT / "policies" / "standard.policy", flat),
            "history sorted (streamed)": run_case(lifecycle, history),
            "history unsorted (held)": run_case(unsorted_policy(folder), history),
            "history sorted, 1/8 customers": run_case(lifecycle, small),
        }
    core = cases["core (standard, per record)"]
    per_record = core["cpu"] / core["results"]
    print(f"bench_history: {args.customers:,} customers, {rows:,} rows, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    print(f"{'case':<32} {'CPU':>8} {'per unit':>10} {'vs core':>8} {'peak RSS':>9}  summary")
    for name, result in cases.items():
        customers = "history" in name
        units = args.customers if name == "history sorted (streamed)" or name == "history unsorted (held)" else (
            max(1, args.customers // 8) if customers else result["results"])
        per = result["cpu"] / units
        ratio = per / per_record
        print(f"{name:<32} {result['cpu']:>7.1f}s {per * 1e6:>8.0f}µs {ratio:>7.2f}x {result['rss'] / 2**20:>7.0f}MiB"
              f"  {result['line']}")
    full, eighth = cases["history sorted (streamed)"], cases["history sorted, 1/8 customers"]
    print(f"(per unit: per customer of 8 quarters for histories, per record for the core policy; streamed peak "
          f"RSS {eighth['rss'] / 2**20:.0f} MiB at 1/8 of the customers, {full['rss'] / 2**20:.0f} MiB at all)")


if __name__ == "__main__":
    main()
