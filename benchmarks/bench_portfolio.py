#!/usr/bin/env python3
"""Portfolio benchmark: what pooled costs and referral credits cost per record, and at scale.

Run with ``make bench`` (after bench_core.py) or ``.venv/bin/python benchmarks/bench_portfolio.py``.
In one run:

1. checks that policies/portfolio.policy is a fair benchmark policy (at least two
   allocations and a referral credit over at least two levels) and says what it holds;
2. generates N portfolio records (``generate_portfolio``) and N standard records
   (``generate``), untimed, as dicts of strings;
3. times, for both policies over the same number of records, each the best of
   ``--repeat`` runs (default 5), run alternately:
   - ``evaluate_many(records)``, every result consumed and dropped: the same call for
     both policies (for the portfolio policy it runs every pass), so the ratio is like
     for like (target: at most 2x);
   - ``evaluate_portfolio(records)`` against the core policy's ``evaluate_many`` with
     every result kept in a tuple (evaluate_portfolio returns them all), with the
     garbage collector's share; one extra run splits the portfolio time into the stage
     passes and the final (deciding) pass;
4. unless ``--skip-cli``: for each of ``--cli-rows`` (default 100,000 and 1,000,000),
   writes a CSV of that many rows for each policy (``generate_portfolio``, ``generate``)
   and runs ``profit run POLICY FILE --format json --output OUT`` on it in a fresh
   process, reporting wall time, us/row, peak RSS and the portfolio / core ratio per
   size (target: at most 2x), and the portfolio's memory growth per 100,000 rows (a
   portfolio run keeps per-row drivers, ids, shares and a few carried values between
   passes, never the whole records; a whole record's size in memory is measured for
   comparison);
5. if a ratio is above 2x (or ``--profile always``), profiles ``evaluate_portfolio``
   with pyinstrument and prints the hotspots with file:line; if the memory per row
   looks large, shows with tracemalloc which engine lines hold the state kept between
   passes.

Peak RSS is the CLI process's own ``ru_maxrss`` (``os.wait4``), taken by a small
wrapper interpreter, as in bench_core.py, so that it does not inherit this
process's high-water mark.  Apart from pyinstrument (optional, for the profile) it
uses only the standard library.  It never changes the engine.
"""
from __future__ import annotations

import csv
import gc
import inspect
import io
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from engine import RecordError, load_policy  # noqa: E402
from engine.checked import AllocationSpec, ReferralSpec  # noqa: E402
from engine.formatter import format_expr  # noqa: E402
from engine.portfolio import evaluate_portfolio as _stages_then_results  # noqa: E402
from engine.records import read_records  # noqa: E402
from measure import (benchmark_parser, find_profit, git_revision, header, measure_floor,  # noqa: E402
                     parse_rows, print_table, run_measured, time_evaluate_many)
from generate_customers import PORTFOLIO_COLUMNS, generate, generate_portfolio, write_csv  # noqa: E402

POLICY = ROOT / "policies" / "portfolio.policy"
CORE_POLICY = ROOT / "policies" / "standard.policy"
TARGET_RATIO = 2.0
# Memory per row "looks large" above this many bytes, or above this share of a whole
# record held in memory (what a run that kept every record would need).
LARGE_BYTES_PER_ROW = 1024
LARGE_SHARE_OF_RECORD = 0.25
HOTSPOTS = 12
MEMORY_PROFILE_ROWS = 20_000  # tracemalloc slows a run several times over


# ---------------------------------------------------------------------------
# 1. The benchmark policy
# ---------------------------------------------------------------------------

