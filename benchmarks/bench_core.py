#!/usr/bin/env python3
"""Core benchmark: the policy engine against plain hand-written Python.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_core.py``).  In one run:

1. generates N customer records (dicts of strings, as csv.DictReader gives them),
   untimed, with ``examples/generate_customers.py``;
2. times ``policy.evaluate_many(records)`` for policies/standard.policy;
3. times ``decide_by_hand``, the same decisions written directly with
   ``decimal.Decimal`` (no policy language), after checking on the first 2,000
   records that both agree on every classification, action and figure -- the
   script exits with status 1 if they do not;
4. prints records/s for both and the ratio engine time / hand-written time
   (target: at most 3x);
5. times ``str(decision.explain())`` for the first 10,000 decisions;
6. unless ``--skip-memory``: writes CSV files of 100,000 and 1,000,000 rows to a
   temporary directory and runs ``profit run policies/standard.policy FILE
   --format json --output OUT`` on each in a fresh process, reporting its peak RSS
   and wall time (skipped with a note if ``profit run`` is not available yet).

Timings are the best of ``--repeat`` runs (default 5), with the garbage collector
left on, as in real use.  Everything is stdlib; peak RSS is the CLI process's own
``ru_maxrss`` (``os.wait4``), taken by a small wrapper process so that it does
not inherit this process's high-water mark.
"""
from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from engine import RecordError, load_policy  # noqa: E402
from measure import (benchmark_parser, find_profit, git_revision, header, measure_floor,  # noqa: E402
                     parse_rows, print_table, run_measured, time_evaluate_many)
from generate_customers import generate, write_csv  # noqa: E402

POLICY = ROOT / "policies" / "standard.policy"
TARGET_RATIO = 3.0
VERIFY_COUNT = 2_000
EXPLAIN_COUNT = 10_000


# ---------------------------------------------------------------------------
# The hand-written baseline: policies/standard.policy, by hand.
# ---------------------------------------------------------------------------

D = Decimal
ZERO = D("0")
CENT = D("0.01")
MARGIN_PLACES = D("0.0001")

# rates
ORDER_HANDLING = D("14.00")
MANUAL_SURCHARGE = D("42.00")
DELIVERY = D("85.00")
RUSH_DELIVERY = D("420.00")
SALES_VISIT = D("120.00")
STAFF_WAGE = D("45.00")
MAILING = D("2.40")
SUPPORT_HOUR = D("38.00")
SUPPORT_CALL = D("4.50")
COMMISSION_RATE = D("0.05")
REFERRAL_BONUS = D("150.00")
REFERRAL_SHARE = D("0.10")
# thresholds and rule constants
BREAK_EVEN_SHARE = D("0.02")
LIABILITY_SHARE = D("0.05")
WRITE_OFF_DAYS = D("90")
GOLD_PROFIT = D("25000")

ACTIONS = {
    "liability": "Review credit terms; hold new orders until paid",
    "profitable": "Keep and grow",
    "break-even": "Keep if it refers others, else review the service level",
    "unprofitable": "Weigh severing against keeping the relationship",
}


def _required(row, key):
    text = row.get(key)
    if text is None or not text.strip():
        raise ValueError(f"required field '{key}' is missing")
    return D(text)


