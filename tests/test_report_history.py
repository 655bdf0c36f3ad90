"""`profit report` over histories: each customer counted once, at its latest period, and the
section "Over time" (engine/report_history.py), worked by hand on a tiny history, the same
whether every period or only the latest is decided."""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine import load_policy
from engine.report import build_report, render_html, render_text
from engine.report_history import NO_ROW, History, render_html as history_html, render_text as history_text
from golden import check_golden

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "report_history"
LIFECYCLE = ROOT / "policies" / "lifecycle.policy"
HISTORY_CSV = ROOT / "examples" / "customer_history.csv"

TINY = '''policy "Tiny history"
version "1"
currency EUR
rounding half-up to cents per line

record customer
  id         text     key
  period     quarter
  name       text     optional
  revenue    money
  goods      money
  calls      count    default 0
  referrals  count    default 0

history
  missing periods are zero
  input sorted
  decide every period

rates
  call   = 10.00 EUR per call
  bonus  = 100.00 EUR per referral

cost goods_cost = goods
cost service    = calls * call
credit word     = referrals * bonus

measure profit       = revenue - costs + credits
measure profit_trend = trend(profit, 3)

classify class
  profitable    when profit > 0 EUR
  unprofitable  otherwise

warn falling when profit_trend < -200 EUR
  message "Profit falls by more than 200 EUR a quarter"
warn losing when profit < 0 EUR
  message "Losing money"
'''

# profit = revenue - goods - 10 * calls + 100 * referrals
TINY_CSV = """id,period,name,revenue,goods,calls,referrals
A,2025Q1,Alpha AG,1000.00,600.00,0,0
A,2025Q2,Alpha AG,1000.00,600.00,10,0
A,2025Q3,Alpha AG,500.00,400.00,20,0
B,2025Q1,,200.00,100.00,5,0
B,2025Q2,,200.00,100.00,20,0
B,2025Q3,,300.00,100.00,5,1
C,2025Q1,Gamma KG,500.00,200.00,0,0
C,2025Q3,Gamma KG,500.00,200.00,40,0
"""
# By hand:             2025Q1   2025Q2   2025Q3
#   A (Alpha AG)         400      300     -100   revenue -500, goods -200, service +100
#   B                     50     -100      250
#   C (Gamma KG)         300    no row    -100   (no row in 2025Q2: zero) service +400
#   portfolio            750      200       50
# profit_trend (least squares over the last 3 periods, a missing one counting 0):
#   A: 0, -100, -250; B: 0, -150, +100; C: 0, (none), slope of 300, 0, -100 = -200.
# So `falling` (< -200) fires only for A in 2025Q3; `losing` for B in 2025Q2, A and C in 2025Q3.


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


def latest_only(source: str) -> str:
    assert "decide every period" in source
    return source.replace("decide every period", "decide latest period")


@pytest.fixture(scope="module")
def every():
    return load_policy(TINY)


@pytest.fixture(scope="module")
def latest():
    return load_policy(latest_only(TINY))


@pytest.fixture(scope="module")
def report(every):
    return build_report(every, every.run(rows_of(TINY_CSV)))


def test_latest_period_only_for_the_per_customer_parts(report):
    # three customers, not eight rows: A -100, B 250, C -100 in 2025Q3
    assert (report.records, report.decisions, report.errors) == (3, 3, 0)
    assert report.ranked == 3 and report.total_profit == Decimal("50.00")
    assert [(c.id, c.profit) for c in report.top] == [("B", Decimal("250.00")), ("A", Decimal("-100.00")),
                                                      ("C", Decimal("-100.00"))]
    assert {t.label: t.count for t in report.classes} == {"profitable": 1, "unprofitable": 2}
    assert report.loss_makers == 2 and report.losses == Decimal("-200.00")
    text = render_text(report)
    assert "8 records in: 3 customers = 3 decided + 0 failed" in text
    assert "latest period, 2025Q3" in text
    assert "latest period, <b>2025Q3</b>" in render_html(report)


