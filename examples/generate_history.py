#!/usr/bin/env python3
"""Generate a deterministic quarterly history for the customers of customers.csv.

Why: ``customers.csv`` is one yearly snapshot per customer, so it can say which
customers lose money but not how they got there.  This script gives each of
them eight quarters, 2025Q1 to 2026Q4, so that trends can be shown and tested:
the profitable account that slowly turns unprofitable, the one that comes back,
the one that quietly stops buying.

Output columns: ``id,period`` and then every column of ``customers.csv`` after
``id``, in the same order (see ``COLUMNS``).  ``period`` is ``2025Q1`` ...
``2026Q4``.  One row per customer and quarter, grouped by customer in the order
of customers.csv, periods ascending within a customer.  The figures are per
quarter.  Money has exactly two decimals, counts are integers, hours have one
decimal, as in customers.csv; UTF-8, ``\\n`` line endings.

The output, ``examples/customer_history.csv``, is checked in.  Regenerate it
with::

    .venv/bin/python examples/generate_history.py

Usage::

    python examples/generate_history.py [--seed S] [--input FILE] [--output FILE]
                                        [--missing N]

Defaults: seed 2026, ``examples/customers.csv`` in, ``examples/customer_history.csv``
out (``--output -`` writes to stdout), 10 customers with a missing quarter.  A
summary goes to stderr: rows written, customers per story, the customers with a
missing quarter, how many declining customers flip from profitable to
unprofitable, and C-1034's quarterly profit under the simple view (``profit``).

How a quarter is made.  Level 1.0 is a quarter of the customer's snapshot: the
snapshot is read as the customer's last year, 2026, so each story's revenue
curve is scaled so that its four 2026 quarters average 1.0 (the 2026 quarters
add up to about the snapshot).  Lapsing customers are the exception: a lapsed
year cannot be scaled up from, so their snapshot is the run rate before they
lapsed.  Each column then gets its own seeded noise around its curve.  Cost of
goods and list discounts keep the customer's own share of revenue from the
snapshot, give or take about a percentage point a quarter.  The signup discount
of the snapshot (if any) falls in 2025Q1 only.  Referrals and referral revenue
of the snapshot are dealt out over the quarters of each year (each year adds up
to the snapshot exactly).  Overdue is 0 for almost everyone: the snapshot's
long-overdue customers (more than 90 days) and about one in eight declining or
lapsing customers have overdue invoices that build up over the last 3-4
quarters (the long-overdue ones end at their snapshot balance and days in
2026Q4).
Manual orders and deliveries never exceed orders, rush deliveries never exceed
deliveries, and a quarter without orders has no revenue.

Stories (shares of the customers; exact counts, largest remainder, shuffled):

    steady      60 %  level 1.0 with small noise (revenue about +-6 %).
    declining   15 %  flat, then from the middle of the history (2025Q4 or
                      2026Q1) revenue and orders fall 8-20 % a quarter while
                      support hours, support calls and manual orders rise
                      10-30 % a quarter; deliveries fall more slowly, account
                      management stays.  The classic profitable customer that
                      turns unprofitable: 80 % of them are drawn from the
                      customers whose snapshot margin (simple view) is
                      between -12 % and +6 %, where a decline does that (with
                      the default seed 57 of the 90 are profitable over 2025
                      and unprofitable in 2026Q4), the rest from anyone.
    recovering  10 %  a dip of two quarters (10-22 % down each) from 2025Q2 or
                      2025Q3, then growth of 8-16 % a quarter.
    lapsing      8 %  normal, then volume falls to near zero in the last 2 or 3
                      quarters (some of those quarters have no orders at all);
                      visits and account time fall, mailings go on.  ``--missing``
                      of them (10 by default) have NO row for one quarter in the
                      middle of their history (2025Q3, 2025Q4 or 2026Q1).
    growing      7 %  5-12 % more each quarter.

Fixed story, whatever the seed: C-1034 (Lindner Installations KG, the
"referral rescue" edge case of customers.csv) is declining, with every figure
of its eight quarters fixed in ``FIXED_HISTORY``.  Its four 2026 quarters add
up exactly to its customers.csv row (18,000.00 revenue, 38 orders, ...).  In
2025 it was a healthy 9,000-a-quarter account served with few orders,
deliveries and calls; from 2025Q4 revenue falls about 19 % a quarter while
manual orders, rushes, support and account time go up.  Under the simple view
(``profit``, no referrals) it makes +962.10 in 2025Q1 and -2,153.98 in 2026Q4.

The simple view, used for the summary only::

    profit = revenue - cost_of_goods - 5 % commission
             - (orders*14 + manual_orders*42 + deliveries*85 + rush_deliveries*420)
             - (support_hours*38 + support_calls*4.50)
             - sales_visits*120 - staff_hours*45 - mailings*2.40

Determinism: only ``random.Random`` instances with string seeds derived from
``--seed`` are used (never the global generator): one for the story
assignment, one for the missing quarters and one per customer
(``history-<seed>-<id>``), so a customer's
history depends only on the seed, its snapshot and its story.  Money is exact
``Decimal`` arithmetic on integer cents, quantized to the cent (half up);
random factors are random integers of basis points, never floats.  The same
input and seed always give the same file, byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Iterable, Iterator

from generate_customers import write_output  # beside this script: the same CSV layout

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SEED = 2026
DEFAULT_INPUT = os.path.join(HERE, "customers.csv")
DEFAULT_OUTPUT = os.path.join(HERE, "customer_history.csv")
DEFAULT_MISSING = 10

SNAPSHOT_COLUMNS = (
    "id", "name", "region", "revenue", "list_discounts", "cost_of_goods",
    "orders", "manual_orders", "deliveries", "rush_deliveries", "sales_visits",
    "staff_hours", "mailings", "signup_discount", "support_hours",
    "support_calls", "overdue", "days_overdue", "referrals", "referral_revenue",
)
COLUMNS = ("id", "period") + SNAPSHOT_COLUMNS[1:]

PERIODS = tuple(f"{year}Q{q}" for year in (2025, 2026) for q in range(1, 5))
LAST_YEAR = range(4, 8)          # indexes of the 2026 quarters in PERIODS

STORIES = ("steady", "declining", "recovering", "lapsing", "growing")
STORY_SHARES = {"steady": 60, "declining": 15, "recovering": 10,
                "lapsing": 8, "growing": 7}          # per cent
MISSING_QUARTERS = (2, 3, 4)     # 2025Q3, 2025Q4, 2026Q1: before any lapse
P_LATE_PAYER = 1250              # bp of declining/lapsing customers
LONG_OVERDUE_DAYS = 90           # snapshot days above this: late payer
DECLINING_WINDOW = (Decimal("-0.12"), Decimal("0.06"))   # snapshot margin
DECLINING_IN_WINDOW = 80         # per cent of the declining from the window

_MONEY_FIELDS = ("revenue", "list_discounts", "cost_of_goods",
                 "signup_discount", "overdue", "referral_revenue")
_HOURS_FIELDS = ("staff_hours", "support_hours")
_COUNT_FIELDS = ("orders", "manual_orders", "deliveries", "rush_deliveries",
                 "sales_visits", "mailings", "support_calls", "days_overdue",
                 "referrals")

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ONE = Decimal(1)
ZERO = Decimal(0)
FOUR = Decimal(4)


def _row(**fields: int) -> dict[str, int]:
    return fields


# --- the demo story --------------------------------------------------------
# C-1034's eight quarters.  Money in cents, hours in tenths, so the rows are
# exact.  The 2026 quarters add up to its customers.csv row: revenue 1800000,
# list_discounts 90000 (5 %), cost_of_goods 1368000, orders 38, manual 30,
# deliveries 32, rush 5, visits 9, staff 260, mailings 40, support 95, calls
# 22, referrals 14, referral_revenue 42000000.  Cost of goods is 74 % of
# revenue in 2025 and creeps up to 76.6 % by 2026Q4.
FIXED_STORY = {"C-1034": "declining"}
FIXED_HISTORY: dict[str, tuple[dict[str, int], ...]] = {
    "C-1034": (
        # 2025Q1..Q4: healthy, few orders, consolidated deliveries
        _row(revenue=905000, list_discounts=45250, cost_of_goods=669700,
             orders=14, manual_orders=2, deliveries=4, rush_deliveries=0,
             sales_visits=1, staff_hours=30, mailings=10, signup_discount=0,
             support_hours=8, support_calls=2, overdue=0, days_overdue=0,
             referrals=3, referral_revenue=10050000),
        _row(revenue=924000, list_discounts=46200, cost_of_goods=683760,
             orders=15, manual_orders=2, deliveries=4, rush_deliveries=0,
             sales_visits=1, staff_hours=30, mailings=10, signup_discount=0,
             support_hours=10, support_calls=2, overdue=0, days_overdue=0,
             referrals=4, referral_revenue=11800000),
        _row(revenue=911000, list_discounts=45550, cost_of_goods=674140,
             orders=14, manual_orders=3, deliveries=5, rush_deliveries=0,
             sales_visits=1, staff_hours=35, mailings=10, signup_discount=0,
             support_hours=10, support_calls=3, overdue=0, days_overdue=0,
             referrals=3, referral_revenue=9250000),
        # decline starts: about -19 % a quarter from here on
        _row(revenue=740000, list_discounts=37000, cost_of_goods=551300,
             orders=13, manual_orders=3, deliveries=5, rush_deliveries=0,
             sales_visits=1, staff_hours=35, mailings=10, signup_discount=0,
             support_hours=12, support_calls=3, overdue=0, days_overdue=0,
             referrals=4, referral_revenue=10900000),
        # 2026Q1..Q4: the snapshot year
        _row(revenue=600000, list_discounts=30000, cost_of_goods=453000,
             orders=12, manual_orders=6, deliveries=9, rush_deliveries=0,
             sales_visits=2, staff_hours=55, mailings=10, signup_discount=0,
             support_hours=15, support_calls=3, overdue=0, days_overdue=0,
             referrals=4, referral_revenue=12000000),
        _row(revenue=488000, list_discounts=24400, cost_of_goods=370880,
             orders=10, manual_orders=8, deliveries=8, rush_deliveries=1,
             sales_visits=2, staff_hours=60, mailings=10, signup_discount=0,
             support_hours=20, support_calls=5, overdue=0, days_overdue=0,
             referrals=3, referral_revenue=9000000),
        _row(revenue=394000, list_discounts=19700, cost_of_goods=300622,
             orders=9, manual_orders=9, deliveries=8, rush_deliveries=2,
             sales_visits=2, staff_hours=65, mailings=10, signup_discount=0,
             support_hours=25, support_calls=6, overdue=0, days_overdue=0,
             referrals=4, referral_revenue=11500000),
        _row(revenue=318000, list_discounts=15900, cost_of_goods=243498,
             orders=7, manual_orders=7, deliveries=7, rush_deliveries=2,
             sales_visits=3, staff_hours=80, mailings=10, signup_discount=0,
             support_hours=35, support_calls=8, overdue=0, days_overdue=0,
             referrals=3, referral_revenue=9500000),
    ),
}


# --- exact helpers ---------------------------------------------------------

def _money(value: Decimal) -> str:
    """Decimal -> '1234.56' (quantized half up; never formatted from a float)."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _hours(value: Decimal) -> str:
    return str(value.quantize(TENTH, rounding=ROUND_HALF_UP))


