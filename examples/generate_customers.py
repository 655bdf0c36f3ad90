#!/usr/bin/env python3
"""Generate realistic, deterministic B2B-distributor customer records.

The columns are the fields of the ``record customer`` block in
``policies/standard.policy``, in that order (see ``COLUMNS``).  Figures are per
customer per year, drawn from the ranges in the domain notes: log-normal revenue
between 5k and 2M EUR with a heavy tail, 20-30 % gross margin, 0-15 % list
discounts, 10-200 orders, 10-100 deliveries, 0-20 rush deliveries, 2-25 sales
visits, and so on.  Activity grows with revenue but far more slowly than revenue,
so small accounts carry a high cost to serve; with the default seed about a
quarter of the customers come out unprofitable under the standard policy (about
62 % profitable, 10 % break-even, 2 % liability).

Usage::

    python examples/generate_customers.py [--count N] [--seed S] [--output FILE]
    python examples/generate_customers.py --portfolio [--count N] [--seed S] [--output FILE]

Defaults: 600 customers, seed 2026, ``examples/customers.csv``; ``--output -``
writes to stdout.  With ``--portfolio`` (defaults 800 customers,
``examples/portfolio_customers.csv``) four columns are added -- channel,
support_minutes, referred_by, came_anyway -- and referrals/referral_revenue
follow the referral network; see ``generate_portfolio`` and
examples/README.md.  As a library::

    from generate_customers import generate, COLUMNS
    for row in generate(100_000, seed=7):   # dicts of str keyed by COLUMNS
        ...

    from generate_customers import generate_portfolio, PORTFOLIO_COLUMNS
    for row in generate_portfolio(100_000, seed=7):
        ...

``generate`` is a generator: memory stays flat however many rows are asked for.
It uses only ``random.Random(seed)`` (never the global generator), so the same
count and seed always give the same rows; a row does not depend on the count, so
the first N rows of a larger run equal a run of N.  Money is built from integer
cents and always has exactly two decimals ("12400.00"); counts are integers;
hours have exactly one decimal ("12.5").

Deliberate edge cases, at fixed ids (present whenever --count reaches them,
whatever the seed; all their fields are fixed except where noted).  Profits are
under policies/standard.policy, rounding each line half-up to the cent:

    C-1007  zero revenue with costs: revenue and cost of goods 0.00, yet 3
            orders, 2 deliveries, 1 rush, 4 visits, 12.5 staff hours, 6.0
            support hours -> profit -2,097.80, unprofitable (break_even is
            0.00; margin is 0 through the policy's "when revenue > 0" guard).
    C-1013  heavy support: 150,360.20 revenue, 420.0 support hours and 610
            calls (18,705.00 cost to serve) -> profit -8,810.96, unprofitable;
            without the support it would be profitable (+9,894.04).
    C-1021  long-overdue liability: 38,400.00 overdue (16 % of revenue) for
            147 days.  Even after that is written off as bad debt the profit
            (6,425.90 on 240,000.00) is above the break-even band, so the
            "profitable" rule matches too: liability must win.
    C-1034  referral rescue: own business loses money (direct profit -5,998.00
            on 18,000.00 revenue), but 14 referrals with 420,000.00 referral
            revenue earn a 44,100.00 credit -> profit 38,102.00, profitable
            under the standard (full) view, unprofitable under a strict view
            that leaves referrals out.
    C-1042  deep signup discount: 25,000.00 to open the account on 60,000.00
            revenue -> profit -20,898.50, unprofitable.
    C-1058  exact break-even: profit is exactly 0.00 (every cost line is a whole
            number of cents, so no rounding is involved) -> break-even.
    C-1066  empty optional name: the name cell is empty; every other field is
            an ordinary randomly generated value (so it depends on the seed).
    C-1077  very large: revenue 1,998,740.00, the top of the range; 200 orders,
            100 deliveries (the caps) -> profit 316,142.00, gold tier.
    C-1089  break-even boundary: profit is exactly +2 % of revenue (1,700.00 on
            85,000.00), i.e. equal to the break_even threshold: "profit >
            break_even" is false, so it is break-even if "between" includes
            its bounds.

The portfolio rows (--portfolio) are these same rows, plus the four columns,
with referrals and referral_revenue recomputed from referred_by.  Its own
network edge cases, also at fixed ids (complete when --count >= 240):

    C-1034  hub: not referred; refers exactly 18 customers (HUB_REFEREES).
    C-1040 -> C-1101 -> C-1160 -> C-1215
            a 3-level chain below the hub's referee C-1040 (C-1215 is 4
            links from the hub).
    C-1111  self-referral: referred_by C-1111 (so referrals 1 and
            referral_revenue its own revenue).
    C-1122, C-1133
            2-cycle: each is referred_by the other (C-1122 names a later id).
    C-1144  referred_by C-0000, an id that is not in the file.
The classic edge cases above except C-1066 refer nobody in the portfolio, so
their outcomes are unchanged, except C-1034 (the hub) and C-1077 (0 referrals
instead of 2: profit 307,242.00).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
from collections import deque
from typing import Iterator

COLUMNS = (
    "id", "name", "region", "revenue", "list_discounts", "cost_of_goods",
    "orders", "manual_orders", "deliveries", "rush_deliveries", "sales_visits",
    "staff_hours", "mailings", "signup_discount", "support_hours",
    "support_calls", "overdue", "days_overdue", "referrals", "referral_revenue",
)

DEFAULT_COUNT = 600
DEFAULT_SEED = 2026
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "customers.csv")
FIRST_ID = 1001

REGIONS = ("north", "south", "east", "west")
# Weights for REGIONS (north and south are the bigger sales territories).
_REGION_CUM = (0.30, 0.58, 0.80, 1.0)

_NAME_FIRST = (
    "Acme", "Alpen", "Baltic", "Becker", "Berger", "Blue Line", "Brandt",
    "Central", "Continental", "Delta", "Donau", "Eagle", "Elbe", "Euro",
    "Falk", "Fischer", "Global", "Hansa", "Hartmann", "Helix", "Hoffmann",
    "Iberia", "Keller", "Kraft", "Lindner", "Lumen", "Main", "Meridian",
    "Meyer", "Neumann", "Nordic", "Nova", "Oak", "Orion", "Pioneer", "Polar",
    "Rhein", "Richter", "Saxon", "Schmidt", "Schulz", "Sigma", "Silver",
    "Stahl", "Summit", "Tauber", "Titan", "Vector", "Vogel", "Wagner",
    "Weber", "Weser", "Westfalen", "Zenith",
)
_NAME_TRADE = (
    "Trading", "Supply", "Logistics", "Industrial", "Handel", "Technik",
    "Bau", "Electrical", "Hardware", "Tools", "Components", "Packaging",
    "Foods", "Chemicals", "Plastics", "Metals", "Office Supplies", "Medical",
    "Automotive", "Agrar", "Fasteners", "Hydraulics", "Building Products",
    "Installations", "Distribution", "Services", "Systems",
)
_NAME_FORM = (
    "GmbH", "GmbH", "GmbH", "GmbH", "GmbH & Co. KG", "GmbH & Co. KG", "AG",
    "KG", "OHG", "e.K.", "Ltd", "Ltd", "B.V.", "S.A.", "S.r.l.", "s.r.o.",
    "Sp. z o.o.", "ApS", "AB",
)

_LN_MIN_REV = math.log(5_000.0)
_LN_MAX_REV = math.log(2_000_000.0)
_LN_SPAN = _LN_MAX_REV - _LN_MIN_REV
_REV_MU = math.log(55_000.0)   # median revenue
_REV_SIGMA = 1.25              # heavy right tail
# Activity (orders, visits, staff time) follows size = position of log revenue
# in 5k..2M; orders grow with size ** _SIZE_EXP.  _DEMAND_SIGMA spreads how
# demanding accounts of the same size are.  Tuned so that about 25 % of the
# customers are unprofitable under policies/standard.policy.
_SIZE_EXP = 1.6
_DEMAND_SIGMA = 0.5
_STAFF_BASE = 20               # tenths of an hour for the smallest account


def _money(cents: int) -> str:
    """Integer cents -> '1234.56' (no float formatting involved)."""
    if cents < 0:
        return "-" + _money(-cents)
    return f"{cents // 100}.{cents % 100:02d}"


def _hours(tenths: int) -> str:
    """Integer tenths of an hour -> '12.5'."""
    return f"{tenths // 10}.{tenths % 10}"


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else high if value > high else value


# --- deliberate edge cases -------------------------------------------------
# Each override replaces fields of the randomly generated row with that id.
# Money is given in cents, hours in tenths, so the rows are exact.

def _row(**fields: int | str) -> dict[str, int | str]:
    return fields


EDGE_CASES: dict[str, dict[str, int | str]] = {
    # zero revenue, real costs
    "C-1007": _row(
        name="Orion Packaging GmbH", region="east", revenue=0,
        list_discounts=0, cost_of_goods=0, orders=3, manual_orders=3,
        deliveries=2, rush_deliveries=1, sales_visits=4, staff_hours=125,
        mailings=12, signup_discount=0, support_hours=60, support_calls=9,
        overdue=0, days_overdue=0, referrals=0, referral_revenue=0),
    # heavy support
    "C-1013": _row(
        name="Helix Medical Systems AG", region="south", revenue=15_036_020,
        list_discounts=1_144_210, cost_of_goods=11_126_655, orders=148,
        manual_orders=61, deliveries=88, rush_deliveries=12, sales_visits=14,
        staff_hours=620, mailings=24, signup_discount=0, support_hours=4_200,
        support_calls=610, overdue=0, days_overdue=0, referrals=0,
        referral_revenue=0),
    # long-overdue liability (profitable on paper)
    "C-1021": _row(
        name="Donau Bau Handel GmbH & Co. KG", region="south",
        revenue=24_000_000, list_discounts=2_124_000, cost_of_goods=16_800_000,
        orders=132, manual_orders=18, deliveries=74, rush_deliveries=3,
        sales_visits=12, staff_hours=480, mailings=24, signup_discount=0,
        support_hours=310, support_calls=41, overdue=3_840_000,
        days_overdue=147, referrals=0, referral_revenue=0),
    # many referrals rescue an unprofitable account
    "C-1034": _row(
        name="Lindner Installations KG", region="west", revenue=1_800_000,
        list_discounts=90_000, cost_of_goods=1_368_000, orders=38,
        manual_orders=30, deliveries=32, rush_deliveries=5, sales_visits=9,
        staff_hours=260, mailings=40, signup_discount=0, support_hours=95,
        support_calls=22, overdue=0, days_overdue=0, referrals=14,
        referral_revenue=42_000_000),
    # deep signup discount
    "C-1042": _row(
        name="Nova Electrical Components s.r.o.", region="east",
        revenue=6_000_000, list_discounts=0, cost_of_goods=4_440_000, orders=54,
        manual_orders=6, deliveries=40, rush_deliveries=1, sales_visits=11,
        staff_hours=380, mailings=30, signup_discount=2_500_000,
        support_hours=120, support_calls=25, overdue=0, days_overdue=0,
        referrals=0, referral_revenue=0),
    # exactly break-even: profit 0.00
    # commission 4000.00 + acquisition 3297.60 (12*120 + 40.0*45 + 24*2.40)
    # + service 895.00 (20.0*38 + 30*4.50) + fulfilment 12260.00
    # (120*14 + 30*42 + 80*85 + 6*420) = 20452.60 = gross margin
    "C-1058": _row(
        name="Keller Hardware GmbH", region="north", revenue=8_000_000,
        list_discounts=421_100, cost_of_goods=5_954_740, orders=120,
        manual_orders=30, deliveries=80, rush_deliveries=6, sales_visits=12,
        staff_hours=400, mailings=24, signup_discount=0, support_hours=200,
        support_calls=30, overdue=0, days_overdue=0, referrals=0,
        referral_revenue=0),
    # empty optional name (rest of the row is random)
    "C-1066": _row(name=""),
    # very large customer
    "C-1077": _row(
        name="Continental Building Products AG", region="north",
        revenue=199_874_000, list_discounts=31_733_900,
        cost_of_goods=155_901_720, orders=200, manual_orders=8,
        deliveries=100, rush_deliveries=9, sales_visits=25, staff_hours=1_650,
        mailings=52, signup_discount=0, support_hours=1_480, support_calls=212,
        overdue=1_212_500, days_overdue=24, referrals=2,
        referral_revenue=8_600_000),
    # profit exactly = break_even threshold (2 % of revenue)
    # commission 4250.00 + acquisition 2707.20 (10*120 + 32.0*45 + 28*2.40)
    # + service 689.00 (16.0*38 + 18*4.50) + fulfilment 10220.00
    # (110*14 + 25*42 + 70*85 + 4*420) = 17866.20; gross margin 19566.20;
    # profit 1700.00
    "C-1089": _row(
        name="Weser Tools Distribution GmbH", region="west", revenue=8_500_000,
        list_discounts=666_600, cost_of_goods=6_543_380, orders=110,
        manual_orders=25, deliveries=70, rush_deliveries=4, sales_visits=10,
        staff_hours=320, mailings=28, signup_discount=0, support_hours=160,
        support_calls=18, overdue=0, days_overdue=0, referrals=0,
        referral_revenue=0),
}

_MONEY_FIELDS = frozenset((
    "revenue", "list_discounts", "cost_of_goods", "signup_discount",
    "overdue", "referral_revenue"))
_HOURS_FIELDS = frozenset(("staff_hours", "support_hours"))


def _format_override(field: str, value: int | str) -> str:
    if field in _MONEY_FIELDS:
        return _money(int(value))
    if field in _HOURS_FIELDS:
        return _hours(int(value))
    return str(value)


_EDGE_STR: dict[str, dict[str, str]] = {
    cid: {k: _format_override(k, v) for k, v in fields.items()}
    for cid, fields in EDGE_CASES.items()
}


# --- random customers ------------------------------------------------------

def generate(count: int = DEFAULT_COUNT,
             seed: int = DEFAULT_SEED) -> Iterator[dict[str, str]]:
    """Yield ``count`` customer rows as dicts of strings keyed by ``COLUMNS``."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    rand = rng.random
    normal = rng.normalvariate
    first, trade, form = _NAME_FIRST, _NAME_TRADE, _NAME_FORM
    n_first, n_trade, n_form = len(first), len(trade), len(form)
    edge = _EDGE_STR
    money, hours = _money, _hours

    for i in range(count):
        cid = f"C-{FIRST_ID + i}"

        # name and region
        name = (f"{first[int(rand() * n_first)]} "
                f"{trade[int(rand() * n_trade)]} "
                f"{form[int(rand() * n_form)]}")
        u = rand()
        region = ("north" if u < _REGION_CUM[0] else
                  "south" if u < _REGION_CUM[1] else
                  "east" if u < _REGION_CUM[2] else "west")

        # revenue: log-normal, resampled until inside 5k..2M
        while True:
            ln_rev = normal(_REV_MU, _REV_SIGMA)
            if _LN_MIN_REV <= ln_rev <= _LN_MAX_REV:
                break
        rev = round(math.exp(ln_rev) * 100.0)          # cents
        size = (ln_rev - _LN_MIN_REV) / _LN_SPAN       # 0 (5k) .. 1 (2M)

        # gross margin 20-30 %, list discount 0-15 % of list price
        margin_bp = 2000 + int(rand() * 1001)
        cogs = (rev * (10000 - margin_bp) + 5000) // 10000
        u = rand()
        disc_bp = 0 if u < 0.18 else 100 + int(rand() * 1401)
        list_disc = (rev * disc_bp + (10000 - disc_bp) // 2) // (10000 - disc_bp)

        # how demanding the account is (orders, deliveries, rushes, support
        # relative to its size); a log-normal spread with a demanding tail
        demand = math.exp(normal(0.0, _DEMAND_SIGMA))

        # orders and fulfilment: activity grows much slower than revenue
        orders = _clamp(int((10 + 190 * size ** _SIZE_EXP) * demand
                            * (0.8 + 0.4 * rand())), 10, 200)
        u = rand()
        if u < 0.35:                      # almost fully electronic (EDI/webshop)
            manual_share = 0.05 * rand()
        else:                             # small accounts phone/fax more
            manual_share = (0.15 + 0.55 * rand()) * (1.2 - 0.8 * size)
        manual = int(orders * manual_share + 0.5)
        deliveries = _clamp(int(orders * (0.3 + 0.5 * rand()) + 0.5), 10, 100)
        rush = _clamp(int((2 + 19 * size) * demand * rand() ** 3), 0, 20)
        if rush > deliveries:             # rush deliveries are deliveries too
            rush = deliveries

        # acquisition: visits, account-manager time, mailings, signup discount
        visits = _clamp(2 + int(23 * size * (0.6 + 0.8 * rand()) + 0.5), 2, 25)
        staff = int((_STAFF_BASE + 900 * size) * (0.5 + rand()))   # tenths
        mailings = 4 + int(49 * rand())
        u = rand()
        if u < 0.9:
            signup = 0
        else:                             # 250-5000 EUR in steps of 50
            signup = (5 + int(96 * rand() ** 2)) * 5000

        # support: driven by orders; a few heavy-support accounts
        calls = int(orders * (0.05 + 0.4 * rand()) * demand)
        support = int(calls * (1 + 5 * rand()))                    # tenths
        if rand() < 0.05:
            factor = 3 + 5 * rand()
            calls = int(calls * factor)
            support = int(support * factor * 1.5)

        # receivables: most paid on time, some long overdue
        u = rand()
        if u < 0.62:
            overdue = 0
            days = 0
        else:
            u = rand()
            if u < 0.58:
                days = 1 + int(30 * rand())
            elif u < 0.82:
                days = 31 + int(30 * rand())
            elif u < 0.92:
                days = 61 + int(30 * rand())
            else:                         # stuck invoices pile up
                days = 91 + int(110 * rand())
            share = 0.003 + 0.08 * rand() ** 2
            if days > 90:
                share += 0.15 * rand() ** 2
            overdue = int(rev * share)

        # referrals: mostly none, a few strong referrers
        u = rand()
        if u < 0.88:
            referrals = 0
            ref_rev = 0
        else:
            referrals = 1 + int(3 * rand()) if u < 0.98 else 4 + int(12 * rand())
            ref_rev = 0
            for _ in range(referrals):
                ref_rev += int(math.exp(normal(9.9, 0.8))) * 100   # whole EUR

        row = {
            "id": cid,
            "name": name,
            "region": region,
            "revenue": money(rev),
            "list_discounts": money(list_disc),
            "cost_of_goods": money(cogs),
            "orders": str(orders),
            "manual_orders": str(manual),
            "deliveries": str(deliveries),
            "rush_deliveries": str(rush),
            "sales_visits": str(visits),
            "staff_hours": hours(staff),
            "mailings": str(mailings),
            "signup_discount": money(signup),
            "support_hours": hours(support),
            "support_calls": str(calls),
            "overdue": money(overdue),
            "days_overdue": str(days),
            "referrals": str(referrals),
            "referral_revenue": money(ref_rev),
        }
        override = edge.get(cid)
        if override is not None:
            row.update(override)
        yield row


# --- portfolio: channel, call-centre minutes and the referral network -------
#
# generate_portfolio() takes the rows of generate() (same seed, same values)
# and adds four columns.  Everything it adds comes from a second generator,
# random.Random(f"portfolio-{seed}"), so the base columns stay exactly those of
# generate(), except referrals and referral_revenue, which are recomputed from
# the network: the number of rows whose referred_by is this id and the sum of
# their revenue.
#
# The network is built forward: when customer i is created it draws how many
# later customers it will refer (usually none, sometimes 1-3, for a few hubs
# 8-35) and where they come, at most REFERRAL_WINDOW ids later (short gaps
# are likelier).  Customer j is referred by whoever claimed its id first.  So a
# row can only be written once the REFERRAL_WINDOW rows after it exist, to know
# its referees' revenue: memory is a buffer of that many rows plus the pending
# claims, flat in the number of rows.  Depth (links up to a customer nobody
# referred) is capped at MAX_REFERRAL_DEPTH.

PORTFOLIO_COLUMNS = COLUMNS + (
    "channel", "support_minutes", "referred_by", "came_anyway")
PORTFOLIO_DEFAULT_COUNT = 800
PORTFOLIO_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "portfolio_customers.csv")
CHANNELS = ("direct", "wholesale", "online")
REFERRAL_WINDOW = 1000         # a referee is at most this many ids later
MAX_REFERRAL_DEPTH = 4         # a -> b -> c -> d -> e, counted from a
_REF_GAP_MEAN = 120.0          # mean gap (in ids) between referrer and referee
_P_HUB = 0.0065                # refers 8-35 customers
_P_REFERRER = 0.095            # refers 1-3 customers
_P_NO_MINUTES = 0.05           # call-centre time not logged