def test_totals_and_counts_per_period_by_hand(report):
    history = report.history
    assert isinstance(history, History)
    assert history.periods == ("2025Q1", "2025Q2", "2025Q3") and history.customers == 3 and history.behind == 0
    assert history.labels == ("profitable", "unprofitable", NO_ROW)
    assert [(t.period, t.customers, t.bottom_line, t.counts) for t in history.totals] == [
        ("2025Q1", 3, Decimal("750.00"), (3, 0, 0)),
        ("2025Q2", 2, Decimal("200.00"), (1, 1, 1)),
        ("2025Q3", 3, Decimal("50.00"), (1, 2, 0)),
    ]
    assert history.rows == 8


def test_migration_matrices(report):
    history = report.history
    first, second = history.migrations
    assert (first.before, first.after, second.before, second.after) == ("2025Q1", "2025Q2", "2025Q2", "2025Q3")
    # rows: the class before; columns: the class after (profitable, unprofitable, no row)
    assert first.cells == ((1, 1, 1), (0, 0, 0), (0, 0, 0))  # A stays, B falls, C has no row
    assert second.cells == ((0, 1, 0), (1, 0, 0), (0, 1, 0))  # A falls, B recovers, C comes back losing
    assert second.cell(NO_ROW, "unprofitable") == 1 and second.cell("unprofitable", "profitable") == 1
    overall = history.overall
    assert (overall.before, overall.after) == ("2025Q1", "2025Q3")
    assert overall.cell("profitable", "unprofitable") == 2 and overall.cell("profitable", "profitable") == 1
    assert (overall.stayed, overall.moved, overall.rowless) == (1, 2, 0)
    assert (second.stayed, second.moved, second.rowless) == (0, 2, 1)
    assert second.summary == "0 kept their class, 2 moved, 1 had no row in one of the two"


def test_turned_unprofitable_with_the_figure_that_moved_most(report):
    history = report.history
    assert history.turned_count == 2
    a, c = history.turned
    assert (a.id, a.name, a.profitable_in, a.then, a.now, a.classification) == (
        "A", "Alpha AG", "2025Q2", Decimal("300.00"), Decimal("-100.00"), "unprofitable")
    # from 2025Q2 to 2025Q3: revenue fell by 500 (against), goods fell by 200 (for), service rose by 100 (against)
    assert (a.move.figure, a.move.sign, a.move.then, a.move.now, a.move.against) == (
        "revenue", 1, Decimal("1000.00"), Decimal("500.00"), Decimal("500.00"))
    assert a.move.words == "revenue fell by 500.00"
    # C was last positive in 2025Q1 (it has no row in 2025Q2); only its service moved against it
    assert (c.id, c.profitable_in, c.then, c.now) == ("C", "2025Q1", Decimal("300.00"), Decimal("-100.00"))
    assert c.move.words == "service rose by 400.00" and c.move.sign == -1
    assert history.lines == (("revenue", 1), ("goods_cost", -1), ("service", -1), ("word", 1))
    text = render_text(report)
    assert "revenue fell by 500.00" in text and "service rose by 400.00" in text


def test_warning_counts(report):
    falling, losing = report.history.warnings
    assert (falling.name, falling.latest, falling.ever, falling.customers) == ("falling", 1, 1, ("A",))
    assert (losing.name, losing.latest, losing.ever, losing.customers) == ("losing", 2, 3, ("A", "C"))
    assert (losing.message, losing.line) == ("Losing money", TINY.splitlines().index("warn losing when profit < 0 EUR")
                                             + 1)


def test_the_text_report_of_a_history(report):
    check_golden(GOLDEN / "tiny.txt", render_text(report), "the text report of the tiny history")


def _section(text: str) -> str:
    start = text.index("Over time:")
    return text[start:text.index("Pooled costs", start)]


