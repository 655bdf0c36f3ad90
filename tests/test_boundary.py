"""The library boundary: what the CLI shows, the library gives; each regression named in the
library-boundary issue, tested through the public API."""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Decision, RecordError, load_policy
from engine import functions
from engine.ast import walk
from engine.cli import main
from engine.records import RecordSource
from engine.report import build_report, render_text
from engine.run import Run

ROOT = Path(__file__).resolve().parents[1]
PORTFOLIO = ROOT / "policies" / "portfolio.policy"
PORTFOLIO_DATA = ROOT / "examples" / "portfolio_customers.csv"
STANDARD = ROOT / "policies" / "standard.policy"
CUSTOMERS = ROOT / "examples" / "customers.csv"
D = Decimal


def rows_of(path: Path) -> list:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


# ---- the library's report is the CLI's report ---------------------------------------------


def test_the_librarys_report_of_a_portfolio_lists_its_pools_and_referral_leaders(capsys):
    policy = load_policy(PORTFOLIO)
    report = build_report(policy, policy.evaluate_many(rows_of(PORTFOLIO_DATA)))
    names = [pool.name for pool in report.pools]
    assert names == ["channel_team [direct]", "channel_team [wholesale]", "channel_team [online]", "marketing",
                     "administration", "support_centre (capacity)"]
    assert report.referral_leaders and report.referral_leaders[0].credit == D("50000.00")
    assert main(["report", str(PORTFOLIO), str(PORTFOLIO_DATA), "--format", "text"]) == 0
    assert capsys.readouterr().out == render_text(report)  # the CLI adds nothing of its own


def test_run_streamed_from_a_file_decides_as_in_memory():
    policy = load_policy(PORTFOLIO)
    kept = policy.run(rows_of(PORTFOLIO_DATA))
    kept_results = [(r.id, r.classification, r.figures) for r in kept]
    with RecordSource.open(PORTFOLIO_DATA) as source:
        streamed = policy.run(source)
        assert [(r.id, r.classification, r.figures) for r in streamed] == kept_results
        assert streamed.summary.pools == kept.summary.pools
        assert streamed.summary.counts == kept.summary.counts and streamed.summary.totals == kept.summary.totals
    assert kept.summary.context.label == "this run"
    assert streamed.summary.context.label == f"the run over {PORTFOLIO_DATA.name}"


def test_run_against_a_stored_context_decides_each_record_alone():
    policy = load_policy(PORTFOLIO)
    rows = rows_of(PORTFOLIO_DATA)
    context = policy.run(rows).summary.context
    alone = policy.run(rows[:3], context=context)
    assert isinstance(alone, Run)
    decisions = list(alone)
    assert len(decisions) == 3 and all(isinstance(d, Decision) for d in decisions)
    assert alone.summary.records == 3 and alone.summary.portfolio is None


def test_summary_counts_and_bottom_line_totals_per_class():
    policy = load_policy(STANDARD)
    run = policy.run(rows_of(CUSTOMERS))
    results = list(run)
    decided = [r for r in results if isinstance(r, Decision)]
    summary = run.summary
    assert summary.records == len(results) and summary.decisions == len(decided)
    assert summary.bottom_line == "profit" == policy.bottom_line
    assert dict(summary.counts) == {label: sum(d.classification == label for d in decided) for label, _ in summary.counts}
    for label, total in summary.totals:
        assert total == sum((d.value("profit") for d in decided if d.classification == label), D(0))


def test_progress_is_called_as_the_run_goes():
    policy = load_policy(STANDARD)
    seen = []
    rows = rows_of(CUSTOMERS) * 30
    list(policy.run(rows, progress=lambda done, errors: seen.append(done)))
    assert seen == list(range(256, len(rows) + 1, 256))


# ---- a decision as data -------------------------------------------------------------------


def test_decision_as_dict_is_the_json_the_cli_writes(tmp_path):
    policy = load_policy(STANDARD)
    out = tmp_path / "out.jsonl"
    main(["run", str(STANDARD), str(CUSTOMERS), "--format", "json", "--output", str(out)])
    written = [json.loads(line) for line in out.read_text().splitlines()]
    library = [r.as_dict() for r in policy.run(rows_of(CUSTOMERS))]
    assert written == json.loads(json.dumps(library))


