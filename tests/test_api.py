"""The library entry point: load_policy, Policy, Decision, PolicyError, RecordError."""
from __future__ import annotations

import csv
import itertools
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import engine
from engine import Decision, Outcome, Policy, PolicyError, RecordError, load_policy

ROOT = Path(__file__).resolve().parents[1]
STANDARD = ROOT / "policies" / "standard.policy"


@pytest.fixture(scope="module")
def standard() -> Policy:
    return load_policy(STANDARD)


@pytest.fixture(scope="module")
def customers() -> list:
    with open(ROOT / "examples" / "customers.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


_ONE = {"id": "X", "revenue": "50000.00", "cost_of_goods": "36000.00", "orders": "20"}


def _summary(result):
    """Everything a decision says, as plain comparable data."""
    if isinstance(result, RecordError):
        return ("error", result.row, result.id, result.message)
    return (result.id, result.row, result.classes, tuple((o.rule, o.line, o.action) for o in result.outcomes),
            tuple((k, str(v)) for k, v in result.figures.items()))


# ---- load_policy ------------------------------------------------------------------------------


def test_public_names():
    for name in ("load_policy", "Policy", "Decision", "PolicyError", "RecordError", "Explanation", "Outcome"):
        assert hasattr(engine, name) and name in engine.__all__


@pytest.mark.parametrize("source", [str(STANDARD), STANDARD], ids=["str", "Path"])
def test_load_policy_from_a_path(source):
    policy = load_policy(source)
    assert isinstance(policy, Policy)
    assert policy.name == "Standard customer profitability"
    assert policy.version == "2026.1"
    assert policy.currency == "EUR"
    assert policy.filename == str(source)
    assert "revenue" in policy.field_names and "profit" in policy.figure_names


def test_load_policy_from_a_relative_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_policy("policies/standard.policy").filename == "policies/standard.policy"


def test_load_policy_from_text():
    text = STANDARD.read_text(encoding="utf-8")
    from_text = load_policy(text)
    from_path = load_policy(STANDARD)
    assert from_text.filename == "<string>"
    assert load_policy(text, filename="mine.policy").filename == "mine.policy"
    record = {"id": "X", "revenue": "50000.00", "cost_of_goods": "36000.00", "orders": "20"}
    assert _summary(from_text.evaluate(record)) == _summary(from_path.evaluate(record))


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        load_policy(tmp_path / "nope.policy")


BROKEN = '''policy "Broken"
currency EUR

record customer
  id       text   key
  revenue  money
  orders   count

cost handling = orders * handling_rate
measure profit = revenue - costs + revenu
measure weird = revenue * revenue

classify class
  good when profit > 0 EUR
'''


def test_policy_error_carries_every_diagnostic():
    with pytest.raises(PolicyError) as caught:
        load_policy(BROKEN)
    error = caught.value
    codes = [d.code for d in error.diagnostics]
    assert codes.count("unknown-name") == 2  # handling_rate, revenu
    assert "unit" in codes  # money * money
    assert "missing-otherwise" in codes
    assert len(error.errors) == len(error.diagnostics) >= 4
    lines = [d.span.line for d in error.diagnostics]
    assert lines == sorted(lines)  # in source order
    assert {9, 10, 11} <= set(lines)
    text = str(error)
    for diagnostic in error.diagnostics:
        assert diagnostic.message in text
    assert "did you mean 'revenue'" in text
    data = error.diagnostics[0].as_dict()
    assert {"code", "severity", "message", "line", "column", "file"} <= set(data)


def test_policy_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "broken.policy"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert all(d.filename == str(path) for d in caught.value.diagnostics)
    assert f"{path}:9:" in str(caught.value)


def test_syntax_error_is_a_policy_error():
    with pytest.raises(PolicyError) as caught:
        load_policy('policy "x"\ncurrency EUR\nrecord c\n  id text key\nmeasure m = (1 +\n')
    assert caught.value.diagnostics


# ---- Policy ---------------------------------------------------------------------------------------


def test_policy_is_immutable(standard):
    with pytest.raises(AttributeError):
        standard.name = "other"
    with pytest.raises(AttributeError):
        standard._plan = None
    with pytest.raises(AttributeError):
        standard.anything = 1
    assert standard.name == "Standard customer profitability"
    assert standard.evaluate(_ONE).classification == "profitable"  # still whole and working


def test_policy_attributes_cannot_be_deleted():
    policy = load_policy(STANDARD)
    with pytest.raises(AttributeError):
        del policy._plan
    assert policy.evaluate(_ONE).classification == "profitable"


def test_policy_repr(standard):
    assert "Standard customer profitability" in repr(standard)


# ---- Decision -------------------------------------------------------------------------------------


def test_decision_interface(standard, customers):
    row = next(r for r in customers if r["id"] == "C-1021")
    decision = standard.evaluate(row)
    assert isinstance(decision, Decision)
    assert decision.id == "C-1021" and decision.row is None
    assert decision.classification == "liability"
    assert decision.action == "Review credit terms; hold new orders until paid"
    assert isinstance(decision.rule, Outcome)
    assert decision.rule.rule == 1 and decision.rule.classification == "class"
    assert decision.classes == {"class": "liability", "service_tier": "silver"}
    assert decision.figures["profit"] == Decimal("6425.90")
    assert decision.explain().id == "C-1021"


def test_decision_figures_are_decimal(standard, customers):
    for decision in standard.evaluate_many(customers):
        assert decision.figures
        for name, value in decision.figures.items():
            assert type(value) is Decimal, (decision.id, name)


def test_evaluate_raises_record_error(standard):
    with pytest.raises(RecordError) as caught:
        standard.evaluate({"id": "B", "revenue": "lots", "cost_of_goods": "1", "orders": "1"})
    assert caught.value.field == "revenue" and caught.value.id == "B"


# ---- evaluate_many -------------------------------------------------------------------------------


def _record(n: int) -> dict:
    return {"id": f"G-{n}", "revenue": f"{1000 + n}.00", "cost_of_goods": "700.00", "orders": str(n % 7)}


def test_evaluate_many_streams_from_a_generator(standard):
    produced = []

    def endless():
        for n in itertools.count(1):
            produced.append(n)
            yield _record(n)

    results = standard.evaluate_many(endless())
    first = next(results)
    assert first.id == "G-1" and first.row == 1
    assert len(produced) <= 2  # nothing read ahead beyond what was asked for
    more = list(itertools.islice(results, 4))
    assert [d.id for d in more] == ["G-2", "G-3", "G-4", "G-5"]
    assert len(produced) <= 6


def test_evaluate_many_order_errors_and_counts(standard):
    def records():
        for n in range(1, 101):
            record = _record(n)
            if n % 10 == 0:
                record["orders"] = "-1"  # invalid
            if n % 25 == 0:
                record = ["not", "a", "record"]
            yield record

    results = list(standard.evaluate_many(records()))
    assert len(results) == 100
    assert [r.row for r in results] == list(range(1, 101))
    errors = [r for r in results if isinstance(r, RecordError)]
    assert [e.row for e in errors] == [n for n in range(1, 101) if n % 10 == 0 or n % 25 == 0]
    assert all(isinstance(r, Decision) for r in results if r.row not in {e.row for e in errors})
    assert [r.id for r in results if isinstance(r, Decision)] == [
        f"G-{n}" for n in range(1, 101) if n % 10 and n % 25]


def test_evaluate_many_empty(standard):
    assert list(standard.evaluate_many(iter(()))) == []


def test_evaluate_many_matches_evaluate(standard, customers):
    many = [_summary(d) for d in standard.evaluate_many(customers[:50])]
    one = [_summary(standard.evaluate(r)) for r in customers[:50]]
    # evaluate() has no row number; everything else is the same
    assert [m[:1] + m[2:] for m in many] == [o[:1] + o[2:] for o in one]


# ---- threads -------------------------------------------------------------------------------------


def test_thread_safety(standard, customers):
    expected = [_summary(d) for d in standard.evaluate_many(customers)]
    assert len(expected) == 600
    results = [None] * 8
    failures = []
    barrier = threading.Barrier(8)

    def work(index):
        try:
            barrier.wait()
            results[index] = [_summary(d) for d in standard.evaluate_many(customers)]
        except BaseException as error:  # noqa: B902 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    for result in results:
        assert result == expected


def test_thread_safety_of_explanations(standard, customers):
    subset = customers[:60]
    expected = [str(standard.evaluate(r).explain()) for r in subset]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(index):
        barrier.wait()
        results[index] = [str(standard.evaluate(r).explain()) for r in subset]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(result == expected for result in results)


def test_evaluation_ignores_and_keeps_the_callers_decimal_context(standard, customers):
    import decimal

    expected = [_summary(d) for d in standard.evaluate_many(customers[:30])]
    with decimal.localcontext() as context:
        context.prec = 5
        context.rounding = decimal.ROUND_FLOOR
        got = [_summary(d) for d in standard.evaluate_many(customers[:30])]
        assert decimal.getcontext().prec == 5
    assert got == expected


# ---- check_policy ------------------------------------------------------------------------------


def test_check_policy_checks_as_load_policy_does_without_compiling(monkeypatch):
    from engine import check_policy, policy as policy_module
    loaded = load_policy(ROOT / "policies" / "portfolio.policy")
    monkeypatch.setattr(policy_module, "compile_policy", lambda checked: pytest.fail("check_policy compiled"))
    checked = check_policy(ROOT / "policies" / "portfolio.policy")
    assert (checked.passes, checked.warnings, checked.is_portfolio) == (loaded.passes, loaded.warnings, True)
    assert checked == loaded.checked
    with pytest.raises(PolicyError) as from_check:
        check_policy(BROKEN)
    monkeypatch.undo()
    with pytest.raises(PolicyError) as from_load:
        load_policy(BROKEN)
    assert from_check.value.diagnostics == from_load.value.diagnostics


def test_profit_check_never_compiles(monkeypatch, capsys):
    from engine import cli, policy as policy_module
    monkeypatch.setattr(policy_module, "compile_policy", lambda checked: pytest.fail("profit check compiled"))
    assert cli.main(["check", str(ROOT / "policies" / "portfolio.policy")]) == 0
    assert "pass 1: channel_team, marketing, word_of_mouth; pass 2: administration" in capsys.readouterr().out
