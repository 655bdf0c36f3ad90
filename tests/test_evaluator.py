"""Semantics of evaluation, checked against values worked out by hand in Decimal.

Every test builds a small policy inline (load_policy takes text containing a
newline), evaluates one record and compares figures and classifications with
expected values written out below each case. Nothing here uses float: expected
values are Decimal literals, and every figure a decision reports must be a Decimal.
"""
from __future__ import annotations

import decimal
from decimal import Decimal as D

import pytest

from engine import Decision, PolicyError, RecordError, load_policy

RECORD = """
record customer
  id             text     key
  revenue        money
  cost_of_goods  money    default 0
  orders         count    default 0
  visits         count    default 0
  hours          hours    default 0
  overdue        money    default 0
  extra          money    optional
  bonus_count    count    optional
  region         text     default "unassigned"
  vip            yes/no   default no

rates
  visit_rate      = 120.00 EUR per visit
  wage            = 45.00 EUR per hour
  order_handling  = 14.00 EUR per order
  commission_rate = 5%
"""


def make_policy(figures: str = "", rules: str = "  everyone otherwise\n", *,
                rounding: str = "half-up to cents per line", extra_classes: str = ""):
    text = (f'policy "Evaluator test"\ncurrency EUR\nrounding {rounding}\n'
            f"{RECORD}\n{figures}\n\nclassify class\n{rules}{extra_classes}")
    return load_policy(text)


def decide(policy, **fields) -> Decision:
    record = {"id": "T-1", "revenue": "0.00"}
    record.update({k: v for k, v in fields.items()})
    return policy.evaluate(record)


def assert_all_decimal(decision: Decision) -> None:
    for name, value in decision.figures.items():
        assert type(value) is D, f"figure {name} is {type(value).__name__}, not Decimal"
        assert value.is_finite(), name
    for value in decision.slots:
        assert not isinstance(value, float), "a float leaked into the evaluation"


# ---- arithmetic -------------------------------------------------------------------------------

