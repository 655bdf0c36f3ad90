"""Explanations: golden files for edge-case customers, plus checks that hold for any layout.

Golden files
------------
tests/golden/explain/<id>.txt   str(decision.explain())
tests/golden/explain/<id>.json  decision.explain().as_dict(), json.dumps(indent=2, sort_keys=True)

for edge-case customers of examples/customers.csv under policies/standard.policy
(see examples/README.md). The text layout may still be tweaked; after a deliberate
change to the explanation, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_explain.py
    git diff tests/golden/explain/

The non-golden tests below check what must stay true whatever the layout: every rule
tried up to the matching one is listed, a failed numeric comparison says how far it was
short, the figures shown are exactly the decision's figures, and the indirect-benefits
line says whether credits were counted.
"""
from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Decision, Explanation, load_policy
from engine.money import plain
from golden import check_golden

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden" / "explain"

GOLDEN_IDS = ["C-1007", "C-1021", "C-1034", "C-1058"]
EDGE_IDS = ["C-1007", "C-1013", "C-1021", "C-1034", "C-1042", "C-1058", "C-1066", "C-1077", "C-1089"]


def _load(name: str):
    # a fixed, relative filename so the golden files do not depend on where the checkout lives
    return load_policy(ROOT / "policies" / name, filename=f"policies/{name}")


@pytest.fixture(scope="module")
def standard():
    return _load("standard.policy")


