"""Histories: periods, the history block, every history function on hand-computed series,
the customer's errors, warnings in every output, and streaming."""
from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from engine import load_policy
from engine.cli import main
from engine.history import Period, read_period, round_ratio, slope
from engine.records import RecordError

D = Decimal
ROOT = Path(__file__).resolve().parents[1]


def policy_of(history: str = "", figures: str = "", warnings: str = "", period_type: str = "quarter"):
    return load_policy(f'''policy "T"
currency EUR
record customer
  id      text key
  period  {period_type}
  revenue money
  spend   money default 0
{history}
measure profit = revenue - spend
{figures}
classify class
  profitable   when profit > 0 EUR
  unprofitable otherwise
{warnings}''')


def rows(*items):
    """(id, period, revenue[, cost]) tuples as records."""
    return [{"id": i, "period": p, "revenue": str(r), **({"spend": str(c[0])} if c else {})} for i, p, r, *c in items]


def decided(policy, records):
    return [r for r in policy.run(records)]


EVERY_ZERO = "history\n  missing periods are zero\n  decide every period\n"
EVERY_SKIP = "history\n  missing periods are skipped\n  decide every period\n"


# ---- periods -----------------------------------------------------------------------------


@pytest.mark.parametrize("granularity, text, label, ordinal", [
    ("quarter", "2025Q3", "2025Q3", 2025 * 4 + 2), ("quarter", "2025-Q1", "2025Q1", 2025 * 4),
    ("quarter", " 2025 q4 ", "2025Q4", 2025 * 4 + 3), ("month", "2025-03", "2025-03", 2025 * 12 + 2),
    ("month", "2025-3", "2025-03", 2025 * 12 + 2), ("year", "2025", "2025", 2025),
])
def test_periods_are_read_in_their_granularity(granularity, text, label, ordinal):
    period = read_period(granularity, text)
    assert (str(period), period.ordinal) == (label, ordinal)


@pytest.mark.parametrize("granularity, text", [
    ("quarter", "2025Q5"), ("quarter", "2025-03"), ("month", "2025-13"), ("month", "2025Q1"), ("year", "25"),
])
def test_a_value_not_of_the_granularity_is_no_period(granularity, text):
    assert read_period(granularity, text) is None


def test_a_period_of_the_wrong_granularity_is_the_customers_error_naming_what_it_looks_like():
    policy = policy_of(EVERY_ZERO)
    results = decided(policy, rows(("A", "2025Q1", 10), ("A", "2025-04", 10), ("B", "2025Q1", 5)))
    assert [type(r).__name__ for r in results] == ["RecordError", "RecordError", "Decision"]
    assert "field 'period' has '2025-04': a month, but this policy's histories are by quarter: write a quarter " \
           "such as 2025Q3" in results[1].message
    assert results[1].row == 2 and "none of the 2 rows of customer 'A' is decided" in results[1].message
    assert results[0].row == 1 and results[0].message.startswith("not decided: row 2 of customer 'A'")


# ---- every history function on a hand-computed series --------------------------------------