ARITHMETIC = [
    # id, figure definitions, record fields, expected figures
    pytest.param(
        "cost commission = commission_rate of revenue",
        {"revenue": "1234.50"},
        # 5% of 1234.50 = 61.725 -> 61.73 half-up per line
        {"commission": D("61.73")},
        id="rate-percent-of-money"),
    pytest.param(
        "cost share = 12.5% of revenue",
        {"revenue": "80.08"},
        # 0.125 * 80.08 = 10.01
        {"share": D("10.01")},
        id="literal-percent-of"),
    pytest.param(
        "cost visiting = visits * visit_rate",
        {"visits": "3"},
        # 3 visits * 120.00 EUR per visit
        {"visiting": D("360.00")},
        id="count-times-eur-per-visit"),
    pytest.param(
        "cost staff = hours * wage",
        {"hours": "2.5"},
        # 2.5 h * 45.00 EUR per hour = 112.500
        {"staff": D("112.50")},
        id="hours-times-eur-per-hour"),
    pytest.param(
        "cost acquisition = visits * visit_rate + hours * wage\n                 + orders * order_handling",
        {"visits": "2", "hours": "0.5", "orders": "7"},
        # 240.00 + 22.50 + 98.00
        {"acquisition": D("360.50")},
        id="sum-over-continued-line"),
    pytest.param(
        "measure gross = revenue - cost_of_goods",
        {"revenue": "100.00", "cost_of_goods": "130.25"},
        {"gross": D("-30.25")},
        id="subtraction-negative"),
    pytest.param(
        "measure third = revenue / 3",
        {"revenue": "100.00"},
        # money / plain number stays money: 33.333... -> 33.33
        {"third": D("33.33")},
        id="division-money-by-number-rounded"),
    pytest.param(
        "measure cogs_ratio = cost_of_goods / revenue",
        {"revenue": "400.00", "cost_of_goods": "300.00"},
        # money / money is a plain number, not rounded
        {"cogs_ratio": D("0.75")},
        id="division-money-by-money"),
    pytest.param(
        "measure per_order = revenue / orders",
        {"revenue": "100.00", "orders": "3"},
        # an average per order is money, so the measure is rounded to the cent
        {"per_order": D("33.33")},
        id="division-average-is-money"),
    pytest.param(
        "measure ratio = revenue / cost_of_goods",
        {"revenue": "100.00", "cost_of_goods": "300.00"},
        # money / money is a plain number: not rounded, 28 significant digits
        {"ratio": D("0.3333333333333333333333333333")},
        id="division-exact-28-digits"),
    pytest.param(
        "cost bad_debt = overdue when orders > 90 else 0 EUR",
        {"overdue": "500.00", "orders": "91"},
        {"bad_debt": D("500.00")},
        id="conditional-then"),
    pytest.param(
        "cost bad_debt = overdue when orders > 90 else 0 EUR",
        {"overdue": "500.00", "orders": "90"},
        {"bad_debt": D("0.00")},
        id="conditional-else"),
    pytest.param(
        "measure capped = min(revenue, 100 EUR)\nmeasure floored = max(revenue, 100 EUR, 5 EUR)",
        {"revenue": "42.10"},
        {"capped": D("42.10"), "floored": D("100.00")},
        id="min-max"),
    pytest.param(
        "measure gap = abs(100 EUR - revenue)",
        {"revenue": "142.10"},
        {"gap": D("42.10")},
        id="abs"),
    pytest.param(
        "measure ratio2 = round(cost_of_goods / revenue, 2)",
        {"revenue": "3.00", "cost_of_goods": "2.00"},
        # 0.6666... -> 0.67
        {"ratio2": D("0.67")},
        id="round-number-2-places"),
    pytest.param(
        "measure ratio0 = round(cost_of_goods / revenue)",
        {"revenue": "3.00", "cost_of_goods": "2.00"},
        # a plain number without places rounds to a whole number
        {"ratio0": D("1")},
        id="round-number-whole"),
    pytest.param(
        "measure neg = -revenue + 10 EUR",
        {"revenue": "2.50"},
        {"neg": D("7.50")},
        id="unary-minus"),
]


@pytest.mark.parametrize("figures, fields, expected", ARITHMETIC)
def test_arithmetic(figures, fields, expected):
    decision = decide(make_policy(figures), **fields)
    got = decision.figures
    for name, value in expected.items():
        assert got[name] == value, name
        assert type(got[name]) is D
    assert_all_decimal(decision)


def test_division_keeps_28_significant_digits_exactly():
    decision = decide(make_policy("measure ratio = revenue / cost_of_goods"), revenue="100.00", cost_of_goods="3")
    with decimal.localcontext(decimal.Context(prec=28)):
        expected = D("100.00") / D(3)
    assert str(decision.figures["ratio"]) == str(expected)


def test_percent_of_rounds_half_up_per_line_to_exactly_two_places():
    decision = decide(make_policy("cost commission = commission_rate of revenue"), revenue="1234.50")
    assert str(decision.figures["commission"]) == "61.73"


# ---- round() ------------------------------------------------------------------------------------


def test_round_money_name_rounds_to_policy_unit_cents():
    # `at end` leaves costs unrounded, so only round() rounds here: 10.005 -> 10.01 (half-up, cents)
    policy = make_policy("cost r = round(revenue)", rounding="half-up to cents at end")
    assert decide(policy, revenue="10.005").figures["r"] == D("10.01")


def test_round_money_name_rounds_to_policy_unit_units():
    policy = make_policy("cost r = round(revenue)", rounding="half-even to units at end")
    assert decide(policy, revenue="10.50").figures["r"] == D("10")
    assert decide(policy, revenue="11.50").figures["r"] == D("12")


def test_round_money_with_places():
    policy = make_policy("cost r = round(revenue, 1)", rounding="half-up to cents at end")
    assert decide(policy, revenue="10.25").figures["r"] == D("10.3")


