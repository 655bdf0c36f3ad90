"""Pooled costs shared over the portfolio: exact shares, stages and cascades, groups,
equal shares, zero totals, capacity pools, stored contexts, and their explanations."""
from __future__ import annotations

import io
import json
from decimal import Decimal as D

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from engine import PolicyError, RecordError, cli, load_policy
from engine.portfolio import PortfolioContext, ZeroTotal, distribute

HEAD = """policy "pooled"
currency EUR
record c
  id       text key
  region   text default "north"
  calls    count default 0
  revenue  money
  minutes  count default 0
"""


def policy(body: str):
    return load_policy(HEAD + body + "\nclassify k\n  any otherwise\n")


def records(*rows):
    return [dict(zip(("id", "region", "calls", "revenue", "minutes"), map(str, row))) for row in rows]


# ---- exact division -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(pool=st.integers(min_value=-10**9, max_value=10**9),
       weights=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=40))
def test_shares_add_up_to_the_pool_to_the_unit(pool, weights):
    if sum(weights) == 0:
        with pytest.raises(ZeroTotal):
            distribute(pool, weights)
        return
    shares, bonus = distribute(pool, weights)
    assert sum(shares) == pool
    total = sum(weights)
    for share, weight in zip(shares, weights):
        assert abs(share * total - pool * weight) < total  # never a whole unit from the exact share
    # the leftover units go to the largest remainders, ties to the earlier row
    remainders = [abs(pool) * w % total for w in weights]
    assert len(bonus) == len(set(bonus))
    if bonus:
        lowest = min((remainders[i], -i) for i in bonus)
        assert all((remainders[i], -i) <= lowest for i in range(len(weights)) if i not in bonus)
    assert (shares, bonus) == distribute(pool, weights)  # deterministic


def test_remainder_goes_to_largest_fractions_then_earlier_rows():
    assert distribute(10000, [1, 1, 1]) == ([3334, 3333, 3333], [0])
    assert distribute(1000, [1, 2]) == ([333, 667], [1])  # 333.3.. and 666.6..: the larger fraction wins
    assert distribute(-1000, [1, 2]) == ([-333, -667], [1])


# ---- allocations in a portfolio ---------------------------------------------------------


def test_proportional_allocation_and_its_explanation():
    p = policy("cost call_centre = allocate 1,000 EUR by calls")
    run = p.evaluate_portfolio(records(("A", "north", 1, 10), ("B", "north", 2, 10), ("C", "north", 0, 10)))
    amounts = [d.figures["call_centre"] for d in run.results]
    assert amounts == [D("333.33"), D("666.67"), D("0.00")]
    text = str(run.results[1].explain())
    assert "1,000.00 * calls 2 / 3 (total calls)" in text
    assert "+ 0.01 remainder unit = 666.67" in text and "[portfolio: this run]" in text


def test_cascade_uses_earlier_allocations_in_later_drivers():
    p = policy("""cost centre = allocate 300 EUR by calls
measure income = revenue - centre
cost admin = allocate 100 EUR by income""")
    assert [(a.name, a.stage) for a in p.checked.allocations] == [("centre", 1), ("admin", 2)]
    run = p.evaluate_portfolio(records(("A", "n", 1, 500), ("B", "n", 2, 700)))
    a, b = run.results
    assert (a.figures["centre"], b.figures["centre"]) == (D("100.00"), D("200.00"))
    # incomes 400 and 500: admin 100 * 400/900 = 44.44.., 100 * 500/900 = 55.55..
    assert (a.figures["admin"], b.figures["admin"]) == (D("44.44"), D("55.56"))
    assert a.figures["admin"] + b.figures["admin"] == D("100.00")


def test_groups_each_share_their_own_pool_and_a_missing_group_is_a_record_error():
    p = policy("""table pools
  "north" = 100 EUR
  "south" = 50 EUR
  "west" = 10 EUR
cost team = allocate pools by revenue within region""")
    run = p.evaluate_portfolio(records(("A", "north", 0, 1), ("B", "south", 0, 1), ("C", "north", 0, 3),
                                       ("D", "east", 0, 1)))
    a, b, c, d = run.results
    assert (a.figures["team"], c.figures["team"], b.figures["team"]) == (D("25.00"), D("75.00"), D("50.00"))
    assert isinstance(d, RecordError) and "no pool for region 'east'" in str(d)
    groups = run.context.allocations["team"].groups
    assert groups["west"].customers == 0 and groups["west"].allocated == 0  # a pool nobody shared is visible


