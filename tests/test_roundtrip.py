"""parse(format_policy(p)) == p: the formatter writes back exactly what the parser reads.

Random ASTs come from hypothesis (names that are not keywords, non-negative literals,
bounded depth); the shipped policies are round-tripped too. Spans, file names and
source text are left out of AST equality, so only the meaning is compared.
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ast
from engine.formatter import format_expr, format_policy
from engine.parser import lark_parser, parse

ROOT = Path(__file__).resolve().parent.parent

# Every word the lexer reads as a keyword rather than a name.
KEYWORDS = frozenset(
    t.pattern.value for t in lark_parser().terminals
    if t.pattern.type == "str" and t.pattern.value.isalpha()
)


def test_keyword_list_is_complete_enough():
    # Guard for the strategies below: if the keyword list came out empty or partial,
    # generated names would collide with keywords and the property would be meaningless.
    assert {"and", "or", "when", "else", "of", "per", "is", "not", "cost", "classify", "yes", "no"} <= KEYWORDS


def _is_name(word: str) -> bool:
    return word not in KEYWORDS and not re.fullmatch(r"[A-Z]{3}", word)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(_is_name)
labels = st.lists(names, min_size=1, max_size=3).map("-".join)
currencies = st.sampled_from(["EUR", "USD", "GBP", "CHF", "JPY"])
# Non-negative decimals of many shapes: 0, 7, 1234.50, 0.001, 5E+3 (written 5000).
decimals = st.builds(lambda digits, exponent: Decimal(digits).scaleb(exponent),
                     st.integers(0, 10**12), st.integers(-4, 3))
signed_decimals = st.builds(lambda d, negative: -d if negative else d, decimals, st.booleans())
texts = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"'),
                max_size=20)

numbers = st.builds(ast.Number, decimals)
percents = st.builds(ast.Percent, decimals)
moneys = st.builds(ast.Money, decimals, currencies)
rates = st.builds(ast.Rate, st.one_of(numbers, percents, moneys), names)
leaves = st.one_of(
    numbers, percents, moneys, rates,
    st.builds(ast.Text, texts), st.builds(ast.YesNo, st.booleans()), st.builds(ast.Name, names),
)
COMPARE_OPS = st.sampled_from([">", ">=", "<", "<=", "=", "!=", "=="])


def _extend(inner):
    binary = st.builds(ast.Binary, st.sampled_from(["+", "-", "*", "/", "of"]), inner, inner)
    logical = st.builds(ast.Logical, st.sampled_from(["and", "or"]), inner, inner)
    # Operators that nest into each other (and so need parentheses) are drawn most often.
    return st.one_of(
        binary, binary, binary, logical, logical,
        st.builds(ast.Negate, inner),
        st.builds(ast.Call, names, st.lists(inner, max_size=3).map(tuple)),
        st.builds(ast.Compare, COMPARE_OPS, inner, inner),
        st.builds(ast.Between, inner, inner, inner, st.booleans()),
        st.builds(ast.IsMissing, inner, st.booleans()),
        st.builds(ast.Not, inner),
        st.builds(ast.Conditional, inner, inner, inner),
    )


# Depth stays far below engine.parser.MAX_DEPTH (each level adds a few parse-tree levels).
expressions = st.recursive(leaves, _extend, max_leaves=12)

literals = st.one_of(
    st.builds(ast.Number, signed_decimals), percents, st.builds(ast.Money, signed_decimals, currencies),
    st.builds(ast.Text, texts), st.builds(ast.YesNo, st.booleans()),
)
fields = st.builds(
    ast.Field, names, st.one_of(st.sampled_from(["money", "count", "hours", "yes/no", "text"]), names),
    description=st.none() | texts, key=st.booleans(), optional=st.booleans(),
    default=st.none() | literals, column=st.none() | texts,
)
headers = st.one_of(
    st.builds(ast.Header, st.sampled_from(["policy", "version"]), texts),
    st.builds(ast.Header, st.just("currency"), currencies),
    st.builds(ast.Header, st.just("rank"), names),  # `rank by NAME`
    st.builds(ast.Rounding, labels, labels,
              st.one_of(names.map("per {}".format), st.tuples(names, names).map(" ".join))),
)
# `otherwise equally` only follows a driver: `allocate POOL equally` has nothing to fall back from.
allocations = st.builds(
    lambda pool, driver, within, fallback: ast.Allocate(pool, driver, within, fallback and driver is not None),
    expressions, st.none() | expressions, st.none() | names, st.booleans(),
)
# `anyway FLAG VALUE` comes as a pair.
referrals = st.builds(
    lambda value, via, levels, decay, cap, anyway: ast.Referral(
        value, via, levels, decay, cap, anyway[0] if anyway else None, anyway[1] if anyway else None),
    expressions, names, st.integers(0, 1000), decimals, st.none() | expressions,
    st.none() | st.tuples(names, expressions),
)
rules = st.builds(
    ast.Rule, labels, st.none() | expressions, action=st.none() | texts, reason=st.none() | texts,
)
statements = st.one_of(
    headers,
    st.builds(ast.Record, names, st.lists(fields, max_size=4).map(tuple)),
    st.builds(ast.Constants, st.sampled_from(["rates", "parameters"]),
              st.lists(st.builds(ast.Definition, st.just("rate"), names, expressions), max_size=3).map(tuple)),
    st.builds(ast.Definition, st.sampled_from(["cost", "credit", "measure", "threshold"]), names, expressions),
    st.builds(ast.Definition, st.sampled_from(["cost", "credit"]), names, allocations),
    st.builds(ast.Definition, st.just("credit"), names, referrals),
    st.builds(ast.Table, names, st.lists(st.tuples(texts, expressions), max_size=3).map(tuple)),
    st.builds(ast.Pool, names, expressions, numbers, names),  # the volume is a written number
    st.builds(ast.Classification, names, st.lists(rules, max_size=4).map(tuple)),
)
policies = st.builds(ast.Policy, st.lists(statements, max_size=8).map(tuple))


def _as_policy(expr) -> ast.Policy:
    return ast.Policy((ast.Definition("measure", "x", expr),))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_expressions_round_trip(expr):
    policy = _as_policy(expr)
    text = format_policy(policy)
    assert parse(text) == policy, text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies)
def test_policies_round_trip(policy):
    text = format_policy(policy)
    assert parse(text) == policy, text


@settings(max_examples=100, deadline=None)
@given(policies)
def test_format_is_a_fixed_point(policy):
    text = format_policy(policy)
    assert format_policy(parse(text)) == text


# ---- every operator in every operand slot of every operator ---------------------------
# Precedence and associativity mistakes show with two levels of nesting, so trying
# all pairs finds any of them for certain, where random trees find them by luck.

def _templates():
    """(description, number of operands, builder) for each operator form."""
    forms = [("-x", 1, lambda x: ast.Negate(x)),
             ("not x", 1, lambda x: ast.Not(x)),
             ("x is missing", 1, lambda x: ast.IsMissing(x, False)),
             ("x is not missing", 1, lambda x: ast.IsMissing(x, True)),
             ("f(x, y)", 2, lambda x, y: ast.Call("f", (x, y))),
             ("x when y else z", 3, lambda x, y, z: ast.Conditional(x, y, z)),
             ("x is between y and z", 3, lambda x, y, z: ast.Between(x, y, z, False)),
             ("x is not between y and z", 3, lambda x, y, z: ast.Between(x, y, z, True))]
    for op in ("+", "-", "*", "/", "of"):
        forms.append((f"x {op} y", 2, lambda x, y, op=op: ast.Binary(op, x, y)))
    for op in (">", ">=", "<", "<=", "=", "!=", "=="):
        forms.append((f"x {op} y", 2, lambda x, y, op=op: ast.Compare(op, x, y)))
    for op in ("and", "or"):
        forms.append((f"x {op} y", 2, lambda x, y, op=op: ast.Logical(op, x, y)))
    return forms


TEMPLATES = _templates()


def _filled(form):
    _, arity, build = form
    return build(*(ast.Name(n) for n in "abc"[:arity]))


@pytest.mark.parametrize("outer", TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_every_nesting_of_two_operators_round_trips(outer):
    _, arity, build = outer
    failures = []
    for slot in range(arity):
        for inner in TEMPLATES:
            operands = [ast.Name(n) for n in "pqr"[:arity]]
            operands[slot] = _filled(inner)
            expr = build(*operands)
            text = format_expr(expr)
            if parse(format_policy(_as_policy(expr))) != _as_policy(expr):
                failures.append(f"slot {slot} <- {inner[0]}: {text}")
    assert not failures, "\n".join(failures)


# ---- hand-picked cases the property could take long to find ------------------------------

N, M = ast.Name("a"), ast.Name("b")


@pytest.mark.parametrize("expr, text", [
    (ast.Binary("-", N, ast.Binary("-", M, ast.Name("c"))), "a - (b - c)"),
    (ast.Binary("-", ast.Binary("-", N, M), ast.Name("c")), "a - b - c"),
    (ast.Binary("*", ast.Binary("+", N, M), ast.Name("c")), "(a + b) * c"),
    (ast.Binary("of", ast.Percent(Decimal(5)), ast.Binary("+", N, M)), "5% of (a + b)"),
    (ast.Negate(ast.Binary("+", N, M)), "-(a + b)"),
    (ast.Negate(ast.Negate(N)), "--a"),
    (ast.Not(ast.Logical("or", N, M)), "not (a or b)"),
    (ast.Logical("and", N, ast.Logical("and", M, ast.Name("c"))), "a and (b and c)"),
    (ast.Compare(">", ast.Compare("=", N, M), ast.Name("c")), "(a = b) > c"),
    (ast.Conditional(ast.Conditional(N, M, N), M, N), "(a when b else a) when b else a"),
    (ast.Conditional(N, ast.Conditional(N, M, N), M), "a when (a when b else a) else b"),
    (ast.Conditional(N, M, ast.Conditional(N, M, N)), "a when b else a when b else a"),
    (ast.Between(ast.Logical("and", N, M), N, ast.Logical("and", N, M)),
     "(a and b) is between a and (a and b)"),
    (ast.IsMissing(ast.Binary("+", N, M), True), "a + b is not missing"),
    (ast.Call("max", (ast.Number(Decimal("1000")), ast.Number(Decimal("2")))), "max(1000, 2)"),
    (ast.Call("f", ()), "f()"),
    (ast.Rate(ast.Money(Decimal("38.00"), "EUR"), "hour"), "38.00 EUR per hour"),
    (ast.Binary("*", ast.Rate(ast.Percent(Decimal(2)), "month"), N), "2% per month * a"),
    (ast.Number(Decimal("5E+3")), "5000"),
])
def test_tricky_expressions(expr, text):
    assert format_expr(expr) == text
    assert parse(format_policy(_as_policy(expr))) == _as_policy(expr)


def test_field_defaults_keep_their_sign_and_kind():
    record = ast.Record("customer", (
        ast.Field("a", "money", default=ast.Money(Decimal("-12.50"), "EUR")),
        ast.Field("b", "number", default=ast.Number(Decimal(-3))),
        ast.Field("c", "percent", default=ast.Percent(Decimal("2.5")), column="C col", description="d"),
        ast.Field("d", "yes/no", default=ast.YesNo(False), key=True, optional=True),
        ast.Field("e", "text", default=ast.Text("")),
    ))
    policy = ast.Policy((record,))
    assert parse(format_policy(policy)) == policy


def test_empty_policy_and_empty_sections():
    assert format_policy(ast.Policy(())) == ""
    policy = ast.Policy((ast.Record("r", ()), ast.Constants("rates", ()), ast.Classification("c", ())))
    assert parse(format_policy(policy)) == policy


def test_rates_outside_a_block_are_refused():
    with pytest.raises(ValueError):
        format_policy(ast.Policy((ast.Definition("rate", "r", ast.Number(Decimal(1))),)))


# ---- the shipped policies -------------------------------------------------------------

SHIPPED = sorted(p for p in (ROOT / "policies").glob("*.policy"))


def test_standard_policy_is_shipped():
    assert ROOT / "policies" / "standard.policy" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_round_trips(path):
    original = parse(path.read_text(encoding="utf-8"), str(path))
    text = format_policy(original)
    again = parse(text)
    assert again == original
    assert format_policy(again) == text
    # Nothing was lost on the way: same number of figures, fields and rules.
    assert len(again.statements) == len(original.statements)


def test_canonical_text_of_a_small_policy():
    source = (
        'policy "P"   # comment\n'
        "currency EUR\n"
        "record customer\n"
        '  id text key "Customer number"\n'
        "  revenue money default 0\n"
        "rates\n"
        "  r = 2.50 EUR per call\n"
        "cost c = calls\n"
        "   * r\n"
        "cost longer_name = 1 EUR\n"
        "classify class\n"
        "  good when revenue > 0 EUR action \"Keep\"\n"
        "  bad-one otherwise\n"
    )
    assert format_policy(parse(source)) == (
        'policy "P"\n'
        "currency EUR\n"
        "\n"
        "record customer\n"
        '  id      text  key "Customer number"\n'
        "  revenue money default 0\n"
        "\n"
        "rates\n"
        "  r = 2.50 EUR per call\n"
        "\n"
        "cost c           = calls * r\n"
        "cost longer_name = 1 EUR\n"
        "\n"
        "classify class\n"
        "  good    when revenue > 0 EUR\n"
        '          action "Keep"\n'
        "  bad-one otherwise\n"
    )


def test_rank_is_written_among_the_headers():
    source = 'policy "P"\ncurrency EUR\nrounding half-up to cents per line\nrank  by   profit\nmeasure profit = 1 EUR\n'
    policy = parse(source)
    assert policy.statements[3] == ast.Header("rank", "profit")
    assert format_policy(policy) == (
        'policy "P"\ncurrency EUR\nrounding half-up to cents per line\nrank by profit\n\nmeasure profit = 1 EUR\n')
    assert parse(format_policy(policy)) == policy


def test_portfolio_and_referral_statements_round_trip():
    source = (
        "table sales_pools\n"
        '  "north" = 120,000 EUR\n'
        '  "south-east" = 80,000 EUR\n'
        "pool support_centre = 560,000 EUR over 700,000 minutes\n"
        "cost a = allocate sales_pools by revenue within region otherwise equally\n"
        "cost b = allocate 50,000 EUR equally\n"
        "cost c = allocate 50,000 EUR equally within region\n"
        "credit d = allocate 1 EUR + 2 EUR by x when y else z\n"
        "credit e = referred 5% of revenue via referred_by levels 2 decay 50% cap 50,000 EUR\n"
        "credit f = referred a when b else c via r anyway came_anyway 0 EUR\n"
    )
    policy = parse(source)
    assert parse(format_policy(policy)) == policy
    assert "  \"south-east\" = 80,000 EUR\n" in format_policy(policy)