def test_round_money_expression_rounds_to_policy_unit():
    policy = make_policy("cost r = round(revenue / 3)", rounding="half-up to cents at end")
    # 1000.00 / 3 = 333.333... -> 333.33 (cents); the engine gives 333
    assert decide(policy, revenue="1000.00").figures["r"] == D("333.33")


# ---- totals -------------------------------------------------------------------------------------


def test_costs_and_credits_totals():
    policy = make_policy(
        "cost commission = commission_rate of revenue\n"
        "cost visiting = visits * visit_rate\n"
        "credit referral = 2 * 150.00 EUR\n"
        "credit goodwill = 1% of revenue\n"
        "measure profit = revenue - cost_of_goods - costs + credits\n")
    decision = decide(policy, revenue="1000.00", cost_of_goods="600.00", visits="2")
    f = decision.figures
    # commission 50.00, visiting 240.00 -> costs 290.00
    # referral 300.00, goodwill 10.00 -> credits 310.00
    assert f["costs"] == D("290.00")
    assert f["credits"] == D("310.00")
    assert f["profit"] == D("420.00")  # 1000 - 600 - 290 + 310
    assert_all_decimal(decision)


def test_totals_are_zero_when_nothing_is_defined():
    decision = decide(make_policy("measure profit = revenue - costs + credits"), revenue="12.34")
    assert decision.figures["costs"] == 0
    assert decision.figures["credits"] == 0
    assert decision.figures["profit"] == D("12.34")


def test_figures_report_costs_credits_measures_thresholds_but_not_rates():
    policy = make_policy("cost c = 1 EUR\ncredit k = 2 EUR\nmeasure m = revenue\nthreshold t = 1% of revenue")
    names = set(decide(policy, revenue="1.00").figures)
    assert {"c", "k", "m", "t", "costs", "credits"} <= names
    assert not names & {"visit_rate", "wage", "commission_rate", "order_handling"}
    assert not names & {"revenue", "orders", "id"}


# ---- rounding modes -----------------------------------------------------------------------------

TWO_HALF_CENT_COSTS = ("cost a = 0.5% of revenue\ncost b = 0.5% of revenue\n"
                       "measure profit = revenue - costs\nthreshold limit = 0.25% of revenue\n")


@pytest.mark.parametrize("rounding, expected", [
    # revenue 1.00: each cost line is 0.005 exactly; the threshold is 0.0025
    pytest.param("half-up to cents per line",
                 {"a": "0.01", "b": "0.01", "costs": "0.02", "profit": "0.98", "limit": "0.00"},
                 id="half-up-cents-per-line"),
    pytest.param("half-even to cents per line",
                 {"a": "0.00", "b": "0.00", "costs": "0.00", "profit": "1.00", "limit": "0.00"},
                 id="half-even-cents-per-line"),
    pytest.param("half-even to cents at end",
                 # lines stay exact; only the total, measures and thresholds are rounded
                 {"a": "0.005", "b": "0.005", "costs": "0.01", "profit": "0.99", "limit": "0.00"},
                 id="half-even-cents-at-end"),
    pytest.param("half-up to cents at end",
                 {"a": "0.005", "b": "0.005", "costs": "0.01", "profit": "0.99", "limit": "0.00"},
                 id="half-up-cents-at-end"),
    pytest.param("half-even to units at end",
                 {"a": "0.005", "b": "0.005", "costs": "0", "profit": "1", "limit": "0"},
                 id="half-even-units-at-end"),
    pytest.param("half-up to units per line",
                 {"a": "0", "b": "0", "costs": "0", "profit": "1", "limit": "0"},
                 id="half-up-units-per-line"),
])
def test_rounding_modes(rounding, expected):
    decision = decide(make_policy(TWO_HALF_CENT_COSTS, rounding=rounding), revenue="1.00")
    for name, value in expected.items():
        assert decision.figures[name] == D(value), name
    assert_all_decimal(decision)