def test_decision_value_reads_fields_figures_and_classes():
    policy = load_policy(STANDARD)
    decision = next(iter(policy.run(rows_of(CUSTOMERS))))
    assert decision.value("profit") == decision.figures["profit"]
    assert decision.value("id") == decision.id
    assert decision.value("class") == decision.classification
    with pytest.raises(KeyError, match="'nope' is not a field, rate, figure or classification"):
        decision.value("nope")


# ---- engine faults never blame the data ---------------------------------------------------

ABS = """policy "abs"
currency EUR
record c
  id      text key
  revenue money
  bonus   money optional
measure m = abs(revenue)
measure b = bonus + revenue
classify k
  any otherwise
"""


def test_a_fault_inside_the_engine_is_said_to_be_the_engines(monkeypatch):
    def broken(value):
        raise TypeError("unsupported operand")

    monkeypatch.setitem(functions.FUNCTIONS, "abs", functions.Function(
        "abs", 1, 1, "broken for the test", functions.FUNCTIONS["abs"].unit, broken))
    policy = load_policy(ABS)
    (error,) = list(policy.run([{"id": "A", "revenue": "5.00", "bonus": "1.00"}]))
    assert isinstance(error, RecordError) and error.kind == "engine"
    assert "optional field" not in error.message
    assert "fault of the engine" in error.message and "measure 'm', line 7" in error.message


def test_an_empty_optional_field_is_still_the_records():
    (error,) = list(load_policy(ABS).run([{"id": "A", "revenue": "5.00", "bonus": ""}]))
    assert error.kind is None
    assert error.message.startswith("uses an optional field that this record leaves empty (bonus) in measure 'b'")


# ---- the bottom line ----------------------------------------------------------------------

RANKED = """policy "ranked"
currency EUR
record c
  id      text key
  revenue money
  goods   money default 0
measure net   = revenue - goods
measure share = 5%
classify k
  any otherwise
"""


def test_the_bottom_line_is_the_last_money_measure_never_a_percentage():
    policy = load_policy(RANKED)
    assert policy.bottom_line == "net"  # not `share`, the last measure, which is a percentage
    run = policy.run([{"id": "A", "revenue": "10.00"}, {"id": "B", "revenue": "5.00", "goods": "1.00"}])
    report = build_report(policy, run)
    assert report.key_figure == "net" and report.total_profit == D("14.00")


def test_no_money_measure_means_no_ranking():
    policy = load_policy(RANKED.replace("measure net   = revenue - goods\n", ""))
    assert policy.bottom_line is None
    assert build_report(policy, policy.run([{"id": "A", "revenue": "1.00"}])).ranked == 0


# ---- capacity pools -----------------------------------------------------------------------

CAPACITY = """policy "capacity"
currency GBP
rounding half-up to units per line
record c
  id    text key
  units count
pool desk = 1 GBP over 2 units
cost service = units * desk
measure service_check = units * desk
classify k
  any otherwise
"""


def test_a_capacity_pool_reports_what_the_rounded_lines_charged_counted_once(tmp_path, capsys):
    policy = load_policy(CAPACITY)
    run = policy.run([{"id": "A", "units": "1"}, {"id": "B", "units": "1"}])
    assert [d.figures["service"] for d in run] == [D("1"), D("1")]  # 0.50 each, rounded to whole pounds
    (use,) = run.summary.pools
    assert use.used == 2  # the measure that repeats the formula charges nobody
    assert use.charged == D("2") and use.unused == D("-1")
    (line,) = run.summary.pool_lines()
    assert line == ("capacity desk: 1.00 GBP over 2 units = 0.50 GBP per unit; used 2 units, "
                    "charged 2.00 GBP, unused capacity -1.00 GBP")