def decide_by_hand(row):
    """(class, service_tier, action, figures) for one record (a mapping of strings).

    Empty cells take the policy's defaults (0); every cost and credit line and
    every money measure is rounded half-up to the cent, as the policy says.
    """
    get = row.get
    # required fields
    revenue = _required(row, "revenue")
    cost_of_goods = _required(row, "cost_of_goods")
    orders = _required(row, "orders")
    # fields with default 0 (an empty or blank cell means 0)
    s = get("manual_orders"); manual_orders = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("deliveries"); deliveries = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("rush_deliveries"); rush_deliveries = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("sales_visits"); sales_visits = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("staff_hours"); staff_hours = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("mailings"); mailings = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("signup_discount"); signup_discount = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("support_hours"); support_hours = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("support_calls"); support_calls = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("overdue"); overdue = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("days_overdue"); days_overdue = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("referrals"); referrals = D(s) if s and s.strip() else ZERO  # noqa: E702
    s = get("referral_revenue"); referral_revenue = D(s) if s and s.strip() else ZERO  # noqa: E702

    # costs and credits, each line rounded half-up to cents
    commission = (COMMISSION_RATE * revenue).quantize(CENT, ROUND_HALF_UP)
    acquisition = (sales_visits * SALES_VISIT + staff_hours * STAFF_WAGE
                   + mailings * MAILING + signup_discount).quantize(CENT, ROUND_HALF_UP)
    service = (support_hours * SUPPORT_HOUR
               + support_calls * SUPPORT_CALL).quantize(CENT, ROUND_HALF_UP)
    fulfilment = (orders * ORDER_HANDLING + manual_orders * MANUAL_SURCHARGE
                  + deliveries * DELIVERY
                  + rush_deliveries * RUSH_DELIVERY).quantize(CENT, ROUND_HALF_UP)
    written_off = days_overdue > WRITE_OFF_DAYS
    bad_debt = (overdue if written_off else ZERO).quantize(CENT, ROUND_HALF_UP)
    word_of_mouth = (referrals * REFERRAL_BONUS
                     + REFERRAL_SHARE * referral_revenue).quantize(CENT, ROUND_HALF_UP)

    # measures
    gross_margin = (revenue - cost_of_goods).quantize(CENT, ROUND_HALF_UP)
    costs = commission + acquisition + service + fulfilment + bad_debt
    direct_profit = (gross_margin - costs).quantize(CENT, ROUND_HALF_UP)
    credits = word_of_mouth
    profit = (direct_profit + credits).quantize(CENT, ROUND_HALF_UP)
    # a number: round(profit / revenue, 4), with the policy's half-up rounding
    margin = (profit / revenue).quantize(MARGIN_PLACES, ROUND_HALF_UP) if revenue > ZERO else ZERO
    break_even = (BREAK_EVEN_SHARE * revenue).quantize(CENT, ROUND_HALF_UP)

    # classify class
    if written_off and overdue > LIABILITY_SHARE * revenue:
        klass = "liability"
    elif profit > break_even:
        klass = "profitable"
    elif -break_even <= profit <= break_even:
        klass = "break-even"
    else:
        klass = "unprofitable"
    # classify service_tier
    if klass == "profitable" and profit >= GOLD_PROFIT:
        tier = "gold"
    elif profit > ZERO:
        tier = "silver"
    else:
        tier = "bronze"

    figures = {
        "commission": commission, "acquisition": acquisition, "service": service,
        "fulfilment": fulfilment, "bad_debt": bad_debt, "word_of_mouth": word_of_mouth,
        "gross_margin": gross_margin, "costs": costs, "direct_profit": direct_profit,
        "credits": credits, "profit": profit, "margin": margin, "break_even": break_even,
    }
    return klass, tier, ACTIONS[klass], figures


# the fields whose empty cells mean 0
DEFAULTED = ("manual_orders", "deliveries", "rush_deliveries", "sales_visits", "staff_hours",
             "mailings", "signup_discount", "support_hours", "support_calls", "overdue",
             "days_overdue", "referrals", "referral_revenue")

HAND_ERRORS = (ValueError, InvalidOperation, ArithmeticError)


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def verify(policy, records) -> list:
    """Differences between the engine and decide_by_hand on these records (empty = agree)."""
    problems = []
    for record, result in zip(records, policy.evaluate_many(records)):
        rid = record.get("id")
        try:
            hand = decide_by_hand(record)
        except HAND_ERRORS as error:
            hand = error
        if isinstance(result, RecordError) or isinstance(hand, Exception):
            if not (isinstance(result, RecordError) and isinstance(hand, Exception)):
                problems.append(f"{rid}: engine gave {result!r}, hand-written gave {hand!r}")
            continue
        klass, tier, action, figures = hand
        classes = result.classes
        if classes.get("class") != klass:
            problems.append(f"{rid}: class: engine {classes.get('class')!r}, hand {klass!r}")
        if classes.get("service_tier") != tier:
            problems.append(f"{rid}: service_tier: engine {classes.get('service_tier')!r}, hand {tier!r}")
        if result.action != action:
            problems.append(f"{rid}: action: engine {result.action!r}, hand {action!r}")
        engine_figures = result.figures
        if set(engine_figures) != set(figures):
            problems.append(f"{rid}: figure names differ: engine {sorted(engine_figures)}, "
                            f"hand {sorted(figures)}")
        for name, value in figures.items():
            theirs = engine_figures.get(name)
            # same value and same representation (e.g. 12.30, not 12.3)
            if theirs is None or theirs != value or str(theirs) != str(value):
                problems.append(f"{rid}: {name}: engine {theirs}, hand {value}")
    return problems