def test_per_line_and_at_end_differ_on_the_same_record():
    per_line = decide(make_policy(TWO_HALF_CENT_COSTS, rounding="half-up to cents per line"), revenue="1.00")
    at_end = decide(make_policy(TWO_HALF_CENT_COSTS, rounding="half-up to cents at end"), revenue="1.00")
    assert per_line.figures["costs"] == D("0.02")
    assert at_end.figures["costs"] == D("0.01")
    # at end, the cost lines themselves keep every digit
    assert str(at_end.figures["a"]) == "0.00500"
    # per line, rounded figures carry exactly two places
    assert str(per_line.figures["a"]) == "0.01"
    assert str(per_line.figures["costs"]) == "0.02"


def test_half_even_vs_half_up_on_a_measure():
    figures = "measure m = 0.5% of revenue"
    # 0.5% of 5.00 = 0.025: half-up -> 0.03, half-even -> 0.02; 0.5% of 7.00 = 0.035 -> 0.04 either way
    assert decide(make_policy(figures, rounding="half-up to cents at end"), revenue="5.00").figures["m"] == D("0.03")
    assert decide(make_policy(figures, rounding="half-even to cents at end"), revenue="5.00").figures["m"] == D("0.02")
    assert decide(make_policy(figures, rounding="half-even to cents at end"), revenue="7.00").figures["m"] == D("0.04")


# ---- conditions and classification ---------------------------------------------------------------


@pytest.mark.parametrize("revenue, expected", [
    ("9.99", "outside"), ("10.00", "inside"), ("15.00", "inside"), ("20.00", "inside"), ("20.01", "outside"),
])
def test_between_includes_both_bounds(revenue, expected):
    policy = make_policy(rules="  inside when revenue is between 10 EUR and 20 EUR\n  outside otherwise\n")
    assert decide(policy, revenue=revenue).classification == expected


@pytest.mark.parametrize("revenue, expected", [("9.99", "out"), ("10.00", "in"), ("20.00", "in"), ("20.01", "out")])
def test_not_between(revenue, expected):
    policy = make_policy(rules="  out when revenue is not between 10 EUR and 20 EUR\n  in otherwise\n")
    assert decide(policy, revenue=revenue).classification == expected


def test_between_with_negative_figure_bound():
    policy = make_policy("measure profit = revenue - cost_of_goods\nthreshold band = 2% of revenue",
                         rules="  even when profit is between -band and band\n  other otherwise\n")
    # band = 2.00; profit -2.00 and +2.00 are on the bounds
    assert decide(policy, revenue="100.00", cost_of_goods="102.00").classification == "even"
    assert decide(policy, revenue="100.00", cost_of_goods="98.00").classification == "even"
    assert decide(policy, revenue="100.00", cost_of_goods="102.01").classification == "other"


@pytest.mark.parametrize("fields, expected", [
    ({}, "absent"),
    ({"extra": ""}, "absent"),
    ({"extra": "   "}, "absent"),
    ({"extra": None}, "absent"),
    ({"extra": "0.00"}, "present"),
    ({"extra": "5.00"}, "present"),
])
def test_is_missing_and_is_not_missing(fields, expected):
    missing = make_policy(rules="  absent when extra is missing\n  present otherwise\n")
    present = make_policy(rules="  present when extra is not missing\n  absent otherwise\n")
    assert decide(missing, **fields).classification == expected
    assert decide(present, **fields).classification == expected


def test_optional_field_guarded_by_conditional_is_not_evaluated():
    policy = make_policy("measure e = extra when extra is not missing else 0 EUR")
    assert decide(policy).figures["e"] == D("0.00")
    assert decide(policy, extra="3.333").figures["e"] == D("3.33")


def test_and_short_circuits_division_by_zero_on_the_right():
    policy = make_policy(rules="  busy when orders > 0 and revenue / orders > 10\n  quiet otherwise\n")
    assert decide(policy, revenue="100.00", orders="0").classification == "quiet"
    assert decide(policy, revenue="100.00", orders="5").classification == "busy"  # 20 per order
    assert decide(policy, revenue="100.00", orders="20").classification == "quiet"  # 5 per order