def test_pool_lines_group_digits_and_say_what_the_rate_is_per():
    policy = load_policy(PORTFOLIO)
    lines = policy.run(rows_of(PORTFOLIO_DATA)).summary.pool_lines()
    assert ("capacity support_centre: 560,000.00 EUR over 700,000 minutes = 0.80 EUR per minute; "
            "used 500,989 minutes, charged 400,791.20 EUR, unused capacity 159,208.80 EUR") in lines
    assert any(line.startswith("pool marketing: 350,000.00 EUR shared by revenue (total 90,843,251.91) over "
                               "800 customers") for line in lines)


# ---- words ----------------------------------------------------------------------------------


def test_one_record_one_decision_one_customer():
    policy = load_policy(CAPACITY.replace("pool desk = 1 GBP over 2 units\n", "")
                         .replace("units * desk", "units * 1 GBP").replace("cost service", "measure service"))
    summary = policy.run([{"id": "A", "units": "1"}]).summary
    assert summary.line() == "1 record in = 1 decision + 0 errors out"
    shared = load_policy(ABS.replace("measure m = abs(revenue)", "cost m = allocate 1 EUR equally"))
    (line,) = shared.run([{"id": "A", "revenue": "1.00", "bonus": "1.00"}]).summary.pool_lines()
    assert "over 1 customer;" in line


# ---- units in explanations are the checker's ------------------------------------------------