def test_equal_shares_and_zero_total_fallback_or_error():
    p = policy("cost admin = allocate 10 EUR equally")
    run = p.evaluate_portfolio(records(("A", "n", 0, 1), ("B", "n", 0, 1), ("C", "n", 0, 1)))
    assert [d.figures["admin"] for d in run.results] == [D("3.34"), D("3.33"), D("3.33")]
    fallback = policy("cost c = allocate 10 EUR by calls otherwise equally")
    run = fallback.evaluate_portfolio(records(("A", "n", 0, 1), ("B", "n", 0, 1)))
    assert [d.figures["c"] for d in run.results] == [D("5.00"), D("5.00")]
    assert "drivers add up to zero: equal shares" in str(run.results[0].explain())
    strict = policy("cost c = allocate 10 EUR by calls")
    run = strict.evaluate_portfolio(records(("A", "n", 0, 1), ("B", "n", 0, 1)))
    assert all(isinstance(r, RecordError) and "add up to zero" in str(r) for r in run.results)


def test_capacity_pool_charges_a_rate_and_reports_unused_capacity():
    p = policy("""pool centre = 560,000 EUR over 700,000 minutes
cost support = minutes * centre""")
    run = p.evaluate_portfolio(records(("A", "n", 0, 1, 1000), ("B", "n", 0, 1, 500)))
    assert [d.figures["support"] for d in run.results] == [D("800.00"), D("400.00")]
    (use,) = run.summary.pools
    assert use.rate == D("0.8") and use.used == D(1500)
    assert use.charged == D("1200.0") and use.unused == D("558800.0")


@pytest.mark.parametrize("body, code, fragment", [
    ("measure income = revenue - admin\ncost admin = allocate 100 EUR by income", "cycle",
     "the driver of the allocation 'admin' cannot depend on 'admin' itself"),
    ('table t\n  "north" = 1 EUR\ncost x = allocate t by revenue', "table-needs-within", "within"),
    ("cost x = allocate 1 EUR by revenue within calls", "bad-group", "not a text field"),
    ('table t\n  "north" = 1 EUR\nmeasure m = t * 2', "table-use", "only be shared out"),
    ("cost x = allocate 1 EUR by region", "bad-driver", "must be a number"),
    ("pool p = 1 EUR over 0 minutes\ncost x = minutes * p", "pool-volume", "above zero"),
])
def test_checker_rejects_bad_allocations(body, code, fragment):
    with pytest.raises(PolicyError) as error:
        policy(body)
    found = [d for d in error.value.diagnostics if d.code == code]
    assert found, [d.code for d in error.value.diagnostics]
    assert fragment in found[0].message + (found[0].help or "")


# ---- single decisions against a stored context ----------------------------------------------


def test_single_decision_against_a_stored_context():
    p = policy("cost centre = allocate 900 EUR by calls")
    run = p.evaluate_portfolio(records(("A", "n", 1, 1), ("B", "n", 2, 1)))
    stored = PortfolioContext.from_dict(json.loads(json.dumps(run.context.as_dict())))
    assert stored == run.context
    decision = p.evaluate(records(("NEW", "n", 3, 1))[0], context=stored)
    assert decision.figures["centre"] == D("900.00")  # 900 * 3 / 3: the stored total
    assert "[portfolio: this run]" in str(decision.explain())
    with pytest.raises(RecordError, match="evaluate the whole portfolio"):
        p.evaluate(records(("NEW", "n", 3, 1))[0])


def test_evaluate_many_on_a_portfolio_policy_shares_over_all_records():
    p = policy("cost centre = allocate 10 EUR by calls")
    results = list(p.evaluate_many(records(("A", "n", 1, 1), ("B", "n", 1, 1))))
    assert [r.figures["centre"] for r in results] == [D("5.00"), D("5.00")]