def test_or_short_circuits_division_by_zero_on_the_right():
    policy = make_policy(rules="  flagged when orders = 0 or revenue / orders < 10\n  fine otherwise\n")
    assert decide(policy, revenue="100.00", orders="0").classification == "flagged"
    assert decide(policy, revenue="100.00", orders="20").classification == "flagged"
    assert decide(policy, revenue="100.00", orders="2").classification == "fine"


def test_and_short_circuits_optional_field_on_the_right():
    policy = make_policy(rules="  big when extra is not missing and extra > 100 EUR\n  small otherwise\n")
    assert decide(policy).classification == "small"
    assert decide(policy, extra="100.01").classification == "big"


def test_conditional_does_not_evaluate_the_branch_not_taken():
    policy = make_policy("measure per_order = revenue / orders when orders > 0 else 0")
    assert decide(policy, revenue="50.00", orders="0").figures["per_order"] == 0
    assert decide(policy, revenue="50.00", orders="4").figures["per_order"] == D("12.5")


def test_not_and_text_and_yes_no_conditions():
    policy = make_policy(rules='  north_vip when region = "north" and vip\n'
                               '  elsewhere when not (region = "north")\n'
                               "  north otherwise\n")
    assert decide(policy, region="north", vip="yes").classification == "north_vip"
    assert decide(policy, region="north", vip="no").classification == "north"
    assert decide(policy).classification == "elsewhere"  # default region "unassigned"


def test_first_matching_rule_wins():
    policy = make_policy(rules="  first when revenue > 10 EUR\n"
                               "  second when revenue > 5 EUR\n"
                               "  third when revenue > 0 EUR\n"
                               "  rest otherwise\n")
    cases = {"100.00": ("first", 1), "10.00": ("second", 2), "5.00": ("third", 3), "0.00": ("rest", 4)}
    for revenue, (label, number) in cases.items():
        decision = decide(policy, revenue=revenue)
        assert decision.classification == label
        assert decision.rule.rule == number
        assert decision.rule.label == label


def test_overlapping_rules_order_decides():
    # both rules hold: the earlier one must win, whatever the later one says
    a_first = make_policy(rules="  a when revenue > 0 EUR\n  b when revenue > 0 EUR\n  c otherwise\n")
    assert decide(a_first, revenue="1.00").classification == "a"


def test_second_classification_references_the_first():
    policy = make_policy(
        "measure profit = revenue - cost_of_goods",
        rules="  profitable when profit > 0 EUR\n  unprofitable otherwise\n",
        extra_classes=("\nclassify tier\n"
                       '  gold when class = "profitable" and profit >= 1,000 EUR\n'
                       '  silver when class = "profitable"\n'
                       "  bronze otherwise\n"))
    cases = {"5000.00": ("profitable", "gold"), "500.00": ("profitable", "silver"), "-5.00": ("unprofitable", "bronze")}
    for revenue, (cls, tier) in cases.items():
        decision = decide(policy, revenue=revenue)
        assert decision.classes == {"class": cls, "tier": tier}
        assert decision.classification == cls  # the first classification
        assert [o.classification for o in decision.outcomes] == ["class", "tier"]


def test_decision_action_and_rule_line():
    policy = make_policy(rules='  keep when revenue > 0 EUR\n        action "Keep and grow"\n'
                               '        reason "It pays"\n  drop otherwise\n')
    decision = decide(policy, revenue="1.00")
    assert decision.action == "Keep and grow"
    assert decision.rule.reason == "It pays"
    text = policy.checked.source.splitlines()
    assert text[decision.rule.line - 1].strip().startswith("keep when")
    assert decide(policy).action is None


# ---- per-record failures ------------------------------------------------------------------------