def _bp(rng: random.Random, low: int, high: int) -> Decimal:
    """A random fraction between low and high basis points (integers only)."""
    return Decimal(rng.randint(low, high)) / 10000


def _noise(rng: random.Random, spread_bp: int) -> Decimal:
    """1 +- spread (triangular: the mean of two uniform integer draws)."""
    return ONE + Decimal(rng.randint(-spread_bp, spread_bp)
                         + rng.randint(-spread_bp, spread_bp)) / 20000


def _count(rng: random.Random, expected: Decimal) -> int:
    """Round a non-negative expectation to an integer, up with the probability
    of its fraction, so small counts keep their mean."""
    if expected <= 0:
        return 0
    whole = expected.to_integral_value(rounding=ROUND_FLOOR)
    frac_ppm = int(((expected - whole) * 1_000_000).to_integral_value(
        rounding=ROUND_HALF_UP))
    return int(whole) + (1 if rng.randrange(1_000_000) < frac_ppm else 0)


def _split(total: int, weights: list[int]) -> list[int]:
    """Split an integer total in proportion to integer weights, exactly
    (largest remainder, ties to the earlier slot)."""
    wsum = sum(weights)
    if wsum == 0:
        return [0] * len(weights)
    parts = [total * w // wsum for w in weights]
    rest = sorted(range(len(weights)),
                  key=lambda i: (-(total * weights[i] % wsum), i))
    for i in rest[:total - sum(parts)]:
        parts[i] += 1
    return parts


def _scale_last_year(curve: list[Decimal]) -> list[Decimal]:
    """Scale a curve so that its 2026 quarters average 1.0."""
    total = sum(curve[q] for q in LAST_YEAR)
    return [c * FOUR / total for c in curve]


def profit(row: dict[str, str]) -> Decimal:
    """The simple view of a row's profit (see the module docstring), to the cent."""
    d = {k: Decimal(row[k]) for k in SNAPSHOT_COLUMNS[3:]}
    value = (d["revenue"] - d["cost_of_goods"] - d["revenue"] * Decimal("0.05")
             - (d["orders"] * 14 + d["manual_orders"] * 42
                + d["deliveries"] * 85 + d["rush_deliveries"] * 420)
             - (d["support_hours"] * 38 + d["support_calls"] * Decimal("4.50"))
             - d["sales_visits"] * 120 - d["staff_hours"] * 45
             - d["mailings"] * Decimal("2.40"))
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- stories ---------------------------------------------------------------

def assign_stories(snapshots: list[dict[str, str]],
                   seed: int) -> dict[str, str]:
    """Exact story counts (largest remainder of STORY_SHARES) dealt to the
    customers in a seeded random order; fixed stories first.  Most declining
    customers (DECLINING_IN_WINDOW) are drawn from those whose snapshot
    margin under the simple view lies in DECLINING_WINDOW, the accounts that
    a decline can push from profit into loss; the rest from anyone."""
    rng = random.Random(f"history-stories-{seed}")
    ids = [snap["id"] for snap in snapshots]
    counts = dict(zip(STORIES, _split(len(ids), [STORY_SHARES[s]
                                                  for s in STORIES])))
    stories: dict[str, str] = {}
    for cid, story in FIXED_STORY.items():
        if cid not in ids:
            continue
        stories[cid] = story
        counts[story] = max(0, counts[story] - 1)
    order = [cid for cid in ids if cid not in stories]
    rng.shuffle(order)

    low, high = DECLINING_WINDOW
    in_window = set()
    for snap in snapshots:
        revenue = Decimal(snap["revenue"])
        if revenue > 0 and low <= profit(snap) / revenue <= high:
            in_window.add(snap["id"])
    quota = counts["declining"] * DECLINING_IN_WINDOW // 100
    for cid in order:
        if quota == 0:
            break
        if cid in in_window:
            stories[cid] = "declining"
            quota -= 1
            counts["declining"] -= 1

    pool = [s for s in STORIES for _ in range(counts[s])]
    rng.shuffle(pool)
    rest = [cid for cid in order if cid not in stories]
    stories.update(zip(rest, pool))
    return {cid: stories[cid] for cid in ids}


def choose_missing(stories: dict[str, str], count: int,
                   seed: int) -> dict[str, int]:
    """``count`` lapsing customers (not fixed ones) -> the quarter they lack."""
    rng = random.Random(f"history-missing-{seed}")
    lapsing = [c for c, s in stories.items()
               if s == "lapsing" and c not in FIXED_HISTORY]
    chosen = rng.sample(lapsing, min(count, len(lapsing)))
    return {cid: rng.choice(MISSING_QUARTERS) for cid in chosen}


def _curves(story: str, rng: random.Random) -> dict[str, list[Decimal]]:
    """Per-quarter levels (1.0 = a quarter of the snapshot) for the groups of
    columns: volume (revenue, orders), deliveries, manual orders, support
    (hours and calls), account (visits, staff hours) and mailings."""
    flat = [ONE] * 8
    if story == "steady":
        volume = flat
        return {"volume": volume, "deliveries": flat, "manual": flat,
                "support": flat, "account": flat, "mailings": flat}

    if story == "growing":
        level, volume = ONE, []
        for q in range(8):
            if q:
                level *= ONE + _bp(rng, 500, 1200)
            volume.append(level)
        volume = _scale_last_year(volume)
        soft = [v.sqrt() for v in volume]
        return {"volume": volume, "deliveries": soft, "manual": soft,
                "support": soft, "account": flat, "mailings": flat}

    if story == "declining":
        start = rng.choice((3, 4))            # 2025Q4 or 2026Q1
        level, rise, volume, trouble = ONE, ONE, [], []
        for q in range(8):
            if q >= start:
                level *= ONE - _bp(rng, 800, 2000)
                rise *= ONE + _bp(rng, 1000, 3000)
            volume.append(level)
            trouble.append(rise)
        volume = _scale_last_year(volume)
        trouble = _scale_last_year(trouble)
        return {"volume": volume, "deliveries": [v.sqrt() for v in volume],
                "manual": trouble, "support": trouble, "account": flat,
                "mailings": flat}

    if story == "recovering":
        dip = rng.choice((1, 2))              # first down quarter
        level, volume = ONE, []
        for q in range(8):
            if dip <= q < dip + 2:
                level *= ONE - _bp(rng, 1000, 2200)
            elif q >= dip + 2:
                level *= ONE + _bp(rng, 800, 1600)
            volume.append(level)
        volume = _scale_last_year(volume)
        return {"volume": volume, "deliveries": [v.sqrt() for v in volume],
                "manual": flat, "support": flat, "account": flat,
                "mailings": flat}

    if story == "lapsing":
        start = rng.choice((5, 6))            # 3 or 2 lapsed quarters
        volume, support, account = [], [], []
        for q in range(8):
            if q < start:
                volume.append(ONE)
                support.append(ONE)
                account.append(ONE)
            elif q == start:
                volume.append(_bp(rng, 300, 1200))
                support.append(_bp(rng, 3000, 6000))
                account.append(_bp(rng, 4000, 7000))
            else:
                volume.append(_bp(rng, 0, 400))
                support.append(_bp(rng, 0, 2500))
                account.append(_bp(rng, 1000, 3500))
        return {"volume": volume, "deliveries": volume, "manual": volume,
                "support": support, "account": account, "mailings": flat}

    raise ValueError(f"unknown story {story!r}")


def _snapshot_numbers(snap: dict[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(snap[k]) for k in SNAPSHOT_COLUMNS[3:]}


def _deal_referrals(rng: random.Random, referrals: int, ref_cents: int,
                    quarters: list[int]) -> dict[int, tuple[int, int]]:
    """Deal a year's referrals over the given (present) quarters: each referral
    lands in a random quarter and brings a random share of the year's
    referral revenue; the year adds up exactly."""
    out = {q: (0, 0) for q in quarters}
    if not quarters or (referrals == 0 and ref_cents == 0):
        return out
    if referrals == 0:                        # revenue without a count
        for q, c in zip(quarters, _split(ref_cents, [1] * len(quarters))):
            out[q] = (0, c)
        return out
    slots = [rng.choice(quarters) for _ in range(referrals)]
    shares = _split(ref_cents, [rng.randint(20, 100) for _ in range(referrals)])
    for q, c in zip(slots, shares):
        n, cents = out[q]
        out[q] = (n + 1, cents + c)
    return out


def customer_history(snap: dict[str, str], story: str, seed: int,
                     missing: int | None = None) -> list[dict[str, str]]:
    """The rows (dicts of str keyed by COLUMNS) of one customer, periods
    ascending; the quarter index ``missing`` (0 = 2025Q1) is left out."""
    cid = snap["id"]
    head = {"id": cid, "name": snap["name"], "region": snap["region"]}
    fixed = FIXED_HISTORY.get(cid)
    if fixed is not None:
        rows = []
        for q, fields in enumerate(fixed):
            if q == missing:
                continue
            row = dict(head, period=PERIODS[q])
            for k in SNAPSHOT_COLUMNS[3:]:
                v = fields[k]
                if k in _MONEY_FIELDS:
                    row[k] = _money(Decimal(v) / 100)
                elif k in _HOURS_FIELDS:
                    row[k] = _hours(Decimal(v) / 10)
                else:
                    row[k] = str(v)
            rows.append(row)
        return rows

    rng = random.Random(f"history-{seed}-{cid}")
    s = _snapshot_numbers(snap)
    curves = _curves(story, rng)
    quarter = {k: v / FOUR for k, v in s.items()}    # a quarter of the year
    present = [q for q in range(8) if q != missing]

    # the customer's own shares of revenue
    if s["revenue"] > 0:
        cogs_share = s["cost_of_goods"] / s["revenue"]
        disc_share = s["list_discounts"] / s["revenue"]
    else:
        cogs_share = disc_share = ZERO
    rev_spread = 600 if story == "steady" else 450

    # overdue invoices building up in the last quarters
    late = (int(s["days_overdue"]) > LONG_OVERDUE_DAYS
            or (story in ("declining", "lapsing")
                and rng.randrange(10000) < P_LATE_PAYER))
    overdue_from = rng.choice((4, 5))
    if s["overdue"] > 0 and int(s["days_overdue"]) > LONG_OVERDUE_DAYS:
        overdue_target = s["overdue"]
        days_target = int(s["days_overdue"])
    else:
        overdue_target = s["revenue"] * _bp(rng, 400, 1500)
        days_target = rng.randint(61, 150)
    if overdue_target <= 0:
        late = False

    # referrals: each year gets the snapshot's, dealt over its present quarters
    dealt: dict[int, tuple[int, int]] = {}
    ref_cents = int(s["referral_revenue"] * 100)
    for year in (range(0, 4), range(4, 8)):
        dealt.update(_deal_referrals(rng, int(s["referrals"]), ref_cents,
                                     [q for q in year if q in present]))

    rows = []
    for q in range(8):
        c = {k: v[q] for k, v in curves.items()}
        # draw every quarter's noise, present or not, so a missing quarter
        # does not shift the others
        revenue = (quarter["revenue"] * c["volume"] * _noise(rng, rev_spread)
                   ).quantize(CENT, rounding=ROUND_HALF_UP)
        cogs_q = max(ZERO, min(cogs_share + _bp(rng, -120, 120), Decimal("0.99")))
        disc_q = (max(ZERO, disc_share + _bp(rng, -50, 50))
                  if disc_share > 0 else ZERO)
        orders = _count(rng, quarter["orders"] * c["volume"] * _noise(rng, 1000))
        manual = _count(rng, quarter["manual_orders"] * c["manual"]
                        * _noise(rng, 1500))
        deliveries = _count(rng, quarter["deliveries"] * c["deliveries"]
                            * _noise(rng, 1000))
        rush = _count(rng, quarter["rush_deliveries"] * c["deliveries"]
                      * _noise(rng, 3000))
        visits = _count(rng, quarter["sales_visits"] * c["account"]
                        * _noise(rng, 2000))
        staff = _count(rng, quarter["staff_hours"] * 10 * c["account"]
                       * _noise(rng, 1500))                       # tenths
        mailings = _count(rng, quarter["mailings"] * c["mailings"]
                          * _noise(rng, 1000))
        support = _count(rng, quarter["support_hours"] * 10 * c["support"]
                         * _noise(rng, 2000))                     # tenths
        calls = _count(rng, quarter["support_calls"] * c["support"]
                       * _noise(rng, 2000))
        overdue_noise = _noise(rng, 1000)
        if q not in present:
            continue

        # consistency: no orders, no sales; manual and deliveries within
        # orders, rushes within deliveries
        if orders == 0:
            revenue = ZERO
            manual = deliveries = rush = 0
        else:
            manual = min(manual, orders)
            deliveries = min(max(deliveries, 1), orders)
            rush = min(rush, deliveries)
        cogs = (revenue * cogs_q).quantize(CENT, rounding=ROUND_HALF_UP)
        discounts = (revenue * disc_q).quantize(CENT, rounding=ROUND_HALF_UP)
        signup = s["signup_discount"] if q == 0 else ZERO

        if late and q >= overdue_from:
            steps = 8 - overdue_from
            step = q - overdue_from + 1
            if step == steps:
                overdue = overdue_target
            else:
                overdue = overdue_target * step / steps * overdue_noise
            days = max(1, days_target * step // steps)
        else:
            overdue, days = ZERO, 0
        referrals, ref_q = dealt[q]

        rows.append({
            "id": cid,
            "period": PERIODS[q],
            "name": snap["name"],
            "region": snap["region"],
            "revenue": _money(revenue),
            "list_discounts": _money(discounts),
            "cost_of_goods": _money(cogs),
            "orders": str(orders),
            "manual_orders": str(manual),
            "deliveries": str(deliveries),
            "rush_deliveries": str(rush),
            "sales_visits": str(visits),
            "staff_hours": _hours(Decimal(staff) / 10),
            "mailings": str(mailings),
            "signup_discount": _money(signup),
            "support_hours": _hours(Decimal(support) / 10),
            "support_calls": str(calls),
            "overdue": _money(overdue),
            "days_overdue": str(days),
            "referrals": str(referrals),
            "referral_revenue": _money(Decimal(ref_q) / 100),
        })
    return rows


def generate(snapshots: list[dict[str, str]], seed: int = DEFAULT_SEED,
             missing_count: int = DEFAULT_MISSING,
             stats: dict[str, Any] | None = None) -> Iterator[dict[str, str]]:
    """Yield the history rows of ``snapshots`` (rows of customers.csv as
    dicts of str).  If ``stats`` is given it is filled with the stories and
    the missing quarters."""
    stories = assign_stories(snapshots, seed)
    missing = choose_missing(stories, missing_count, seed)
    if stats is not None:
        stats["stories"] = stories
        stats["missing"] = missing
    with localcontext() as ctx:
        ctx.prec = 28
        for snap in snapshots:
            cid = snap["id"]
            yield from customer_history(snap, stories[cid], seed,
                                        missing.get(cid))


def read_snapshots(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != SNAPSHOT_COLUMNS:
            raise SystemExit(f"{path}: expected the columns "
                             f"{','.join(SNAPSHOT_COLUMNS)}")
        return list(reader)


class _Recorder:
    """Passes rows through and keeps what the summary needs."""

    def __init__(self, rows: Iterable[dict[str, str]]) -> None:
        self.rows = rows
        self.by_customer: dict[str, dict[str, Decimal]] = {}

    def __iter__(self) -> Iterator[dict[str, str]]:
        for row in self.rows:
            self.by_customer.setdefault(row["id"], {})[row["period"]] = profit(row)
            yield row


def summary(n_rows: int, stats: dict[str, Any], profits: dict[str, dict[str, Decimal]]
            ) -> str:
    stories, missing = stats["stories"], stats["missing"]
    lines = [f"{n_rows} rows, {len(stories)} customers, "
             f"{PERIODS[0]}..{PERIODS[-1]}"]
    lines.append("stories: " + ", ".join(
        f"{s} {sum(1 for v in stories.values() if v == s)}" for s in STORIES))
    lines.append("missing quarter: " + (", ".join(
        f"{cid} {PERIODS[q]}" for cid, q in sorted(missing.items()))
        or "none"))
    flips = 0
    declining = [c for c, s in stories.items() if s == "declining"]
    for cid in declining:
        p = profits.get(cid, {})
        y2025 = sum((p.get(per, ZERO) for per in PERIODS[:4]), ZERO)
        if y2025 > 0 and p.get(PERIODS[-1], ZERO) < 0:
            flips += 1
    lines.append(f"declining: {flips} of {len(declining)} profitable in 2025 "
                 f"and unprofitable in {PERIODS[-1]} (simple view)")
    for cid in FIXED_HISTORY:
        if cid in profits:
            lines.append(f"{cid} ({stories.get(cid)}) profit, simple view: "
                         + ", ".join(f"{per} {v}" for per, v
                                     in profits[cid].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a deterministic quarterly history (2025Q1-2026Q4) "
                    "for the customers of customers.csv (CSV).")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--input", default=DEFAULT_INPUT,
                        help="customer snapshot CSV (default "
                             "examples/customers.csv next to this script)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="output file, '-' for stdout (default "
                             "examples/customer_history.csv next to this "
                             "script)")
    parser.add_argument("--missing", type=int, default=DEFAULT_MISSING,
                        help="lapsing customers with one quarter missing "
                             f"(default {DEFAULT_MISSING})")
    args = parser.parse_args(argv)
    if args.missing < 0:
        parser.error("--missing must be >= 0")

    snapshots = read_snapshots(args.input)
    stats: dict[str, Any] = {}
    rec = _Recorder(generate(snapshots, args.seed, args.missing, stats))
    n = write_output(rec, args.output, COLUMNS)
    if n is None:
        return 1
    print(summary(n, stats, rec.by_customer), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