def test_cli_portfolio_from_stdin_with_saved_context(tmp_path, monkeypatch, capsys):
    path = tmp_path / "p.policy"
    path.write_text(HEAD + "cost centre = allocate 10 EUR by calls\nclassify k\n  any otherwise\n")
    data = "id,calls,revenue\nA,1,1\nB,3,1\n"
    context = tmp_path / "ctx.json"
    monkeypatch.setattr("sys.stdin", io.StringIO(data))
    code = cli.main(["run", str(path), "-", "--format", "json", "--save-context", str(context)])
    out, err = capsys.readouterr()
    assert code == 0
    assert [json.loads(line)["figures"]["centre"] for line in out.splitlines()] == ["2.50", "7.50"]
    assert "pool centre: 10.00 EUR shared by calls (total 4) over 2 customers; allocated 10.00 EUR" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("id,calls,revenue\nC,2,1\n"))
    code = cli.main(["run", str(path), "-", "--format", "json", "--context", str(context)])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["figures"]["centre"] == "5.00"


# ---- the referral network ---------------------------------------------------------------

REFERRAL = """policy "ref"
currency EUR
record c
  id          text key
  revenue     money
  acquisition money default 0
  referred_by text optional
  came_anyway yes/no default no
credit word_of_mouth = referred 10% of revenue via referred_by levels 2 decay 50% cap 1,000 EUR
                       anyway came_anyway acquisition
classify k
  any otherwise
"""

NETWORK = [
    {"id": "A", "revenue": "100"},
    {"id": "B", "revenue": "1000", "referred_by": "A"},
    {"id": "C", "revenue": "2000", "referred_by": "B"},
    {"id": "D", "revenue": "500", "referred_by": "A", "came_anyway": "yes", "acquisition": "80"},
    {"id": "E", "revenue": "1", "referred_by": "E"},
    {"id": "F", "revenue": "1", "referred_by": "ZZ"},
    {"id": "G", "revenue": "50000", "referred_by": "C"},
    {"id": "H", "revenue": "10", "referred_by": "I"},
    {"id": "I", "revenue": "20", "referred_by": "H"},
]


def test_referral_credit_levels_decay_anyway_and_cap():
    run = load_policy(REFERRAL).evaluate_portfolio(NETWORK)
    credit = {d.id: d.figures["word_of_mouth"] for d in run.results}
    # A: B brings 10% of 1,000; D came anyway so brings only its acquisition 80; C at level 2 at 50%: 200 * 0.5
    assert credit["A"] == D("280.00")
    assert credit["B"] == D("1000.00")  # 200 + 50% of 5,000 = 2,700, capped at 1,000
    assert credit["G"] == D("0.00")
    text = str(run.results[0].explain())
    assert "B 100.00 [level 1] + D 80.00 (came anyway) [level 1] + C 200.00 x 50% [level 2] = 280.00" in text
    assert "capped at 1,000.00" in str(run.results[1].explain())


def test_self_referral_unknown_referrer_and_cycles_never_loop():
    run = load_policy(REFERRAL).evaluate_portfolio(NETWORK)
    by_id = {d.id: d for d in run.results}
    assert by_id["E"].figures["word_of_mouth"] == 0 and "names the customer itself" in str(by_id["E"].explain())
    assert "'ZZ' is not a customer of this portfolio" in str(by_id["F"].explain())
    # H and I refer each other: each is credited for the other once, and the loop is noted
    assert by_id["H"].figures["word_of_mouth"] == D("2.00")
    assert "loop back" in str(by_id["H"].explain())


def test_referral_credit_from_a_stored_context():
    policy = load_policy(REFERRAL)
    run = policy.evaluate_portfolio(NETWORK)
    assert policy.evaluate({"id": "A", "revenue": "5"}, context=run.context).figures["word_of_mouth"] == D("280.00")
    assert policy.evaluate({"id": "NEW", "revenue": "5"}, context=run.context).figures["word_of_mouth"] == 0


def test_referral_value_cannot_depend_on_the_credit_itself():
    text = REFERRAL.replace("referred 10% of revenue", "referred 10% of profit").replace(
        "classify k", "measure profit = revenue + credits\nclassify k")
    with pytest.raises(PolicyError) as error:
        load_policy(text)
    cycle = [d for d in error.value.diagnostics if d.code == "cycle"]
    assert cycle and "cannot depend on 'word_of_mouth'" in cycle[0].help