SERIES = rows(("A", "2025Q1", 100), ("A", "2025Q2", 70), ("A", "2025Q3", 40), ("A", "2025Q4", 130))
FUNCTIONS = {
    # name: (formula, the value in each quarter for profit 100, 70, 40, 130)
    "previous": ("previous(profit, 2)", ["100.00", "100.00", "100.00", "70.00"]),
    "change": ("change(profit, 1)", ["0.00", "-30.00", "-30.00", "90.00"]),
    "change_percent": ("change_percent(profit, 2)", [D("0"), D("-0.3"), D("-0.6"), (D("130") - D("70")) / D("70")]),
    "sum_last": ("sum_last(profit, 3)", ["100.00", "170.00", "210.00", "240.00"]),
    "average_last": ("average_last(profit, 3)", ["100.00", "85.00", "70.00", "80.00"]),
    "min_last": ("min_last(profit, 2)", ["100.00", "70.00", "40.00", "40.00"]),
    "max_last": ("max_last(profit, 2)", ["100.00", "100.00", "70.00", "130.00"]),
    # slopes: one point 0; (70-100)/1; 100, 70, 40 fall 30 a quarter; all four: 30/5 (see below)
    "trend": ("trend(profit, 4)", ["0.00", "-30.00", "-30.00", "6.00"]),
    # a plain number to one place (money is rounded to the policy's cents as any money measure)
    "trend places": ("trend(ratio, 3, 1)", ["0.0", "-3.0", "-3.0", "3.0"]),
    "periods_negative": ("periods_negative(change, 4)", ["1", "2", "3", "3"]),
    "periods_since_positive": ("periods_since_positive(change)", ["1", "2", "3", "0"]),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_history_function_on_a_hand_computed_series(name):
    formula, expected = FUNCTIONS[name]
    extra = "measure change = change(profit, 1)\n" if "(change" in formula else ""
    extra += "measure ratio = profit / 10 EUR\n" if "ratio" in formula else ""
    policy = policy_of(EVERY_ZERO, extra + f"measure x = {formula}\n")
    got = [d.figures["x"] for d in decided(policy, SERIES)]
    assert got == [D(v) if isinstance(v, str) else v for v in expected]
    assert [str(v) for v in got] == [str(v) if not isinstance(v, str) else v for v in expected]  # the scale too


def test_the_four_point_trend_is_the_exact_least_squares_slope():
    # x = 0..3 (x̄ 1.5), y = 100, 70, 40, 130 (ȳ 85): Σ(x-x̄)(y-ȳ) = -22.5+7.5-22.5+67.5 = 30; Σ(x-x̄)² = 5
    points = tuple((Period(f"2025Q{q + 1}", q), D(v)) for q, v in enumerate((100, 70, 40, 130)))
    assert Fraction(*slope(points)) == Fraction(30, 5)
    thirds = tuple((Period(str(q), q), D(v)) for q, v in enumerate((0, 0, 1)))
    assert Fraction(*slope(thirds)) == Fraction(1, 2)
    assert slope(points[:1]) == (0, 1)


def test_a_trend_is_rounded_once_in_the_policys_mode():
    policy = policy_of(EVERY_ZERO, "measure t = trend(profit, 3)\n")
    cents = rows(("A", "2025Q1", "0.00"), ("A", "2025Q2", "0.00"), ("A", "2025Q3", "0.01"))
    assert decided(policy, cents)[-1].figures["t"] == D("0.01")  # 0.005 half-up
    exact = round_ratio(1, 3, D("0.01"), ROUND_HALF_UP)
    assert str(exact) == "0.33"


@given(st.decimals(min_value=-10 ** 6, max_value=10 ** 6, places=4, allow_nan=False, allow_infinity=False),
       st.sampled_from([ROUND_UP, ROUND_DOWN, ROUND_HALF_UP, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_CEILING,
                        ROUND_FLOOR]),
       st.sampled_from([D("0.01"), D("1"), D("0.0001")]))
def test_rounding_an_exact_fraction_agrees_with_decimal_quantize(value, mode, quantum):
    rounded = round_ratio(*value.as_integer_ratio(), quantum, mode)
    assert rounded == value.quantize(quantum, rounding=mode)
    assert str(rounded).count(".") == (quantum < 1)


@given(st.integers(-10 ** 6, 10 ** 6), st.integers(1, 10 ** 6), st.integers(1, 50),
       st.sampled_from([ROUND_UP, ROUND_DOWN, ROUND_HALF_UP, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_CEILING,
                        ROUND_FLOOR]),
       st.sampled_from([D("0.01"), D("1"), D("0.0001"), D("1E+2")]))
def test_rounding_a_ratio_is_exact_and_needs_no_common_factor_taken_out(numerator, denominator, factor, mode,
                                                                         quantum):
    # n/d is either a half-quantum tie exactly or at least 1/(2·d·10**4) away from one: 80 digits decide it
    with localcontext(Context(prec=80)):
        reference = (D(numerator) / D(denominator)).quantize(quantum, rounding=mode)
    assert round_ratio(numerator * factor, denominator * factor, quantum, mode) == reference


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(2, 12))
def test_the_trend_of_a_straight_line_is_its_slope(intercept, step, length):
    points = tuple((Period(str(t), t), D(intercept + step * t)) for t in range(length))
    assert Fraction(*slope(points)) == step