def describe_policy(policy):
    """(lines describing the portfolio parts, fit for a benchmark?, why not)."""
    checked = policy.checked
    allocations = [s for s in checked.allocations if isinstance(s, AllocationSpec)]
    referrals = [s for s in checked.allocations if isinstance(s, ReferralSpec)]
    lines = []
    for spec in allocations:
        pool = f"table {spec.table}" if spec.table else f"{spec.pool:,} {checked.currency}"
        driver = f"by {format_expr(spec.driver)}" if spec.driver is not None else "equally"
        within = f" within {spec.within}" if spec.within else ""
        lines.append(f"allocation {spec.name}: {pool} {driver}{within} (stage {spec.stage})")
    for spec in referrals:
        cap = f", cap {spec.cap:,}" if spec.cap is not None else ""
        anyway = f", came-anyway flag {spec.anyway_flag}" if spec.anyway_flag else ""
        lines.append(f"referral credit {spec.name}: {format_expr(spec.driver)} via {spec.via}, "
                     f"levels {spec.levels}, decay {spec.decay}%{cap}{anyway} (stage {spec.stage})")
    for pool in checked.pools:
        lines.append(f"capacity pool {pool.name}: {pool.amount:,} over {pool.volume:,} {pool.unit}")
    stages = len(policy.plan.stages)
    lines.append(f"{stages} stage pass(es) + 1 deciding pass = {stages + 1} passes over the records")
    why = []
    if len(allocations) < 2:
        why.append(f"only {len(allocations)} allocation(s), need at least 2")
    if not any(s.levels >= 2 for s in referrals):
        why.append("no referral credit over at least two levels")
    return lines, not why, "; ".join(why)


# ---------------------------------------------------------------------------
# 2-3. Per-record cost
# ---------------------------------------------------------------------------

class GcTimer:
    """Seconds the garbage collector spends, by generation, while installed (gc.callbacks)."""

    def __init__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


def time_portfolio(policy, records):
    with GcTimer() as collector:
        start = time.perf_counter()
        run = policy.evaluate_portfolio(records)
        elapsed = time.perf_counter() - start
    errors = sum(isinstance(r, RecordError) for r in run.results)
    return elapsed, len(run.results) - errors, errors, run, collector


def split_passes(policy, records):
    """(seconds in the stage passes, seconds in the deciding pass), through the engine's own
    two-step function: it runs every stage pass, then returns the deciding pass as an iterator."""
    rows = list(enumerate(records, start=1))
    # as Policy.evaluate_portfolio calls it (records in memory: validated once, if the engine can)
    kwargs = {"keep_values": True} if "keep_values" in inspect.signature(_stages_then_results).parameters else {}
    start = time.perf_counter()
    results, finish = _stages_then_results(policy.plan, lambda: rows, **kwargs)
    stages = time.perf_counter() - start
    start = time.perf_counter()
    kept = tuple(results)  # kept, as evaluate_portfolio keeps them
    finish()
    deciding = time.perf_counter() - start
    del kept
    return stages, deciding


def check_run(policy, run):
    """Problems with a portfolio run: every pool must be shared out exactly."""
    problems = []
    tables = policy.checked.tables
    for spec in policy.checked.allocations:
        if not isinstance(spec, AllocationSpec):
            continue
        found = run.context.allocations.get(spec.name)
        if found is None:
            problems.append(f"{spec.name}: no allocation context")
            continue
        for group, g in found.groups.items():
            if g.allocated != g.pool:
                problems.append(f"{spec.name} [{group}]: allocated {g.allocated}, pool {g.pool}")
        if spec.table is None and spec.pool is not None:
            pooled = sum((g.pool for g in found.groups.values()), Decimal(0))
            if pooled != spec.pool:
                problems.append(f"{spec.name}: groups' pools add up to {pooled}, not {spec.pool}")
        elif spec.table is not None:
            missing = set(tables[spec.table]) - set(found.groups)
            if missing:
                problems.append(f"{spec.name}: no customers in {sorted(missing)}")
    return problems


# ---------------------------------------------------------------------------
# 4. The CLI at scale
# ---------------------------------------------------------------------------