def test_report_shows_how_pools_were_shared_and_the_referral_leaders(capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = cli.main(["report", str(root / "policies" / "portfolio.policy"),
                     str(root / "examples" / "portfolio_customers.csv"), "--format", "text"])
    out = capsys.readouterr().out
    assert code == 0
    assert "channel_team [direct]: 420,000.00, 420,000.00, 0.00" in out
    assert "support_centre (capacity): 560,000.00" in out
    assert "Referral leaders" in out and "C-1589: 18, 50,000.00" in out  # capped at 50,000


def test_strict_referral_credit_makes_network_problems_record_errors():
    policy = load_policy(REFERRAL.replace("anyway came_anyway acquisition", "anyway came_anyway acquisition strict"))
    run = policy.evaluate_portfolio(NETWORK)
    failed = {r.id: str(r) for r in run.results if isinstance(r, RecordError)}
    assert set(failed) == {"E", "F", "H", "I"}  # self-referral, unknown referrer, the H-I loop
    assert "names the customer itself" in failed["E"]
    assert len(run.results) == len(NETWORK)  # records in = decisions + errors out


def test_check_shows_the_stages_of_a_portfolio_policy(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "policies" / "portfolio.policy"
    assert cli.main(["check", str(path)]) == 0
    assert ("(portfolio: pass 1: channel_team, marketing, word_of_mouth; pass 2: administration; "
            "then every decision)") in capsys.readouterr().out


CASCADE = HEAD + """table pools
  "north" = 1,234.56 EUR
  "south" = 99.99 EUR
cost team = allocate pools by revenue within region otherwise equally
measure income = revenue - team
cost admin = allocate 777.77 EUR by income otherwise equally
classify k
  any otherwise
"""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["north", "south"]), st.integers(min_value=0, max_value=10**7)),
                min_size=1, max_size=30))
def test_allocations_reconcile_for_random_portfolios(rows):
    """Whatever the portfolio, each pool is shared out to the cent, group by group."""
    p = load_policy(CASCADE)
    run = p.evaluate_portfolio([{"id": f"C{i}", "region": region, "revenue": str(D(cents) / 100)}
                                for i, (region, cents) in enumerate(rows)])
    decisions = [r for r in run.results if not isinstance(r, RecordError)]
    assert len(decisions) == len(rows)  # every row has a region and a revenue: none fails
    for group, pool in (("north", D("1234.56")), ("south", D("99.99"))):
        members = [d for d in decisions if d.value("region") == group]
        note(f"{group}: {len(members)} customers")
        assert sum((d.figures["team"] for d in members), D(0)) == (pool if members else 0)
        shared = {name: g for name, g in run.context.allocations["team"].groups.items() if g.customers}
        assert (group in shared) == bool(members)
    assert sum(d.figures["admin"] for d in decisions) == D("777.77")


def test_driver_may_use_a_figure_built_on_the_totals():
    p = policy("""cost service = calls * 10 EUR
measure direct_profit = revenue - costs
credit bonus = allocate 100 EUR by direct_profit""")
    run = p.evaluate_portfolio(records(("A", "n", 1, 110), ("B", "n", 0, 30)))
    # direct profits 100 and 30 (the bonus is a credit, not a cost)
    assert [d.figures["bonus"] for d in run.results] == [D("76.92"), D("23.08")]


def test_stored_context_problems_are_record_errors():
    p = policy("cost c = allocate 10 EUR by calls")
    run = p.evaluate_portfolio(records(("A", "n", 0, 1)))
    with pytest.raises(RecordError, match="added up to zero in the stored context"):
        p.evaluate(records(("B", "n", 1, 1))[0], context=run.context)
    other = policy("cost d = allocate 10 EUR by calls")
    with pytest.raises(RecordError, match="made with another policy"):
        other.evaluate(records(("B", "n", 1, 1))[0], context=run.context)


def test_empty_group_field_is_a_record_error():
    p = load_policy(HEAD.replace('region   text default "north"', "region   text optional")
                    + "cost c = allocate 10 EUR by calls within region\nclassify k\n  any otherwise\n")
    run = p.evaluate_portfolio([{"id": "A", "calls": "1", "revenue": "1", "region": "n"},
                                {"id": "B", "calls": "1", "revenue": "1"}])
    assert run.results[0].figures["c"] == D("10.00")
    assert isinstance(run.results[1], RecordError) and "region is empty" in str(run.results[1])