def _line_of(policy, needle: str) -> int:
    for number, line in enumerate(policy.checked.source.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_division_by_zero_is_a_record_error_naming_figure_and_line():
    policy = make_policy("measure per_order = revenue / orders")
    with pytest.raises(RecordError) as caught:
        decide(policy, revenue="100.00", orders="0")
    error = caught.value
    line = _line_of(policy, "measure per_order")
    assert error.line == line
    assert "per_order" in str(error)
    assert f"line {line}" in str(error)
    assert "division by zero" in str(error)
    assert error.id == "T-1"


def test_division_by_zero_in_a_rule_names_the_rule():
    policy = make_policy(rules="  busy when revenue / orders > 10\n  quiet otherwise\n")
    with pytest.raises(RecordError) as caught:
        decide(policy, revenue="100.00", orders="0")
    assert caught.value.line == _line_of(policy, "busy when")
    assert "busy" in str(caught.value)


def test_zero_divided_by_zero_is_reported_as_division_by_zero():
    policy = make_policy("measure per_order = revenue / orders")
    with pytest.raises(RecordError) as caught:
        decide(policy, revenue="0.00", orders="0")
    assert "division by zero" in str(caught.value)


def test_zero_divided_by_zero_is_a_record_error_with_the_line():
    policy = make_policy("measure per_order = revenue / orders")
    with pytest.raises(RecordError) as caught:
        decide(policy, revenue="0.00", orders="0")
    assert caught.value.line == _line_of(policy, "measure per_order")
    assert "per_order" in str(caught.value)


def test_empty_optional_field_in_arithmetic_is_a_record_error_naming_the_field():
    policy = make_policy("measure total = revenue + extra")
    with pytest.raises(RecordError) as caught:
        decide(policy, revenue="1.00")
    error = caught.value
    assert "extra" in str(error)
    assert error.line == _line_of(policy, "measure total")
    assert "total" in str(error)
    # the same policy is fine when the field is given
    assert decide(policy, revenue="1.00", extra="2.00").figures["total"] == D("3.00")


def test_empty_optional_field_in_comparison_is_a_record_error():
    policy = make_policy(rules="  many when bonus_count > 3\n  few otherwise\n")
    with pytest.raises(RecordError) as caught:
        decide(policy)
    assert "bonus_count" in str(caught.value)


def test_record_errors_do_not_stop_a_batch():
    policy = make_policy("measure per_order = revenue / orders")
    records = [{"id": "A", "revenue": "10.00", "orders": "2"},
               {"id": "B", "revenue": "10.00", "orders": "0"},
               {"id": "C", "revenue": "9.00", "orders": "3"}]
    results = list(policy.evaluate_many(records))
    assert [type(r).__name__ for r in results] == ["Decision", "RecordError", "Decision"]
    assert results[1].row == 2 and results[1].id == "B"
    assert results[0].figures["per_order"] == D("5") and results[2].figures["per_order"] == D("3")


def test_invalid_policy_raises_policy_error():
    with pytest.raises(PolicyError):
        make_policy("measure bad = revenue * revenue")


# ---- no float anywhere ----------------------------------------------------------------------------


def test_no_float_even_from_float_input():
    policy = make_policy("cost commission = commission_rate of revenue\nmeasure ratio = cost_of_goods / revenue")
    decision = policy.evaluate({"id": "F", "revenue": 0.1, "cost_of_goods": 0.3, "orders": 3})
    assert_all_decimal(decision)
    # 0.1 is taken as the decimal 0.1, not the binary float 0.1000000000000000055...
    assert decision.figures["ratio"] == D("3")
    assert decision.figures["commission"] == D("0.01")  # 0.005 half-up


def test_standard_policy_figures_are_all_decimal():
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    policy = load_policy(root / "policies" / "standard.policy")
    with open(root / "examples" / "customers.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[:100]
    for decision in policy.evaluate_many(rows):
        assert isinstance(decision, Decision)
        assert_all_decimal(decision)