def test_every_period_and_latest_period_give_the_same_section(every, latest, report):
    other = build_report(latest, latest.run(rows_of(TINY_CSV)))
    assert other.history == report.history
    assert (other.records, other.decisions, other.top, other.classes) == (
        report.records, report.decisions, report.top, report.classes)
    assert _section(render_text(other)) == _section(render_text(report))
    assert history_html(other.history, "EUR") == history_html(report.history, "EUR")


def test_the_lifecycle_example_alike_both_ways(tmp_path):
    source = LIFECYCLE.read_text(encoding="utf-8")
    path = tmp_path / "lifecycle_latest.policy"
    path.write_text(latest_only(source), encoding="utf-8")
    with HISTORY_CSV.open(encoding="utf-8", newline="") as handle:  # 80 customers: enough, and fast
        rows = [row for row in csv.DictReader(handle) if int(row["id"][2:]) <= 1080]
    every, latest = load_policy(str(LIFECYCLE)), load_policy(str(path))
    one, two = build_report(every, every.run(rows)), build_report(latest, latest.run(rows))
    assert one.history == two.history and one.history is not None
    assert history_text(one.history, "EUR") == history_text(two.history, "EUR")
    assert history_html(one.history, "EUR") == history_html(two.history, "EUR")
    history = one.history
    assert history.customers == 80 and len(history.periods) == 8 and history.latest == "2026Q4"
    assert sum(history.totals[-1].counts) == 80
    # the bottom line per period is the sum of the customers' profit in that period, from the run itself
    by_period = {}
    for decision in every.run(rows):
        by_period[str(decision.period)] = by_period.get(str(decision.period), Decimal(0)) + decision.figures["profit"]
    assert {t.period: t.bottom_line for t in history.totals} == by_period
    turned = {t.id: t for t in history.turned}
    assert "C-1013" in turned and turned["C-1013"].move is not None and turned["C-1013"].now <= 0


def test_a_failed_customer_counts_once_both_ways(every, latest):
    bad = TINY_CSV + "D,2025Q1,,100.00,50.00,0,0\nD,2025Q1,,100.00,50.00,0,0\nD,2025Q2,,100.00,50.00,0,0\n"
    one, two = build_report(every, every.run(rows_of(bad))), build_report(latest, latest.run(rows_of(bad)))
    for report in (one, two):
        assert (report.records, report.decisions, report.errors) == (4, 3, 1)
        assert report.error_samples[0].id == "D" and "appears twice" in report.error_samples[0].message
        assert "1 of 4 customers failed" in render_text(report)
    assert one.history == two.history and one.history.customers == 3


class _Page(HTMLParser):
    VOID = {"meta", "line", "circle", "path", "br", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.svgs, self.rects, self.titles = [], set(), [], 0, []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "svg":
            self.svgs.append(dict(attrs))
        if tag == "rect":
            self.rects += 1
        self._in_title = tag == "title"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()
        self._in_title = False


def test_the_page_has_the_chart_and_is_well_formed(report):
    page = render_html(report)
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert "script" not in parser.tags and 'id="history"' in page
    chart = next(svg for svg in parser.svgs if svg.get("class") == "history")
    assert chart["role"] == "img" and chart["aria-labelledby"] == "history-title history-desc"
    assert parser.rects == 3  # a bar per period
    assert "2025Q2: 200.00 EUR" in parser.titles and "2025Q3: 50.00 EUR" in parser.titles
    assert "2025Q1: 750.00 EUR; 2025Q2: 200.00 EUR; 2025Q3: 50.00 EUR" in page  # the chart's description
    for expected in ("Over time", "Class migration, 2025Q1 to 2025Q3", "Turned unprofitable", "Warnings",
                     "Alpha AG", "Losing money"):
        assert expected in page


def test_a_policy_without_history_has_no_section():
    policy = load_policy(str(ROOT / "policies" / "standard.policy"))
    report = build_report(policy, policy.evaluate_many([{"id": "X", "revenue": "100.00", "cost_of_goods": "50.00",
                                                         "orders": "1"}]))
    assert report.history is None
    assert "Over time" not in render_text(report) and 'id="history"' not in render_html(report)