# ---- the passes: in memory or streamed, the same decisions ------------------------------


def _run_both_ways(plan, rows):
    """(results, summary) with the records kept in memory between passes, and re-read per pass."""
    from engine.portfolio import evaluate_portfolio
    runs = []
    for keep in (True, False):
        results, finish = evaluate_portfolio(plan, lambda: rows, keep_values=keep)
        runs.append((list(results), finish()))
    return runs


def _same(a, b):
    if isinstance(a, RecordError):
        return isinstance(b, RecordError) and str(a) == str(b)
    return (a.id, a.row, a.outcomes, a.slots, a.shares) == (b.id, b.row, b.outcomes, b.slots, b.shares)


def test_streamed_passes_decide_exactly_as_passes_in_memory():
    """The CLI re-reads a CSV per pass; the library keeps each record's slots: same results."""
    from engine.records import read_records
    p = load_policy("policies/portfolio.policy")
    with open("examples/portfolio_customers.csv", encoding="utf-8", newline="") as stream:
        rows = list(read_records(stream, "csv"))
    (kept, kept_summary), (streamed, streamed_summary) = _run_both_ways(p.plan, rows)
    assert len(kept) == len(streamed) == len(rows)
    assert all(_same(a, b) for a, b in zip(kept, streamed))
    assert kept_summary == streamed_summary
    assert kept[0].explain().text() == streamed[0].explain().text()


FAILING_LATE = HEAD + """cost centre = allocate 300 EUR by calls
measure income = revenue - centre
measure per_call = income / calls
cost admin = allocate 100 EUR by per_call otherwise equally
measure per_minute = revenue / minutes
classify k
  any otherwise
"""


def test_a_record_failing_in_a_later_pass_keeps_no_share_and_the_summary_says_so():
    """B fails in pass 2 (no calls to divide by), C in the deciding pass (no minutes). C was
    shared both pools before it failed; the summary no longer counts its shares as allocated."""
    p = load_policy(FAILING_LATE)
    rows = list(enumerate(records(("A", "n", 1, 100, 1), ("B", "n", 0, 100, 1), ("C", "n", 2, 100, 0)), start=1))
    for results, summary in _run_both_ways(p.plan, rows):
        a, b, c = results
        assert "division by zero in measure 'per_call', line 11" in str(b)
        assert "division by zero in measure 'per_minute', line 13" in str(c)
        # per_call: A 0, C -50 (counted as 0), B none: admin falls back to equal shares of A and C
        assert a.figures["centre"] == D("100.00") and a.figures["admin"] == D("50.00")
        groups = {name: g[None] for name, g in
                  ((n, a_.groups) for n, a_ in summary.context.allocations.items())}
        assert (groups["centre"].pool, groups["centre"].allocated) == (D("300.00"), D("100.00"))
        assert (groups["admin"].pool, groups["admin"].allocated) == (D("100.00"), D("50.00"))


CARRIED = """policy "carried"
currency EUR
record c
  id       text key
  region   text optional
  revenue  money
  bonus    money optional
  referrer text optional
record end
"""


def test_later_stage_passes_rebuild_text_empty_values_and_exponents_exactly():
    """Stage 2 here groups by text, credits referrals by id, and reads values written with
    different exponents (10, 10.5, 10.50, 10.500) and an empty optional field: streamed from what
    pass 1 carried, it must decide exactly as in memory, explanations included."""
    p = load_policy(CARRIED.replace("record end\n", "") + """cost centre = allocate 100 EUR by revenue
measure net = revenue - centre + (bonus when bonus is not missing else 0 EUR)
cost team = allocate 60 EUR by net within region otherwise equally
credit word = referred 10% of net via referrer levels 2
classify k
  any otherwise
""")
    rows = [("A", "n", "10", "", ""), ("B", "n", "10.5", "1.25", "A"), ("C", "s", "10.50", "", "B"),
            ("D", "s", "10.500", "2", "A"), ("E", "", "7", "", "C"), ("F", "s", "12,000.00", "0.5", "Z")]
    rows = list(enumerate(({"id": i, "region": r, "revenue": v, "bonus": b, "referrer": ref}
                           for i, r, v, b, ref in rows), start=1))
    (kept, kept_summary), (streamed, streamed_summary) = _run_both_ways(p.plan, rows)
    assert all(_same(a, b) for a, b in zip(kept, streamed))
    assert kept_summary == streamed_summary
    assert [str(r.explain()) if not isinstance(r, RecordError) else str(r) for r in kept] == \
           [str(r.explain()) if not isinstance(r, RecordError) else str(r) for r in streamed]
    assert isinstance(kept[4], RecordError) and "region is empty" in str(kept[4])
    assert kept[0].figures["word"] > 0  # A brought B and D, and C through B