def count_lines(path) -> int:
    n = 0
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def measure_cli(rows_list, seed):
    """`profit run` of the portfolio policy and of the core policy on CSVs of each size, in fresh
    processes: {"floor": bytes, "runs": [{"rows", "policy", "status", "wall", "peak", ...}]}."""
    profit = find_profit()
    if profit is None:
        print("  NOTE: skipping the CLI runs: no `profit` executable (is the project installed in .venv?)")
        return None
    floor = measure_floor(profit)
    results = []
    with tempfile.TemporaryDirectory(prefix="profit-bench-portfolio-") as tmp:
        for rows in rows_list:
            for name, policy, generator, columns in (
                    ("portfolio", POLICY, generate_portfolio, PORTFOLIO_COLUMNS),
                    ("core", CORE_POLICY, generate, None)):
                data = Path(tmp) / f"{name}-{rows}.csv"
                out = Path(tmp) / f"decisions-{rows}.json"
                start = time.perf_counter()
                with open(data, "w", encoding="utf-8", newline="") as stream:
                    write_csv(generator(rows, seed), stream, **({"columns": columns} if columns else {}))
                csv_size = data.stat().st_size
                print(f"  {name}: wrote {rows:,} rows ({csv_size / 2**20:.0f} MiB) in "
                      f"{time.perf_counter() - start:.1f}s; running profit run {policy.relative_to(ROOT)} ...",
                      flush=True)
                status, wall, peak, err = run_measured(
                    [profit, "run", str(policy), str(data), "--format", "json", "--output", str(out)])
                size = out.stat().st_size if out.exists() else 0
                lines = count_lines(out) if size else 0
                print(f"    exit {status}, {wall:.1f}s ({wall * 1e6 / rows:.0f} us/row, {rows / wall:,.0f} rows/s), "
                      f"peak RSS {peak / 2**20:.1f} MiB, output {size / 2**20:.0f} MiB, {lines:,} lines")
                summary = next((line for line in err if "records in" in line), None)
                if summary:
                    print(f"    profit: {summary}")
                if status != 0 or lines != rows:
                    for line in err[-3:]:
                        print(f"    stderr: {line}")
                results.append({"rows": rows, "policy": name, "status": status, "wall": wall, "peak": peak,
                                "csv": csv_size, "out": size, "lines": lines})
                data.unlink()
                if out.exists():
                    out.unlink()
    return {"floor": floor, "runs": results}


def cli_ratios(mem):
    """[(rows, portfolio run, core run, time ratio)] for each size both policies ran cleanly."""
    found = []
    for rows in sorted({r["rows"] for r in mem["runs"]}):
        pair = {r["policy"]: r for r in mem["runs"] if r["rows"] == rows and r["status"] == 0}
        if len(pair) == 2:
            found.append((rows, pair["portfolio"], pair["core"], pair["portfolio"]["wall"] / pair["core"]["wall"]))
    return found


def whole_record_bytes(seed, count=20_000):
    """Bytes one record takes in memory as csv.DictReader gives it (what keeping every record costs)."""
    text = io.StringIO()
    write_csv(generate_portfolio(count, seed), text, columns=PORTFOLIO_COLUMNS)
    text.seek(0)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = list(csv.DictReader(text))
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del kept
    return used / count


def growth(mem):
    """(bytes per row, small run, large run) from the CLI runs, or None with fewer than two sizes."""
    runs = [r for r in mem["runs"] if r["peak"] and r["status"] in (0, 2) and r["policy"] == "portfolio"]
    if len({r["rows"] for r in runs}) < 2:
        return None
    small, large = min(runs, key=lambda r: r["rows"]), max(runs, key=lambda r: r["rows"])
    return (large["peak"] - small["peak"]) / (large["rows"] - small["rows"]), small, large


# ---------------------------------------------------------------------------
# 5. Profiles (only when a target is missed, or on request)
# ---------------------------------------------------------------------------