@pytest.fixture(scope="module")
def rows():
    with open(ROOT / "examples" / "customers.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def decisions(standard, rows):
    results = list(standard.evaluate_many(rows))
    assert all(isinstance(d, Decision) for d in results)
    return {d.id: d for d in results}


@pytest.mark.parametrize("customer", GOLDEN_IDS)
def test_golden_text(decisions, customer):
    check_golden(GOLDEN / f"{customer}.txt", str(decisions[customer].explain()) + "\n", "explanation")


@pytest.mark.parametrize("customer", GOLDEN_IDS)
def test_golden_json(decisions, customer):
    data = decisions[customer].explain().as_dict()
    check_golden(GOLDEN / f"{customer}.json", json.dumps(data, indent=2, sort_keys=True) + "\n", "explanation")


def test_golden_files_match_readme_outcomes():
    """The committed golden files themselves say what examples/README.md says."""
    expected = {"C-1007": ("unprofitable", "-2097.80"), "C-1021": ("liability", "6425.90"),
                "C-1034": ("profitable", "38102.00"), "C-1058": ("break-even", "0.00")}
    for customer, (label, profit) in expected.items():
        data = json.loads((GOLDEN / f"{customer}.json").read_text(encoding="utf-8"))
        assert data["id"] == customer
        assert data["outcomes"][0]["label"] == label
        assert {f["name"]: f["value"] for f in data["figures"]}["profit"] == profit
        text = (GOLDEN / f"{customer}.txt").read_text(encoding="utf-8")
        assert customer in text.splitlines()[0] and label in text.splitlines()[0]


# ---- what holds whatever the layout --------------------------------------------------------------


def test_explain_returns_an_explanation(decisions):
    explanation = decisions["C-1021"].explain()
    assert isinstance(explanation, Explanation)
    assert str(explanation) == explanation.text()
    json.dumps(explanation.as_dict())  # only JSON types


def test_edge_case_outcomes(decisions):
    assert decisions["C-1007"].classification == "unprofitable"
    assert decisions["C-1007"].figures["profit"] == Decimal("-2097.80")
    assert decisions["C-1013"].figures["profit"] == Decimal("-8810.96")
    assert decisions["C-1021"].classification == "liability"
    assert decisions["C-1021"].figures["profit"] == Decimal("6425.90")
    assert decisions["C-1034"].figures["word_of_mouth"] == Decimal("44100.00")
    assert decisions["C-1034"].figures["profit"] == Decimal("38102.00")
    assert decisions["C-1034"].classification == "profitable"
    assert decisions["C-1042"].figures["profit"] == Decimal("-20898.50")
    assert decisions["C-1058"].figures["profit"] == Decimal("0.00")
    assert decisions["C-1058"].classification == "break-even"
    assert decisions["C-1077"].figures["profit"] == Decimal("316142.00")
    assert decisions["C-1077"].classes == {"class": "profitable", "service_tier": "gold"}
    assert decisions["C-1089"].figures["profit"] == decisions["C-1089"].figures["break_even"] == Decimal("1700.00")
    assert decisions["C-1089"].classification == "break-even"


def test_class_counts_match_readme(decisions):
    from collections import Counter

    counts = Counter(d.classification for d in decisions.values())
    assert counts == {"profitable": 371, "break-even": 58, "unprofitable": 159, "liability": 12}


def test_every_rule_tried_up_to_the_match_appears(decisions):
    for customer in EDGE_IDS:
        decision = decisions[customer]
        explanation = decision.explain()
        data = explanation.as_dict()
        text = str(explanation)
        for outcome, classification in zip(decision.outcomes, decision.plan.policy.classifications):
            name, rules = classification.name, classification.rules
            tried = [r for r in data["rules"] if r["classification"] == name]
            assert [r["rule"] for r in tried] == list(range(1, outcome.rule + 1)), (customer, name)
            assert [r["label"] for r in tried] == [rule.label for rule in rules[: outcome.rule]]
            assert [r["held"] for r in tried] == [False] * (outcome.rule - 1) + [True]
            for r in tried:
                assert re.search(rf"rule {r['rule']}\b.*\b{re.escape(r['label'])}\b", text), (customer, r)
            # rules after the match are not listed as tried
            for later in rules[outcome.rule:]:
                assert later.label not in {r["label"] for r in tried}


def test_liability_wins_although_profitable_also_holds(decisions):
    data = decisions["C-1021"].explain().as_dict()
    class_rules = [r for r in data["rules"] if r["classification"] == "class"]
    assert [(r["label"], r["held"]) for r in class_rules] == [("liability", True)]
    assert data["outcomes"][0]["reason"]  # the liability rule gives a reason
    assert "Long-overdue" in str(decisions["C-1021"].explain())


def test_failed_numeric_comparison_has_a_shortfall(decisions):
    explanation = decisions["C-1007"].explain()
    rules = {(r.classification, r.label): r for r in explanation.tests}
    profitable = rules[("class", "profitable")]
    assert not profitable.held
    assert profitable.shortfall == "2,097.80 EUR"  # profit -2,097.80 > break_even 0.00
    between = rules[("class", "break-even")]
    assert not between.held and between.shortfall and "2,097.80" in between.shortfall
    silver = rules[("service_tier", "silver")]
    assert silver.shortfall == "2,097.80 EUR"  # profit > 0 EUR
    text = str(explanation)
    assert "short by 2,097.80" in text
    # held rules have no shortfall
    assert all(t.shortfall is None for t in explanation.tests if t.held)


def test_shortfall_for_a_near_miss(decisions):
    # C-1058: profit 0.00, break_even > 0, so `profit > break_even` is short by break_even
    decision = decisions["C-1058"]
    explanation = decision.explain()
    profitable = next(t for t in explanation.tests if t.label == "profitable")
    assert not profitable.held
    assert profitable.shortfall == f"{decision.figures['break_even']:,.2f} EUR"
    assert f"short by {profitable.shortfall}" in str(explanation)


def test_figures_in_the_explanation_equal_the_decision_figures_exactly(decisions):
    for customer in EDGE_IDS:
        decision = decisions[customer]
        figures = decision.figures
        explanation = decision.explain()
        shown = {s.name: s.value for s in explanation.steps if s.name in figures}
        assert set(shown) == set(figures)
        for name, value in figures.items():
            assert type(shown[name]) is Decimal
            assert shown[name] == value and str(shown[name]) == str(value), (customer, name)
        as_json = {f["name"]: f["value"] for f in explanation.as_dict()["figures"]}
        for name, value in figures.items():
            assert as_json[name] == plain(value), (customer, name)
            assert Decimal(as_json[name]) == value


def test_record_fields_in_the_explanation_are_the_record_values(decisions, rows):
    row = next(r for r in rows if r["id"] == "C-1034")
    fields = {s.name: s for s in decisions["C-1034"].explain().steps if s.kind == "field"}
    assert fields["revenue"].value == Decimal(row["revenue"])
    assert fields["referrals"].value == Decimal(row["referrals"])
    assert fields["name"].value == row["name"]


def test_unrounded_value_is_shown_only_when_rounding_changed_it(standard):
    record = {"id": "X", "revenue": "183400.50", "cost_of_goods": "0", "orders": "0"}
    explanation = standard.evaluate(record).explain()
    commission = next(s for s in explanation.steps if s.name == "commission")
    assert commission.value == Decimal("9170.03")
    assert commission.unrounded == Decimal("9170.025")
    assert "9170.025" in str(explanation)
    assert Decimal(next(f for f in explanation.as_dict()["figures"] if f["name"] == "commission")["unrounded"]) \
        == Decimal("9170.025")
    gross = next(s for s in explanation.steps if s.name == "gross_margin")
    assert gross.unrounded is None


def test_figure_lines_point_at_the_policy(decisions, standard):
    source = standard.checked.source.splitlines()
    for step in decisions["C-1034"].explain().steps:
        if step.kind in ("cost", "credit", "measure", "threshold"):
            assert re.match(rf"\s*{step.kind}\s+{step.name}\b", source[step.line - 1]), step.name


def test_indirect_benefits_counted_under_standard(decisions):
    explanation = decisions["C-1034"].explain()
    assert explanation.as_dict()["indirect_benefits"].startswith("counted")
    assert "word_of_mouth" in explanation.as_dict()["indirect_benefits"]
    line = next(l for l in str(explanation).splitlines() if "indirect benefits" in l)
    assert "counted" in line and "not counted" not in line


def test_indirect_benefits_not_counted_without_credits(rows):
    strict = _load("strict.policy")
    row = next(r for r in rows if r["id"] == "C-1034")
    decision = strict.evaluate(row)
    explanation = decision.explain()
    assert explanation.as_dict()["indirect_benefits"].startswith("not counted")
    line = next(l for l in str(explanation).splitlines() if "indirect benefits" in l)
    assert "not counted" in line
    assert decision.figures["credits"] == 0
    assert decision.classification == "unprofitable"  # README: unprofitable under a strict view


def test_indirect_benefits_not_counted_inline_policy():
    policy = load_policy('policy "No credit"\ncurrency EUR\nrecord c\n  id text key\n  revenue money\n'
                         "cost fee = 1% of revenue\nmeasure profit = revenue - costs + credits\n"
                         "classify class\n  plus when profit > 0 EUR\n  minus otherwise\n")
    explanation = policy.evaluate({"id": "N", "revenue": "100.00"}).explain()
    assert "not counted" in explanation.as_dict()["indirect_benefits"]
    assert "not counted" in str(explanation)


def test_explanation_json_carries_outcomes_and_policy(decisions):
    data = decisions["C-1034"].explain().as_dict()
    assert data["id"] == "C-1034"
    assert data["policy"] == "Standard customer profitability"
    assert data["file"] == "policies/standard.policy"
    assert data["currency"] == "EUR"
    assert data["rounding"] == "half-up to cents per line"
    assert [(o["classification"], o["label"]) for o in data["outcomes"]] == [
        ("class", "profitable"), ("service_tier", "gold")]
    assert data["outcomes"][0]["action"] == "Keep and grow"


UNITS_POLICY = """policy "Units"
currency EUR

record customer
  id     text key
  hours  hours
  a      percent default 90%
  b      percent default 30%

measure ratio = a / b

classify class
  big when hours * 38 EUR per hour > 100 EUR
  small otherwise
"""


def test_a_comparison_is_explained_in_the_unit_the_checker_gave_it():
    """hours * 38 EUR per hour is money: 76.00, short by 24.00 EUR (once shown as `76 h`)."""
    explanation = load_policy(UNITS_POLICY).evaluate({"id": "H-1", "hours": "2"}).explain()
    big = explanation.tests[0]
    assert big.test == "hours * 38 EUR per hour = 76.00 > 100 EUR is false"
    assert big.shortfall == "24.00 EUR"
    assert " h" not in big.test.replace("hours", "").replace("hour", "")


def test_a_percentage_over_a_percentage_is_a_plain_number():
    """docs/language.md: a unit over the same unit is a plain number; 90% / 30% is 3, not 300%."""
    policy = load_policy(UNITS_POLICY)
    assert policy.checked.figure("ratio").unit.describe() == "a plain number"
    step = next(s for s in policy.evaluate({"id": "H-1", "hours": "2"}).explain().steps if s.name == "ratio")
    assert "300%" not in str(policy.evaluate({"id": "H-1", "hours": "2"}).explain())
    assert step.value == 3 and step.unit.kind == "number"