# ---- missing periods ---------------------------------------------------------------------

GAPPED = rows(("A", "2025Q1", 90, 0), ("A", "2025Q2", 90, 20), ("A", "2025Q4", 80, 30))


def test_missing_periods_as_zero_count_in_every_window():
    policy = policy_of(EVERY_ZERO, "measure t = trend(profit, 4)\nmeasure before = previous(profit, 1)\n")
    last = decided(policy, GAPPED)[-1]
    assert (last.figures["t"], last.figures["before"]) == (D("-19.00"), D("0.00"))  # 90, 70, 0, 50


def test_skipped_periods_leave_the_window_but_keep_their_spacing():
    policy = policy_of(EVERY_SKIP, "measure t = trend(profit, 3)\nmeasure before = previous(profit, 1)\n")
    last = decided(policy, GAPPED)[-1]
    # points (0, 90), (1, 70), (3, 50): x̄ 4/3, ȳ 70; Σ(x-x̄)(y-ȳ) = -80/3 - 100/3 = -60; Σ(x-x̄)² = 14/3
    assert last.figures["before"] == D("70.00")
    assert last.figures["t"] == round_ratio(*slope((
        (Period("a", 0), D(90)), (Period("b", 1), D(70)), (Period("c", 3), D(50)))), D("0.01"), ROUND_HALF_UP)
    assert last.figures["t"] == D("-12.86")  # -90/7


def test_a_missing_period_is_the_customers_error_by_default():
    policy = policy_of("history\n  decide every period\n")
    results = decided(policy, GAPPED + rows(("B", "2025Q1", 1)))
    assert [type(r).__name__ for r in results] == ["RecordError"] * 3 + ["Decision"]
    assert "1 period missing between 2025Q2 (row 2) and 2025Q4 (row 3)" in results[2].message


# ---- order, duplicates, grouping -------------------------------------------------------------


def test_a_duplicated_period_is_the_customers_error():
    results = decided(policy_of(EVERY_ZERO), rows(("A", "2025Q1", 1), ("A", "2025Q1", 2)))
    assert all(isinstance(r, RecordError) for r in results) and len(results) == 2
    assert "period 2025Q1 appears twice (rows 1 and 2)" in results[1].message


def test_sorted_input_must_have_each_customers_periods_in_order():
    results = decided(policy_of(EVERY_ZERO), rows(("A", "2025Q2", 1), ("A", "2025Q1", 2)))
    assert "period 2025Q1 (row 2) comes after 2025Q2 (row 1)" in results[1].message
    unsorted = policy_of(EVERY_ZERO.replace("decide", "input unsorted\n  decide"), "measure c = change(profit, 1)\n")
    fine = decided(unsorted, rows(("A", "2025Q2", 1), ("B", "2025Q1", 7), ("A", "2025Q1", 2)))
    assert [(d.id, str(d.period), d.figures["c"]) for d in fine] == [
        ("A", "2025Q1", D("0.00")), ("A", "2025Q2", D("-1.00")), ("B", "2025Q1", D("0.00"))]


def test_a_customer_whose_rows_come_back_is_an_error_with_sorted_input():
    results = decided(policy_of(EVERY_ZERO), rows(("A", "2025Q1", 1), ("B", "2025Q1", 1), ("A", "2025Q2", 1)))
    assert [type(r).__name__ for r in results] == ["Decision", "Decision", "RecordError"]
    assert "customer 'A' (row 3) comes after 'B'" in results[2].message and "input unsorted" in results[2].message
    assert policy_of(EVERY_ZERO).run(rows(("A", "2025Q1", 1), ("B", "2025Q1", 1), ("A", "2025Q2", 1))).summary.line() \
        == "3 records (2 customers) in = 2 decisions + 1 error out"