SHIPPED = sorted((ROOT / "policies").glob("*.policy"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_expression_node_has_the_checkers_unit(path):
    checked = load_policy(path).checked
    for figure in checked.figures:
        if figure.expr is not None:
            assert checked.unit_of(figure.expr) == figure.unit or figure.kind in ("rate", "pool") or \
                checked.unit_of(figure.expr).literal
            for node in walk(figure.expr):
                checked.unit_of(node)  # raises if the checker left a node untyped
    for classification in checked.classifications:
        for rule in classification.rules:
            if rule.condition is not None:
                for node in walk(rule.condition):
                    checked.unit_of(node)


def _explained_policies():
    """Every shipped policy with its example data, and every corpus policy that loads, with its records."""
    from engine import PolicyError
    from test_corpus import FILES, read_corpus_file
    yield pytest.param(STANDARD, rows_of(CUSTOMERS), id="standard")
    yield pytest.param(ROOT / "policies" / "strict.policy", rows_of(CUSTOMERS), id="strict")
    yield pytest.param(PORTFOLIO, rows_of(PORTFOLIO_DATA), id="portfolio")
    for path in FILES:
        records, _ = read_corpus_file(path.read_text(encoding="utf-8"))
        try:
            load_policy(path)
        except PolicyError:
            continue
        if records:
            yield pytest.param(path, [r.record for r in records], id="corpus/" + path.stem)


@pytest.mark.parametrize("path, records", list(_explained_policies()))
def test_every_unit_an_explanation_shows_is_the_checkers(path, records):
    """Each figure's unit in an explanation, and the way its value is written, is the checker's."""
    from engine.display import shown
    policy = load_policy(path)
    units = policy.checked.names
    explained = 0
    for result in list(policy.run(records))[:50]:
        if isinstance(result, RecordError):
            continue
        explanation = result.explain()
        text = str(explanation)
        for step in explanation.steps:
            assert step.unit == units[step.name], step.name
            assert shown(step.value, units[step.name], policy.currency) in text, step.name
        explained += 1
    assert explained, "no decision to explain"


REFERRALS = """policy "word of mouth"
currency EUR
record c
  id          text key
  revenue     money
  bonus       money optional
  referred_by text optional
credit word = referred 10% of bonus via referred_by
measure profit = revenue + credits
classify k
  any otherwise
"""


def test_a_customer_nobody_referred_needs_no_value_to_bring():
    """C-1 referred C-2 and has no bonus: it brings no referrer anything, so it is decided."""
    results = list(load_policy(REFERRALS).run([
        {"id": "C-1", "revenue": "10.00", "bonus": "", "referred_by": ""},
        {"id": "C-2", "revenue": "10.00", "bonus": "50.00", "referred_by": "C-1"}]))
    assert [r.figures["word"] for r in results] == [D("5.00"), D("0.00")]


def test_an_empty_field_message_names_only_the_fields_the_formula_read():
    policy = load_policy(REFERRALS.replace("credit word = referred 10% of bonus via referred_by\n",
                                           "cost loyalty = 10% of bonus\n"))
    (error,) = list(policy.run([{"id": "C-1", "revenue": "10.00", "bonus": "", "referred_by": ""}]))
    assert "leaves empty (bonus) in cost 'loyalty'" in error.message


def test_a_new_function_is_one_entry_in_the_registry(monkeypatch):
    """The checker, the compiler and the explanation all read the registry: no other edit."""
    clamp = functions.Function("clamp", 3, 3, "the value kept between a low and a high bound",
                               functions.FUNCTIONS["min"].unit, lambda value, low, high: max(low, min(value, high)))
    monkeypatch.setitem(functions.FUNCTIONS, "clamp", clamp)
    policy = load_policy(ABS.replace("measure m = abs(revenue)", "measure m = clamp(revenue, 0 EUR, 100 EUR)"))
    decision = policy.evaluate({"id": "A", "revenue": "250.00", "bonus": "1.00"})
    assert decision.value("m") == D("100")
    step = next(s for s in decision.explain().steps if s.name == "m")
    assert step.unit.kind == "money" and step.substituted == "clamp(250.00, 0 EUR, 100 EUR)"
    with pytest.raises(Exception, match="clamp\\(\\) got 2 values"):
        load_policy(ABS.replace("measure m = abs(revenue)", "measure m = clamp(revenue, 0 EUR)"))


def test_a_record_failing_in_one_share_out_takes_no_part_in_the_others_of_its_pass():
    """W's region has no pool in the table, so W fails: the 90 EUR shared equally goes to A and B."""
    policy = load_policy("""policy "tables"
currency EUR
record c
  id      text key
  region  text
table t
  "north" = 100 EUR
cost team = allocate t equally within region
cost all = allocate 90 EUR equally
classify k
  any otherwise
""")
    run = policy.run([{"id": "A", "region": "north"}, {"id": "B", "region": "north"}, {"id": "W", "region": "west"}])
    results = list(run)
    assert [r.figures["all"] for r in results[:2]] == [D("45.00"), D("45.00")]
    assert isinstance(results[2], RecordError) and "no pool for region 'west'" in results[2].message
    assert run.summary.context.allocations["all"].groups[None].allocated == D("90.00")


def test_an_empty_field_is_named_once():
    policy = load_policy('policy "x"\ncurrency EUR\nrecord c\n  id text key\n  s date optional\n'
                         "measure e = s < s\nclassify k\n  a otherwise\n")
    (error,) = list(policy.run([{"id": "A", "s": ""}]))
    assert "leaves empty (s) in measure 'e'" in error.message


def test_a_percentage_times_a_number_is_still_a_percentage():
    """`a * 2` with `a` a percentage once came out as a bare number, so `revenue + a * 2` checked."""
    from engine import PolicyError
    source = RANKED.replace("measure share = 5%", "measure share = 5%\nmeasure wrong = revenue + share * 2")
    with pytest.raises(PolicyError, match="cannot add money and a percentage"):
        load_policy(source)
    assert load_policy(RANKED.replace("measure share = 5%", "measure share = 5% * 2")).checked.figure(
        "share").unit.kind == "percent"


def test_a_label_two_rules_give_is_counted_once():
    policy = load_policy(RANKED.replace("  any otherwise", "  small when net < 5 EUR\n  big when net > 100 EUR\n"
                                        "  small otherwise"))
    summary = policy.run([{"id": "A", "revenue": "1.00"}, {"id": "B", "revenue": "50.00"}]).summary
    assert summary.counts == (("small", 2),)
    assert [c.label for c in build_report(policy, policy.run([{"id": "A", "revenue": "1.00"}])).classes] == ["small"]


def test_rank_by_a_money_field():
    policy = load_policy(RANKED.replace("currency EUR\n", "currency EUR\nrank by revenue\n"))
    assert policy.bottom_line == "revenue"