def _cid(index: int) -> str:
    return f"C-{FIRST_ID + index}"


def _index(cid: str) -> int:
    """'C-1034' -> 33; ids outside the file (C-0000) give a negative index."""
    return int(cid[2:]) - FIRST_ID


# Deliberate network edge cases.  These rows have a fixed referred_by (empty
# for the hub) and never refer anyone at random; nothing else refers them.
NETWORK_HUB = "C-1034"                       # also the "referral rescue" row
HUB_REFEREES = (
    "C-1035", "C-1038", "C-1040", "C-1047", "C-1051", "C-1055", "C-1062",
    "C-1070", "C-1074", "C-1083", "C-1095", "C-1108", "C-1117", "C-1129",
    "C-1150", "C-1172", "C-1196", "C-1240")
HUB_CHAIN = ("C-1040", "C-1101", "C-1160", "C-1215")   # each refers the next
SELF_REFERRAL = "C-1111"
TWO_CYCLE = ("C-1122", "C-1133")              # each referred by the other
UNKNOWN_REFERRER = ("C-1144", "C-0000")       # referred by an id not in the file

NETWORK_EDGE_CASES: dict[str, str] = {NETWORK_HUB: ""}
NETWORK_EDGE_CASES.update({cid: NETWORK_HUB for cid in HUB_REFEREES})
NETWORK_EDGE_CASES.update(
    {HUB_CHAIN[k + 1]: HUB_CHAIN[k] for k in range(len(HUB_CHAIN) - 1)})