@pytest.mark.parametrize("ids", [["C-9", "C-10", "C-11"], ["C-10", "C-11", "C-9"], ["b", "a10", "a9"][::-1]])
def test_ids_in_text_or_natural_order_count_as_sorted(ids):
    results = decided(policy_of(EVERY_ZERO), rows(*[(i, "2025Q1", 1) for i in ids]))
    assert all(not isinstance(r, RecordError) for r in results)


def test_latest_period_gives_one_decision_per_customer_and_the_summary_counts_customers():
    policy = policy_of("history\n  missing periods are zero\n", "measure s = sum_last(profit, 8)\n")
    run = policy.run(rows(("A", "2025Q1", 1), ("A", "2025Q2", 2), ("B", "2025Q1", "x"), ("B", "2025Q2", 1)))
    results = list(run)
    assert [(type(r).__name__, r.id) for r in results] == [("Decision", "A"), ("RecordError", "B")]
    assert results[0].figures["s"] == D("3.00") and str(results[0].period) == "2025Q2"
    summary = run.summary
    assert summary.line() == "2 customers (4 records) in = 1 decision + 1 error out"
    assert summary.duplicates == 0  # a customer's rows are one per period, not duplicates


def test_every_period_keeps_records_in_equal_to_results_out():
    run = policy_of(EVERY_ZERO).run(rows(("A", "2025Q1", 1), ("A", "2025Q1", 2), ("B", "2025Q1", 3)))
    assert sum(1 for _ in run) == 3
    assert run.summary.line() == "3 records (2 customers) in = 1 decision + 2 errors out"


def test_sorted_input_streams_one_customer_at_a_time():
    """The first customer is decided before the input is read past the second customer's first row."""
    policy = policy_of(EVERY_ZERO)
    read = []

    def source():
        for number, record in enumerate(rows(("A", "2025Q1", 1), ("A", "2025Q2", 1), ("B", "2025Q1", 1)), start=1):
            read.append(number)
            yield record
        raise AssertionError("read past the end")

    results = iter(policy.run(source()))
    first = next(results)
    assert first.id == "A" and read == [1, 2, 3]


# ---- warnings and outputs ---------------------------------------------------------------------

WARNED = "warn falling when change(profit, 1) < 0 EUR\n     message \"Profit fell\"\n"


def test_a_decision_carries_every_warning_that_fired():
    policy = policy_of(EVERY_ZERO, warnings=WARNED + "warn big when profit > 50 EUR message \"Big\"\n")
    first, second = decided(policy, rows(("A", "2025Q1", 100), ("A", "2025Q2", 60)))
    assert [w.name for w in first.warnings] == ["big"]
    assert [(w.name, w.message) for w in second.warnings] == [("falling", "Profit fell"), ("big", "Big")]
    assert second.as_dict()["warnings"][0] == {"name": "falling", "message": "Profit fell", "line": 17}
    assert second.as_dict()["period"] == "2025Q2"


def test_the_explanation_shows_the_series_read_and_the_warnings():
    policy = policy_of(EVERY_ZERO, "measure t = trend(profit, 3)\n", WARNED)
    decision = decided(policy, rows(("A", "2025Q1", 100), ("A", "2025Q2", 60), ("A", "2025Q4", 30)))[-1]
    text = decision.explain().text()
    assert text.splitlines()[0].startswith("A  2025Q4  profitable")
    assert "trend(profit, 3) read profit: 2025Q2 60.00 · 2025Q3 0.00 · 2025Q4 30.00" in text
    assert "    falling          line 18   no: change(profit, 1) = 30.00 < 0 EUR is false" in text
    data = decision.explain().as_dict()
    assert data["period"] == "2025Q4" and data["warnings"][0]["fired"] is False
    (step,) = [s for s in data["figures"] if s["name"] == "t"]
    assert step["series"][0]["values"][1] == {"period": "2025Q3", "value": "0"}