def cpu_profile(policy, records):
    """pyinstrument over evaluate_portfolio: (total s, [(self s, where)], [(inclusive s, where)])."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    profiler = Profiler(interval=0.0005)
    profiler.start()
    policy.evaluate_portfolio(records)
    profiler.stop()
    root = profiler.last_session.root_frame()
    own, inclusive = {}, {}

    def where(frame):
        path = frame.file_path or "?"
        try:
            path = str(Path(path).resolve().relative_to(ROOT))
        except ValueError:
            path = frame.file_path_short or path
        return f"{frame.function} ({path}:{frame.line_no})"

    stack = [(root, frozenset())]
    while stack:
        frame, above = stack.pop()
        if frame.is_synthetic:  # "[self]" and the like: counted in their parent's total_self_time
            continue
        key = where(frame)
        own[key] = own.get(key, 0.0) + frame.total_self_time
        if key not in above:  # recursion: count the outermost call only
            inclusive[key] = inclusive.get(key, 0.0) + frame.time
        for child in frame.children:
            stack.append((child, above | {key}))
    top_own = sorted(((t, k) for k, t in own.items()), reverse=True)[:HOTSPOTS]
    engine = [(t, k) for k, t in inclusive.items() if "engine/" in k or "<policy plan>" in k]
    top_inclusive = sorted(engine, reverse=True)[:HOTSPOTS]
    return root.time, top_own, top_inclusive


def memory_profile(policy, seed, rows):
    """tracemalloc of the state a CLI-style run keeps once every stage pass is done.

    The records come from a CSV file through the CLI's reader, once per pass, as in
    `profit run`; nothing is kept of them but what the engine keeps.  Returns
    (bytes per row, [(bytes, where)]).
    """
    with tempfile.TemporaryDirectory(prefix="profit-bench-portfolio-") as tmp:
        data = Path(tmp) / "portfolio.csv"
        with open(data, "w", encoding="utf-8", newline="") as stream:
            write_csv(generate_portfolio(rows, seed), stream, columns=PORTFOLIO_COLUMNS)
        with open(data, encoding="utf-8", newline="") as stream:
            def source():
                stream.seek(0)
                return read_records(stream, "csv")

            # the peak over a whole run, the deciding pass included (its results are dropped,
            # as `profit run` writes them out)
            gc.collect()
            tracemalloc.start(1)
            try:
                base = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                results, finish = _stages_then_results(policy.plan, source)
                for _ in results:
                    pass
                finish()
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
            del results, finish
            # what is kept once every stage pass is done, by the line that allocated it
            gc.collect()
            tracemalloc.start(1)
            try:
                before = tracemalloc.take_snapshot()
                results, finish = _stages_then_results(policy.plan, source)
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            del results, finish
    diff = [d for d in after.compare_to(before, "lineno") if "tracemalloc" not in d.traceback[0].filename]
    total = sum(d.size_diff for d in diff)
    top = []
    for d in diff[:HOTSPOTS]:
        frame = d.traceback[0]
        path = frame.filename
        try:
            path = str(Path(path).resolve().relative_to(ROOT))
        except ValueError:
            pass
        top.append((d.size_diff, d.count_diff, f"{path}:{frame.lineno}"))
    return peak / rows, total / rows, top


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, records_help="records per timing run, for both policies (default 100000)",
        rows_option="--cli-rows",
        rows_help="comma-separated CSV sizes for the CLI runs (default 100000,1000000)",
        skip_option="--skip-cli", skip_help="skip the CLI runs", repeat_default=5)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="auto: profile only if a target is missed (default)")
    parser.add_argument("--profile-records", type=int, default=0,
                        help="records for the CPU profile (default: --records); the memory profile "
                             f"reads a CSV of {MEMORY_PROFILE_ROWS:,} rows")
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1 or args.profile_records < 0:
        parser.error("--records and --repeat must be at least 1")
    cli_rows = parse_rows(parser, args.cli_rows, "--cli-rows")
    if any(r < 1 for r in cli_rows):
        parser.error("--cli-rows must be at least 1")

    n = args.records
    print(header("portfolio"))
    print(f"engine at {git_revision()}; {n:,} records per timing run, seed {args.seed}, best of {args.repeat}")

    # -- 1. the policy
    start = time.perf_counter()
    policy = load_policy(str(POLICY))
    core = load_policy(str(CORE_POLICY))
    load_time = time.perf_counter() - start
    lines, fit, why = describe_policy(policy)
    print(f"  benchmark policy: {POLICY.relative_to(ROOT)}, as is")
    for line in lines:
        print(f"    {line}")
    if not fit:
        print(f"FAIL: {POLICY.relative_to(ROOT)} is not a fair benchmark policy: {why}")
        return 1
    print("    -> fits: at least two allocations and a referral credit over two levels")

    # -- 2. data
    start = time.perf_counter()
    records = list(generate_portfolio(n, args.seed))
    core_records = list(generate(n, args.seed))
    print(f"  loaded both policies in {load_time * 1000:.0f} ms; generated {n:,} portfolio and {n:,} "
          f"standard records in {time.perf_counter() - start:.1f}s (untimed)")

    # -- 3. per-record cost: the same call for both policies, then every result kept
    many, core_many, kept_times, core_kept, problems = [], [], [], [], []
    for _ in range(args.repeat):
        gc.collect()
        many.append(time_evaluate_many(policy, records)[0])
        gc.collect()
        t, c_dec, c_err = time_evaluate_many(core, core_records)
        core_many.append(t)
        gc.collect()
        t, p_dec, p_err, run, collector = time_portfolio(policy, records)
        if not kept_times or t < min(kept_times):
            p_gc = collector
        kept_times.append(t)
        problems += check_run(policy, run)
        del run
        gc.collect()
        core_kept.append(time_evaluate_many(core, core_records, keep=True)[0])
    if problems:
        print("FAIL: the portfolio run did not share every pool exactly:")
        for line in problems[:20]:
            print(f"  {line}")
        return 1
    m_t, c_t, p_t, k_t = min(many), min(core_many), min(kept_times), min(core_kept)
    ratio = m_t / c_t
    met = round(ratio, 2) <= TARGET_RATIO
    print("  evaluate_many, each result consumed and dropped (the same call for both policies):")
    print(f"    portfolio {m_t * 1e6 / n:6.1f} us/record ({n / m_t:,.0f} records/s; all passes)")
    print(f"    core      {c_t * 1e6 / n:6.1f} us/record ({n / c_t:,.0f} records/s; {c_dec:,} decisions, "
          f"{c_err:,} errors)")
    print(f"    portfolio / core: {ratio:.2f}x  ({'within' if met else 'ABOVE'} the {TARGET_RATIO:.0f}x target)")
    print("  every result kept (evaluate_portfolio returns them all in a tuple):")
    print(f"    portfolio evaluate_portfolio {p_t * 1e6 / n:6.1f} us/record ({p_dec:,} decisions, {p_err:,} "
          f"errors; every pool shared out exactly)")
    print(f"      of which the garbage collector: {sum(p_gc.seconds) * 1e6 / n:.1f} us/record "
          f"({sum(p_gc.seconds) / p_t:.0%}; generation 0/1/2: "
          f"{' / '.join(f'{t:.2f}s in {c:,}' for t, c in zip(p_gc.seconds, p_gc.collections))} collections)")
    print(f"    core evaluate_many into a tuple {k_t * 1e6 / n:6.1f} us/record")
    print(f"    portfolio / core: {p_t / k_t:.2f}x; against core without keeping its results: {p_t / c_t:.2f}x")
    gc.collect()
    stage_t, final_t = split_passes(policy, records)
    passes = len(policy.plan.stages)
    print(f"  one more run, split: {passes} stage pass(es) {stage_t * 1e6 / n:.1f} us/record, deciding pass "
          f"(results kept) {final_t * 1e6 / n:.1f} us/record")

    # -- 4. the CLI
    mem = None
    per_row = None
    record_bytes = whole_record_bytes(args.seed)
    if args.skip_cli:
        print("  CLI: skipped (--skip-cli)")
    else:
        print(f"  CLI: profit run POLICY FILE --format json for both policies, rows "
              f"{', '.join(f'{r:,}' for r in cli_rows)}")
        mem = measure_cli(cli_rows, args.seed)
    memory_large = False
    cli_met = None
    if mem:
        for rows, portfolio_run, core_run, cli_ratio in cli_ratios(mem):
            cli_met = round(cli_ratio, 2) <= TARGET_RATIO
            print(f"  CLI at {rows:,} rows: portfolio {portfolio_run['wall'] * 1e6 / rows:.0f} us/row, core "
                  f"{core_run['wall'] * 1e6 / rows:.0f} us/row: {cli_ratio:.2f}x "
                  f"({'within' if cli_met else 'ABOVE'} the {TARGET_RATIO:.0f}x target); peak RSS "
                  f"{portfolio_run['peak'] / 2**20:.0f} MiB against {core_run['peak'] / 2**20:.0f} MiB")
        found = growth(mem)
        if found is None:
            print("  only one size measured: cannot tell how memory grows with rows")
        else:
            per_row, small, large = found
            memory_large = per_row > LARGE_BYTES_PER_ROW or per_row > LARGE_SHARE_OF_RECORD * record_bytes
            print(f"  peak RSS {small['peak'] / 2**20:.0f} MiB at {small['rows']:,} rows -> "
                  f"{large['peak'] / 2**20:.0f} MiB at {large['rows']:,} rows: "
                  f"{per_row * 100_000 / 2**20:.1f} MiB per 100,000 rows ({per_row:.0f} bytes/row; "
                  f"a whole record in memory is {record_bytes:,.0f} bytes, so "
                  f"{per_row / record_bytes:.0%} of keeping the records)"
                  + ("  -- LOOKS LARGE" if memory_large else ""))

    # -- 5. profiles
    profile = args.profile == "always" or (args.profile == "auto" and (not met or cli_met is False))
    cpu = None
    if profile:
        m = min(args.profile_records or n, n)
        print(f"\n  CPU profile (pyinstrument) of evaluate_portfolio over {m:,} records"
              f"{'' if met or args.profile == 'always' else ' (the ratio is above the target)'}:")
        gc.collect()
        cpu = cpu_profile(policy, records[:m])
        if cpu is None:
            print("    pyinstrument is not installed: no profile")
        else:
            total, top_own, top_inclusive = cpu
            print(f"    {total:.2f}s in all.  Own time (the function's own code):")
            for t, key in top_own:
                print(f"      {t / total:6.1%}  {key}")
            print("    Inclusive time, engine functions (with everything they call):")
            for t, key in top_inclusive:
                print(f"      {t / total:6.1%}  {key}")
    mem_profile = None
    if args.profile == "always" or (args.profile == "auto" and memory_large):
        m = MEMORY_PROFILE_ROWS
        print(f"\n  memory profile (tracemalloc, CSV of {m:,} rows read as `profit run` reads it, once per pass):")
        mem_profile = memory_profile(policy, args.seed, m)
        peak, kept, top = mem_profile
        print(f"    traced peak over a whole run {peak:,.0f} bytes/row; kept after the stage passes "
              f"{kept:,.0f} bytes/row, by the line that allocated it:")
        for size, count, where in top:
            print(f"      {size / m:8,.0f} bytes/row  ({count / m:5.1f} objects/row)  {where}")

    # -- summary
    print("\nSummary")
    table = [("measure", "value"),
             ("records", f"{n:,}"),
             ("evaluate_many, portfolio / core, us/record", f"{m_t * 1e6 / n:.1f} / {c_t * 1e6 / n:.1f}"),
             ("  ratio", f"{ratio:.2f}x (target <= {TARGET_RATIO:.0f}x: {'ok' if met else 'MISSED'})"),
             ("results kept, portfolio / core, us/record", f"{p_t * 1e6 / n:.1f} / {k_t * 1e6 / n:.1f}"),
             ("  ratio", f"{p_t / k_t:.2f}x"),
             ("  portfolio's garbage collection, us/record",
              f"{sum(p_gc.seconds) * 1e6 / n:.1f} ({sum(p_gc.seconds) / p_t:.0%})"),
             ("stage passes / deciding pass, us/record", f"{stage_t * 1e6 / n:.1f} / {final_t * 1e6 / n:.1f}")]
    if mem:
        table.append(("profit --help floor", f"{mem['floor'] / 2**20:.1f} MiB"))
        for r in mem["runs"]:
            table.append((f"CLI {r['policy']}, {r['rows']:,} rows", f"{r['wall']:.1f}s ({r['wall'] * 1e6 / r['rows']:.0f} "
                          f"us/row), {r['peak'] / 2**20:.0f} MiB peak, exit {r['status']}"))
        for rows, _, _, cli_ratio in cli_ratios(mem):
            table.append((f"CLI portfolio / core, {rows:,} rows",
                          f"{cli_ratio:.2f}x (target <= {TARGET_RATIO:.0f}x: "
                          f"{'ok' if round(cli_ratio, 2) <= TARGET_RATIO else 'MISSED'})"))
        if per_row is not None:
            table.append(("CLI memory growth (portfolio)", f"{per_row * 100_000 / 2**20:.1f} MiB per 100,000 rows "
                          f"({per_row:.0f} bytes/row; whole record {record_bytes:,.0f} bytes)"))
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