def time_hand(records):
    decisions = errors = 0
    decide = decide_by_hand
    start = time.perf_counter()
    for record in records:
        try:
            decide(record)
        except HAND_ERRORS:
            errors += 1
        else:
            decisions += 1
    return time.perf_counter() - start, decisions, errors


def time_explain(policy, records):
    decisions = [r for r in policy.evaluate_many(records) if not isinstance(r, RecordError)]
    chars = 0
    start = time.perf_counter()
    for decision in decisions:
        chars += len(str(decision.explain()))
    return time.perf_counter() - start, len(decisions), chars


# ---- the CLI's peak memory ----------------------------------------------------

def cli_available(profit):
    """(True, "") if `profit run` exists, else (False, why)."""
    if profit is None:
        return False, "no `profit` executable found (is the project installed in .venv?)"
    for args in (["--help"], ["run", "--help"]):
        try:
            done = subprocess.run([profit, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"`profit {' '.join(args)}` failed: {error}"
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            return False, f"`profit {' '.join(args)}` exited {done.returncode}: {last[0]}"
    return True, ""


def measure_cli(rows_list, seed):
    profit = find_profit()
    ok, why = cli_available(profit)
    if not ok:
        print(f"  NOTE: skipping the CLI memory benchmark: {why}")
        return None
    results = []
    floor = measure_floor(profit)
    with tempfile.TemporaryDirectory(prefix="profit-bench-") as tmp:
        for rows in rows_list:
            data = Path(tmp) / f"customers-{rows}.csv"
            out = Path(tmp) / f"decisions-{rows}.json"
            start = time.perf_counter()
            with open(data, "w", encoding="utf-8", newline="") as stream:
                write_csv(generate(rows, seed), stream)
            print(f"  wrote {rows:,} rows ({data.stat().st_size / 2**20:.0f} MiB) "
                  f"in {time.perf_counter() - start:.1f}s; running profit run ...", flush=True)
            status, wall, peak, tail = run_measured(
                [profit, "run", str(POLICY), str(data), "--format", "json", "--output", str(out)])
            size = out.stat().st_size if out.exists() else 0
            print(f"    exit {status}, {wall:.1f}s ({rows / wall:,.0f} rows/s), peak RSS "
                  f"{peak / 2**20:.1f} MiB, output {size / 2**20:.0f} MiB")
            if status != 0 or size == 0:
                for line in tail:
                    print(f"    stderr: {line}")
            results.append({"rows": rows, "status": status, "wall": wall, "peak": peak, "out": size})
            data.unlink()
            if out.exists():
                out.unlink()
    return {"floor": floor, "runs": results}


def memory_verdict(mem):
    runs = [r for r in mem["runs"] if r["peak"]]
    if len(runs) < 2:
        return "only one size measured: cannot tell whether peak memory grows with rows"
    small, large = min(runs, key=lambda r: r["rows"]), max(runs, key=lambda r: r["rows"])
    growth = large["peak"] - small["peak"]
    per_100k = growth / ((large["rows"] - small["rows"]) / 100_000)
    if growth <= max(16 * 2**20, 0.15 * small["peak"]):
        return (f"peak memory is flat: {small['peak'] / 2**20:.0f} MiB at {small['rows']:,} rows, "
                f"{large['peak'] / 2**20:.0f} MiB at {large['rows']:,} rows (streams)")
    return (f"peak memory GROWS with rows: {small['peak'] / 2**20:.0f} MiB at {small['rows']:,} -> "
            f"{large['peak'] / 2**20:.0f} MiB at {large['rows']:,} "
            f"(~{per_100k / 2**20:.1f} MiB per 100,000 rows)")


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, records_help="records to evaluate in the timing runs (default 100000)",
        rows_option="--memory-rows",
        rows_help="comma-separated CSV sizes for the CLI memory runs (default 100000,1000000)",
        skip_option="--skip-memory", skip_help="skip the CLI peak-memory runs", repeat_default=5)
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be at least 1")
    memory_rows = parse_rows(parser, args.memory_rows, "--memory-rows")

    n = args.records
    print(header("core"))
    print(f"engine at {git_revision()}; policy {POLICY.relative_to(ROOT)}; {n:,} records, "
          f"seed {args.seed}, best of {args.repeat}")

    start = time.perf_counter()
    policy = load_policy(str(POLICY))
    load_time = time.perf_counter() - start
    start = time.perf_counter()
    records = list(generate(n, args.seed))
    print(f"  loaded the policy in {load_time * 1000:.0f} ms; generated {n:,} records in "
          f"{time.perf_counter() - start:.1f}s (untimed)")

    # -- correctness first: the comparison means nothing if the answers differ
    checked = records[:VERIFY_COUNT]
    problems = verify(policy, checked)
    # ... and on copies with empty cells, which must take the policy's defaults
    blanked = []
    for i, record in enumerate(records[:200]):
        copy = dict(record)
        copy[DEFAULTED[i % len(DEFAULTED)]] = ""
        copy[DEFAULTED[(i * 7 + 3) % len(DEFAULTED)]] = " "
        blanked.append(copy)
    problems += verify(policy, blanked)
    if problems:
        print(f"\nFAIL: engine and hand-written baseline disagree on {len(checked):,} records "
              f"({len(problems)} differences); first ones:")
        for line in problems[:20]:
            print(f"  {line}")
        return 1
    print(f"  verified: engine == hand-written on the first {len(checked):,} records, and on "
          f"{len(blanked)} copies with empty cells (class, service_tier, action and all 13 "
          f"figures, exact Decimals)")

    # -- evaluation speed, engine and hand-written interleaved
    engine_times, hand_times = [], []
    for _ in range(args.repeat):
        gc.collect()
        t, e_dec, e_err = time_evaluate_many(policy, records)
        engine_times.append(t)
        gc.collect()
        t, h_dec, h_err = time_hand(records)
        hand_times.append(t)
    engine_t, hand_t = min(engine_times), min(hand_times)
    ratio = engine_t / hand_t
    met = round(ratio, 2) <= TARGET_RATIO  # as printed
    print(f"  engine:       {n / engine_t:>10,.0f} records/s  ({engine_t * 1e6 / n:6.1f} us/record; "
          f"{e_dec:,} decisions, {e_err:,} errors)")
    print(f"  hand-written: {n / hand_t:>10,.0f} records/s  ({hand_t * 1e6 / n:6.1f} us/record; "
          f"{h_dec:,} decisions, {h_err:,} errors)")
    verdict = "within" if met else "ABOVE"
    print(f"  engine / hand-written time: {ratio:.2f}x  ({verdict} the {TARGET_RATIO:.0f}x target)")

    # -- explanations
    gc.collect()
    explain_t, explained, chars = time_explain(policy, records[:EXPLAIN_COUNT])
    per_explain = explain_t / explained if explained else 0.0
    per_eval = engine_t / n
    print(f"  explain: str(d.explain()) for {explained:,} decisions in {explain_t:.2f}s = "
          f"{per_explain * 1e6:.0f} us each ({per_explain / per_eval:.1f}x one evaluation; "
          f"{chars / max(explained, 1):,.0f} characters each)")

    # -- CLI memory
    mem = None
    if args.skip_memory:
        print("  CLI memory: skipped (--skip-memory)")
    else:
        print(f"  CLI memory: profit run ... --format json, rows {', '.join(f'{r:,}' for r in memory_rows)}")
        mem = measure_cli(memory_rows, args.seed)
        if mem:
            print(f"  {memory_verdict(mem)}")

    # -- summary
    print("\nSummary")
    table = [("measure", "value"),
             ("records", f"{n:,}"),
             ("engine records/s", f"{n / engine_t:,.0f}"),
             ("hand-written records/s", f"{n / hand_t:,.0f}"),
             ("engine / hand-written", f"{ratio:.2f}x (target <= {TARGET_RATIO:.0f}x: "
                                       f"{'ok' if met else 'MISSED'})"),
             ("evaluate, us/record", f"{per_eval * 1e6:.1f}"),
             ("explain, us/decision", f"{per_explain * 1e6:.0f} ({per_explain / per_eval:.1f}x evaluate)")]
    if mem:
        for run in mem["runs"]:
            table.append((f"CLI {run['rows']:,} rows",
                          f"{run['peak'] / 2**20:.0f} MiB peak, {run['wall']:.1f}s, exit {run['status']}"))
    elif not args.skip_memory:
        table.append(("CLI memory", "skipped: `profit run` not available"))
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