@pytest.fixture
def lifecycle_files(tmp_path):
    data = tmp_path / "history.csv"
    data.write_text("id,period,revenue,spend\nA,2025Q1,100,0\nA,2025Q2,60,0\nB,2025Q1,10,20\n", encoding="utf-8")
    policy = tmp_path / "t.policy"
    policy.write_text(f'''policy "T"
currency EUR
record customer
  id      text key
  period  quarter
  revenue money
  spend   money
{EVERY_ZERO}measure profit = revenue - spend
classify class
  profitable   when profit > 0 EUR
  unprofitable otherwise
{WARNED}''', encoding="utf-8")
    return str(policy), str(data)


def test_warnings_and_periods_in_csv_json_and_table(lifecycle_files, capsys):
    policy, data = lifecycle_files
    assert main(["run", policy, data, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["period"], r["warnings"]) for r in table] == [
        ("A", "2025Q1", ""), ("A", "2025Q2", "falling"), ("B", "2025Q1", "")]
    assert main(["run", policy, data, "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["warnings"] for line in lines][1] == [{"name": "falling", "message": "Profit fell", "line": 15}]
    assert main(["run", policy, data, "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "A            2025Q2   profitable" in out and "warning falling: Profit fell" in out
    assert "3 records (2 customers) in = 3 decisions + 0 errors out" in out


def test_explain_picks_one_period(lifecycle_files, capsys):
    policy, data = lifecycle_files
    assert main(["explain", policy, data, "--id", "A", "--period", "2025Q2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A  2025Q2  profitable") and out.count("(policy ") == 1
    assert main(["explain", policy, data, "--id", "A", "--period", "2030Q1"]) == 1
    assert "no decision with id 'A' and period 2030Q1" in capsys.readouterr().err


def test_the_shipped_lifecycle_policy_decides_every_quarter_of_the_example_history():
    policy = load_policy(ROOT / "policies" / "lifecycle.policy")
    from engine.records import RecordSource
    run = policy.run(RecordSource.open(ROOT / "examples" / "customer_history.csv"))
    decisions = [r for r in run]
    assert run.summary.line() == "4,790 records (600 customers) in = 4,790 decisions + 0 errors out"
    c1013 = [d for d in decisions if d.id == "C-1013"]
    assert [d.classification for d in c1013][0] == "profitable" and c1013[-1].classification == "unprofitable"
    assert {w.name for w in c1013[-1].warnings} == {"service_rising", "keep_or_sever"}


def test_an_id_of_thousands_of_digits_is_ordered_without_becoming_an_int():
    """Found by the fuzz test: the natural order once converted digit runs with int()."""
    long_id = "9" * 5000
    results = decided(policy_of(EVERY_ZERO), rows(("1" + long_id, "2025Q1", 1), (long_id + "0", "2025Q1", 1)))
    assert [type(r).__name__ for r in results] == ["Decision", "Decision"]


def test_the_explanation_of_a_change_lists_the_period_it_subtracts():
    policy = policy_of(EVERY_ZERO, "measure c = change(profit, 2)\n")
    decision = decided(policy, SERIES)[-1]  # 130 now less 70 two quarters before
    assert decision.figures["c"] == D("60.00")
    assert "change(profit, 2) read profit: 2025Q2 70.00 · 2025Q3 40.00 · 2025Q4 130.00" in decision.explain().text()


def test_one_row_per_customer_deciding_the_latest_period_counts_customers_first():
    run = policy_of().run(rows(("A", "2025Q1", 1), ("B", "2025Q2", 1)))
    assert run.summary.line() == "2 customers (2 records) in = 2 decisions + 0 errors out"


def test_not_of_no_always_fires():
    policy = policy_of(EVERY_ZERO, warnings='warn w when not no message "x"\n')
    assert [d.code for d in policy.warnings] == ["always-fires"]