NETWORK_EDGE_CASES[SELF_REFERRAL] = SELF_REFERRAL
NETWORK_EDGE_CASES[TWO_CYCLE[0]] = TWO_CYCLE[1]
NETWORK_EDGE_CASES[TWO_CYCLE[1]] = TWO_CYCLE[0]
NETWORK_EDGE_CASES[UNKNOWN_REFERRER[0]] = UNKNOWN_REFERRER[1]

# Depth of the fixed rows, for the depth cap (cycles count as "full").
_FIXED_DEPTH = {_index(NETWORK_HUB): 0}
_FIXED_DEPTH.update({_index(c): 1 for c in HUB_REFEREES})
_FIXED_DEPTH.update({_index(c): d + 1 for d, c in enumerate(HUB_CHAIN)})
_FIXED_DEPTH.update({_index(c): MAX_REFERRAL_DEPTH
                     for c in (SELF_REFERRAL,) + TWO_CYCLE})
_FIXED_DEPTH[_index(UNKNOWN_REFERRER[0])] = 1
_FIXED_REFERRER = {_index(c): r for c, r in NETWORK_EDGE_CASES.items()}
# The profitability edge cases of customers.csv keep 0 referrals (so their
# outcomes do not move); C-1066 is an ordinary row, C-1034 is the hub.
_NO_RANDOM_REFERRALS = frozenset(
    [_index(c) for c in NETWORK_EDGE_CASES]
    + [_index(c) for c in EDGE_CASES if c not in ("C-1066", NETWORK_HUB)])