@pytest.mark.parametrize("weights, expected", [
    (["0.0000001", "0.0000003"], ["25.00", "75.00"]),  # finer than the 10^-6 a weight is kept at
    (["1" + "0" * 20, "3" + "0" * 20], ["25.00", "75.00"]),  # too large for 64 bits
    (["2", "0.00000005"], ["100.00", "0.00"]),  # both kinds in one group: shares stay exact
])
def test_drivers_finer_or_larger_than_the_compact_form_are_shared_exactly(weights, expected):
    p = load_policy(HEAD.replace("calls    count default 0", "calls    number default 0")
                    + "cost c = allocate 100 EUR by calls\nclassify k\n  any otherwise\n")
    run = p.evaluate_portfolio([{"id": str(i), "calls": w, "revenue": "1"} for i, w in enumerate(weights)])
    assert [str(d.figures["c"]) for d in run.results] == expected
    assert run.context.allocations["c"].groups[None].total == sum(D(w) for w in weights)


EMPTY = """policy "empty"
currency EUR
record c
  id       text key
  calls    count optional
  bonus    money optional
  referrer text optional
  revenue  money
cost c = allocate 100 EUR by calls
credit word = referred bonus via referrer
classify k
  any otherwise
"""


def test_an_empty_driver_or_referral_value_is_a_record_error_and_the_rest_share_the_pool():
    p = load_policy(EMPTY)
    rows = list(enumerate([{"id": "A", "calls": "1", "bonus": "5", "revenue": "1"},
                           {"id": "B", "calls": "", "bonus": "5", "referrer": "A", "revenue": "1"},
                           {"id": "C", "calls": "3", "bonus": "", "referrer": "A", "revenue": "1"},
                           {"id": "D", "calls": "1", "bonus": "2", "referrer": "A", "revenue": "1"}], start=1))
    for results, summary in _run_both_ways(p.plan, rows):
        a, b, c, d = results
        assert "the driver of the allocation 'c' (calls) is empty" in str(b)
        assert "the value this record brings its referrer for 'word' is empty" in str(c)
        # a record in error takes no part in any pool of its pass: A and D share c, D alone credits A
        assert [a.figures["c"], d.figures["c"]] == [D("50.00"), D("50.00")]
        assert a.figures["word"] == D("2.00")
        assert summary.context.allocations["c"].groups[None].allocated == D("100.00")


def test_the_callers_decimal_context_never_reaches_a_portfolio_run():
    """Shares, explanations and the summary are made lazily, in the caller's hands: a coarse
    decimal context there must change nothing."""
    import decimal
    from engine.records import read_records
    p = load_policy("policies/portfolio.policy")
    with open("examples/portfolio_customers.csv", encoding="utf-8", newline="") as stream:
        records = [raw for _, raw in read_records(stream, "csv")][:300]

    def everything():
        run = p.evaluate_portfolio(records)
        return ([(d.figures, d.shares, str(d.explain())) for d in run.results[:60]],
                run.summary, [d.figures for d in p.evaluate_many(records)])

    expected = everything()
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN)):
        assert everything() == expected


def test_portfolio_runs_in_many_threads_at_once_agree():
    from concurrent.futures import ThreadPoolExecutor
    from engine.records import read_records
    p = load_policy("policies/portfolio.policy")
    with open("examples/portfolio_customers.csv", encoding="utf-8", newline="") as stream:
        records = [raw for _, raw in read_records(stream, "csv")][:200]

    def run(_):
        result = p.evaluate_portfolio(records)
        return [(d.figures, d.shares) for d in result.results], result.summary

    expected = run(None)
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(found == expected for found in pool.map(run, range(8)))