assert len(HUB_REFEREES) >= 15
assert all(_index(r) < _index(c) and _index(c) - _index(r) <= REFERRAL_WINDOW
           for c, r in NETWORK_EDGE_CASES.items()
           if r and c not in TWO_CYCLE and c != SELF_REFERRAL
           and _index(r) >= 0)
assert abs(_index(TWO_CYCLE[1]) - _index(TWO_CYCLE[0])) <= REFERRAL_WINDOW


def _cents(money: str) -> int:
    """'1234.56' -> 123456 (the generator's own two-decimal format)."""
    return int(money.replace(".", ""))


def generate_portfolio(count: int = PORTFOLIO_DEFAULT_COUNT,
                       seed: int = DEFAULT_SEED) -> Iterator[dict[str, str]]:
    """Yield ``count`` rows keyed by ``PORTFOLIO_COLUMNS``: the rows of
    ``generate(count, seed)`` plus channel, support_minutes, referred_by and
    came_anyway, with referrals/referral_revenue matching the network."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(f"portfolio-{seed}")
    rand = rng.random
    normal = rng.normalvariate
    expo = rng.expovariate
    window = REFERRAL_WINDOW
    max_depth = MAX_REFERRAL_DEPTH
    gap_rate = 1.0 / _REF_GAP_MEAN
    fixed_referrer, fixed_depth = _FIXED_REFERRER, _FIXED_DEPTH
    no_random = _NO_RANDOM_REFERRALS
    ln_min, span = _LN_MIN_REV, _LN_SPAN
    money = _money

    claims: dict[int, tuple[int, int]] = {}   # referee -> (referrer, depth)
    totals: dict[int, list[int]] = {}         # buffered row -> [count, cents]
    forward: dict[int, list[int]] = {}        # referrals to not-yet-made rows
    buffer: deque[dict[str, str]] = deque()
    first_buffered = 0

    for j, row in enumerate(generate(count, seed)):
        rev = _cents(row["revenue"])
        size = (math.log(rev / 100.0) - ln_min) / span if rev >= 500_000 else 0.0

        # channel: direct dominates; small accounts buy online more often,
        # mid-sized ones through wholesale partners
        u = rand()
        p_online = 0.30 - 0.24 * size
        p_wholesale = 0.22 + 0.10 * size
        channel = ("online" if u < p_online else
                   "wholesale" if u < p_online + p_wholesale else "direct")

        # call-centre minutes: the support hours give or take ~15 %, and
        # none logged for some accounts
        noise = normal(0.0, 0.15)
        if rand() < _P_NO_MINUTES:
            minutes = 0
        else:
            minutes = int(_cents(row["support_hours"]) * 6 * (1.0 + noise) + 0.5)
            if minutes < 0:
                minutes = 0

        # who referred this customer
        claim = claims.pop(j, None)
        fixed = fixed_referrer.get(j)
        if fixed is not None:
            referred_by = fixed
            referrer = _index(fixed) if fixed else None
            depth = fixed_depth[j]
        elif claim is not None:
            referrer, depth = claim
            referred_by = _cid(referrer)
        else:
            referred_by, referrer, depth = "", None, 0
        u = rand()
        if referred_by:
            came = "yes" if u < (0.45 if channel == "online" else 0.25) else "no"
        else:
            came = ""

        # whom this customer will refer (claims on later ids)
        u = rand()
        if u < _P_HUB:
            k = 8 + int(28 * rand() ** 2)
        elif u < _P_HUB + _P_REFERRER:
            k = 1 + int(3 * rand() ** 2)
        else:
            k = 0
        if k and depth < max_depth and j not in no_random:
            last = j + window
            for _ in range(k):
                slot = j + 1 + int(expo(gap_rate))
                while slot <= last and (slot in claims or slot in fixed_referrer):
                    slot += 1
                if slot <= last:
                    claims[slot] = (j, depth + 1)

        # referral totals: this row's own, then credit its referrer
        totals[j] = forward.pop(j, None) or [0, 0]
        if referrer is not None and referrer >= 0:
            acc = totals.get(referrer)
            if acc is None:
                if referrer < j:          # already written: cannot happen
                    raise AssertionError(f"referrer {referrer} of {j} flushed")
                acc = forward.setdefault(referrer, [0, 0])
            acc[0] += 1
            acc[1] += rev

        row["channel"] = channel
        row["support_minutes"] = str(minutes)
        row["referred_by"] = referred_by
        row["came_anyway"] = came
        buffer.append(row)

        # a row is complete once every id that may name it has been made
        while first_buffered + window <= j:
            out = buffer.popleft()
            n, cents = totals.pop(first_buffered)
            out["referrals"] = str(n)
            out["referral_revenue"] = money(cents)
            first_buffered += 1
            yield out

    while buffer:
        out = buffer.popleft()
        n, cents = totals.pop(first_buffered)
        out["referrals"] = str(n)
        out["referral_revenue"] = money(cents)
        first_buffered += 1
        yield out


def write_csv(rows, stream, columns=COLUMNS) -> int:
    """Write the header and ``rows`` to ``stream``; return the number of rows.

    Pass ``columns=PORTFOLIO_COLUMNS`` for rows of ``generate_portfolio``.
    """
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([row[c] for c in columns])
        n += 1
    return n


def write_output(rows, output: str, columns=COLUMNS) -> int | None:
    """Write ``rows`` as CSV to the file ``output``, or to stdout for ``-``; return the number
    of rows, or None when stdout was closed early (e.g. piped into ``head``)."""
    if output != "-":
        with open(output, "w", encoding="utf-8", newline="") as f:
            return write_csv(rows, f, columns)
    try:
        n = write_csv(rows, sys.stdout, columns)
        sys.stdout.flush()
        return n
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate deterministic B2B-distributor customer records (CSV).")
    parser.add_argument("--portfolio", action="store_true",
                        help="add channel, support_minutes, referred_by and "
                             "came_anyway, with referrals/referral_revenue "
                             "taken from the referral network (defaults: "
                             f"{PORTFOLIO_DEFAULT_COUNT} rows, "
                             "examples/portfolio_customers.csv)")
    parser.add_argument("--count", type=int, default=None,
                        help=f"number of customers (default {DEFAULT_COUNT}, "
                             f"{PORTFOLIO_DEFAULT_COUNT} with --portfolio)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--output", default=None,
                        help="output file, '-' for stdout "
                             "(default examples/customers.csv next to this "
                             "script, examples/portfolio_customers.csv with "
                             "--portfolio)")
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = PORTFOLIO_DEFAULT_COUNT if args.portfolio else DEFAULT_COUNT
    if args.output is None:
        args.output = PORTFOLIO_OUTPUT if args.portfolio else DEFAULT_OUTPUT
    if args.count < 0:
        parser.error("--count must be >= 0")

    if args.portfolio:
        rows = generate_portfolio(args.count, args.seed)
        columns = PORTFOLIO_COLUMNS
    else:
        rows = generate(args.count, args.seed)
        columns = COLUMNS
    return 0 if write_output(rows, args.output, columns) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
