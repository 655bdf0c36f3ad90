"""The checker: one case per diagnostic it emits, with the line it points at.

Each case edits a small valid policy (BASE) and names the text the diagnostic must
point at; the expected line and column are found by searching the source for it,
so the cases do not break when BASE grows.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import List, Optional

import attrs
import pytest

from engine.checker import MAX_NAMES, check
from engine.diagnostics import PolicyError
from engine.parser import parse
from golden import check_golden

BASE = """\
policy "Test"
currency EUR

record customer
  id            text    key
  revenue       money
  cost_of_goods money   default 0
  orders        count   default 0
  visits        count   default 0
  staff_hours   hours   default 0
  days_late     days    default 0
  region        text    optional
  vip           yes/no  default no
  share_field   percent default 0%

rates
  visit_rate = 120.00 EUR per visit
  wage       = 45.00 EUR per hour
  commission = 5%

cost service    = visits * visit_rate + staff_hours * wage
cost commission_cost = commission of revenue
measure profit  = revenue - cost_of_goods - costs

classify class
  profitable   when profit > 0 EUR
  unprofitable otherwise
"""


def test_base_policy_is_valid():
    checked = check(parse(BASE, "t.policy"))
    assert checked.warnings == ()
    assert checked.key == "id"
    assert checked.bottom_line == "profit"


@pytest.mark.parametrize("header, added, bottom_line", [
    ("", "measure net = profit - 1 EUR\n", "profit"),  # the measure `profit`, though not the last
    ("", "measure ratio = profit / revenue\n", "profit"),
    ("rank by net\n", "measure net = profit - 1 EUR\n", "net"),  # stated
    ("rank by costs\n", "", "costs"),  # any money figure may be stated
])
def test_the_bottom_line_is_stated_or_found_by_the_documented_rule(header, added, bottom_line):
    source = edit(("currency EUR\n", "currency EUR\n" + header), append=added)
    assert check(parse(source, "t.policy")).bottom_line == bottom_line


def test_without_profit_the_last_money_measure_is_the_bottom_line():
    source = edit(("measure profit  = revenue - cost_of_goods - costs", "measure gain = revenue - costs"),
                  ("profit > 0 EUR", "gain > 0 EUR"), append="measure rate_of_gain = gain / revenue\n")
    assert check(parse(source, "t.policy")).bottom_line == "gain"


def diagnostics_of(source: str) -> tuple:
    """Every diagnostic (errors and warnings) the checker finds."""
    policy = parse(source, "t.policy")
    try:
        return check(policy).warnings
    except PolicyError as error:
        return error.diagnostics


def edit(*changes, append: str = "") -> str:
    """BASE with (old, new) replacements applied and `append` added at the end."""
    source = BASE
    for old, new in changes:
        assert old in source, old
        source = source.replace(old, new, 1)
    return source + append


def position(source: str, text: str, occurrence: int = 1):
    """1-based line and column of the `occurrence`-th appearance of `text`; a `|` in
    `text` marks the exact column meant (`"cost c = |orders"` points at `orders`)."""
    offset = max(text.find("|"), 0)
    text = text.replace("|", "")
    index = -1
    for _ in range(occurrence):
        index = source.index(text, index + 1)
    index += offset
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


REFERRAL = "referred 5% of revenue via region"
POOLS = 'table pools\n  "north" = 10 EUR\n  "south" = 20 EUR\ncost shared = allocate pools by orders within region\n'
# a record that is one customer in one quarter: the policy reads histories
PERIOD = ("  id            text    key\n", "  id            text    key\n  period        quarter\n")
WARN = 'warn loss when profit < 0 EUR\n     message "Losing money"\n'


@attrs.frozen
class Case:
    code: str
    source: str
    at: Optional[str]  # the text the diagnostic points at (None: line 1, column 1)
    message: str = ""
    help: str = ""
    severity: str = "error"
    occurrence: int = 1


CASES = {
    # ---- names
    "unknown name with suggestion": Case(
        "unknown-name", edit(append="measure m = revnue * 2\n"), "revnue",
        "unknown name 'revnue'", "did you mean 'revenue'?"),
    "unknown name without suggestion": Case(
        "unknown-name", edit(append="measure m = zzz\n"), "zzz", "'zzz'", "define it"),
    "duplicate name": Case(
        "duplicate-name", edit(append="measure profit = revenue\n"), "measure profit = revenue\n",
        f"'profit' is already defined (first defined on line {position(BASE, 'measure profit')[0]})", "own name"),
    "duplicate field": Case(
        "duplicate-name", edit(("  vip ", "  orders        count\n  vip ")), "orders        count\n", "'orders'"),
    "name of a total": Case(
        "duplicate-name", edit(append="measure costs = revenue\n"), "measure costs", "total of all costs"),
    "cycle": Case(
        "cycle", edit(append="measure a = b + 1 EUR\nmeasure b = a\n"), "measure a", "'a' depends on itself: a → b → a"),
    "cost uses costs": Case(
        "cycle", edit(append="cost loop = 1% of costs\n"), "cost loop", "depends on itself",
        "`costs` is the total of all costs"),
    "class in figure": Case(
        "class-in-figure", edit(append='measure m = revenue when class = "x" else 0 EUR\n'), "class =",
        "'class' is a classification"),
    "class order": Case(
        "class-order",
        edit(("classify class\n", 'classify tier\n  top when class = "profitable"\n  rest otherwise\n'
              "classify class\n")), 'class = "profitable"', "'class' is not decided yet"),
    "too many names": Case(
        "too-many-names", edit(append="".join(f"measure m{i} = 1\n" for i in range(MAX_NAMES))),
        f"measure m{MAX_NAMES - 14}", f"at most {MAX_NAMES} names"),
    # ---- units
    "money plus percent": Case(
        "unit", edit(append="measure m = revenue + 5%\n"), "revenue + 5%",
        "cannot add money and a percentage", "`5% of revenue`"),
    "money times money": Case(
        "unit", edit(append="measure m = revenue * cost_of_goods\n"), "revenue * cost_of_goods",
        "multiplying money by money", "count, a rate or a percentage"),
    "compare money with count": Case(
        "unit", edit(("profit > 0 EUR", "profit > orders")), "profit > orders",
        "cannot compare money and a count", "same unit"),
    "subtract hours from money": Case(
        "unit", edit(append="measure m = revenue - staff_hours\n"), "revenue - staff_hours",
        "cannot subtract money and hours"),
    "rate driven by the wrong quantity": Case(
        "unit", edit(append="cost c = staff_hours * visit_rate\n"), "staff_hours * visit_rate",
        "hours cannot drive a rate per visit"),
    "divide by money": Case(
        "unit", edit(append="measure m = orders / revenue\n"), "orders / revenue", "cannot divide a count by money"),
    "arithmetic on text": Case(
        "unit", edit(append="measure m = region + 1\n"), "region + 1", "arithmetic needs numbers"),
    "text compared with <": Case(
        "unit", edit(("profit > 0 EUR", 'region > "a"')), 'region > "a"', "only be tested with `=` or `!=`"),
    "negate text": Case(
        "unit", edit(append="measure m = -region\n"), "-region", "needs a number, but it is text"),
    "branches differ": Case(
        "unit", edit(append="measure m = revenue when vip else 5%\n"), "revenue when vip",
        "the two branches differ", "`when ... else`"),
    "between with wrong bound": Case(
        "unit", edit(("profit > 0 EUR", "profit is between 0 EUR and orders")), "and |orders",
        "cannot compare money and a count"),
    "min of mixed units": Case(
        "unit", edit(append="measure m = min(revenue, orders)\n"), "orders)", "money and a count"),
    "EUR with USD amount": Case(
        "currency", edit(append="measure m = revenue + 5 USD\n"), "5 USD",
        "in USD, but the policy is in EUR", "does not convert"),
    "unknown currency in amount": Case(
        "unknown-currency", edit(append="measure m = revenue + 5 EUX\n"), "5 EUX", "unknown currency 'EUX'"),
    "unknown currency header": Case(
        "unknown-currency", edit(("currency EUR", "currency EUX")), "currency EUX", "unknown currency 'EUX'",
        "did you mean"),
    "not money cost": Case(
        "not-money", edit(append="cost c = orders\n"), "cost c = |orders", "the cost 'c' is a count, not money",
        "visits * visit_rate"),
    "not money credit": Case(
        "not-money", edit(append="credit c = 5%\n"), "credit c = |5%", "the credit 'c' is a percentage"),
    "rate uses record": Case(
        "rate-uses-record", edit(("  commission = 5%\n", "  commission = 5%\n  r = revenue * 2\n")),
        "revenue * 2", "the rate 'r' uses 'revenue', which is a record field", "make this a measure"),
    "rate uses measure": Case(
        "rate-uses-record", edit(("  commission = 5%\n", "  commission = 5%\n  r = profit\n")),
        "profit\n", "which is a measure"),
    "double equals": Case(
        "double-equals", edit(("profit > 0 EUR", "profit == 0 EUR")), "profit == 0 EUR", "`==`", "write `=`"),
    "of needs percent": Case(
        "of-needs-percent", edit(append="measure m = 5 of revenue\n"), "5 of", "not the number 5", "`5%`"),
    "of needs percent, fraction": Case(
        "of-needs-percent", edit(append="measure m = 0.05 of revenue\n"), "0.05 of", "not the number 0.05", "`5%`"),
    "of with money on the left": Case(
        "unit", edit(append="measure m = revenue of revenue\n"), "revenue of revenue", "`of` takes a percentage"),
    "not a condition": Case(
        "not-a-condition", edit(("profit > 0 EUR", "profit")), "when |profit", "a rule needs a condition"),
    "not a condition in and": Case(
        "not-a-condition", edit(append="measure m = 1 EUR when vip and orders else 0 EUR\n"), "orders else",
        "`and` needs a condition, but this is a count"),
    "bare number next to a percentage": Case(
        "percent-literal", edit(("profit > 0 EUR", "share_field > 5")), "share_field > |5",
        "5 next to a percentage is ambiguous", "write `share_field > 5%` (5 percent), or `share_field > 500%`"),
    "bare fraction next to a percentage": Case(
        "percent-literal", edit(("profit > 0 EUR", "share_field > 0.05")), "share_field > |0.05",
        "ambiguous", "write `share_field > 5%` (0.05 as a whole), or `share_field > 0.05%`"),
    "rank by an unknown figure": Case(
        "rank-unknown", edit(("currency EUR\n", "currency EUR\nrank by proft\n")), "rank by proft",
        "'proft' is not a figure or field of this policy", "did you mean 'profit'?"),
    "rank by a percentage": Case(  # adding up percentages over customers as money means nothing
        "rank-not-money", edit(("currency EUR\n", "currency EUR\nrank by share\n"), append="measure share = 5%\n"),
        "rank by share", "customers are ranked by money, but 'share' is a percentage", "name a money figure"),
    "hours drive no rate per minute": Case(  # a pool over 700,000 minutes is a rate per minute
        "unit", edit(append="pool centre = 560,000 EUR over 700,000 minutes\ncost support = staff_hours * centre\n"),
        "staff_hours * centre", "hours cannot drive a rate per minute", "multiply a rate per minute by a count"),
    "one plus a percentage": Case(  # `1%` would check and silently compute the wrong thing
        "percent-literal", edit(append="measure m = 1 + share_field\n"), "= |1 +",
        "1 next to a percentage is ambiguous", "write `100% + share_field` (1 as a whole), or `1% + share_field`"),
    "missing test on a figure": Case(
        "missing-test", edit(("profit > 0 EUR", "profit is missing")), "profit is missing",
        "only a record field"),
    # ---- functions
    "unknown function": Case(
        "unknown-function", edit(append="measure m = sqrt(revenue)\n"), "sqrt(revenue)", "'sqrt'",
        "min, max, abs, round"),
    "unknown function with suggestion": Case(
        "unknown-function", edit(append="measure m = mn(revenue, 0 EUR)\n"), "mn(", "'mn'", "did you mean 'min'?"),
    "arity": Case(
        "arity", edit(append="measure m = abs(revenue, revenue)\n"), "abs(", "abs() got 2 values", "takes 1 value"),
    "arity thousands separator": Case(
        "arity", edit(append="measure m = max(1,000)\n"), "max(", "max() got 1 value", "thousands separator"),
    "round places": Case(
        "round-places", edit(append="measure m = round(revenue, 2.5)\n"), "2.5", "whole number of decimal places"),
    # ---- the record
    "unknown type": Case(
        "unknown-type", edit(("region        text ", "region        txt  ")), "region", "unknown field type 'txt'",
        "did you mean 'text'?"),
    "bad default": Case(
        "bad-default", edit(("vip           yes/no  default no", "vip           yes/no  default 3")), "3\n",
        "does not fit its type yes/no", "`yes` or `no`"),
    "bad default money": Case(
        "bad-default", edit(("cost_of_goods money   default 0", 'cost_of_goods money   default "0"')), '"0"',
        "does not fit its type money"),
    "bad default count": Case(
        "bad-default", edit(("orders        count   default 0", "orders        count   default 1.5")), "1.5",
        "whole number"),
    "missing key": Case(
        "missing-key", edit(("  id            text    key\n", "  ident         text\n")), "record customer",
        "no key field", "`key`"),
    "duplicate key": Case(
        "duplicate-key", edit(("revenue       money", "revenue       money key")), "revenue ",
        "only one field can be the key", "'id' is already the key"),
    "optional key": Case(
        "optional-key", edit(("id            text    key", "id            text    key optional")), "id ",
        "'id' cannot be optional"),
    "optional default": Case(
        "optional-default", edit(("orders        count   default 0", "orders        count   default 0 optional")),
        "orders ", "both optional and has a default"),
    "missing record": Case(
        "missing-record", edit(("record customer\n", "record customer\n")).split("record customer\n")[0]
        + "classify class\n  a otherwise\n", None, "no record section"),
    "duplicate record": Case(
        "duplicate-record", edit(append="record other\n  x text key\n"), "record other", "one record section"),
    # ---- headers
    "missing header": Case(
        "missing-header", edit(('policy "Test"\n', "")), None, "no 'policy' line", 'policy "'),
    "missing currency": Case(
        "missing-header", edit(("currency EUR\n", "")), None, "no 'currency' line", "currency EUR"),
    "duplicate header": Case(
        "duplicate-header", edit(("currency EUR\n", "currency EUR\ncurrency EUR\n")), "currency EUR", "'currency' is given twice",
        occurrence=2),
    "bad rounding": Case(
        "bad-rounding", edit(("currency EUR\n", "currency EUR\nrounding half-upp to cents per line\n")), "rounding",
        "unknown rounding mode 'half-upp'", "did you mean 'half-up'?"),
    "bad rounding scope": Case(
        "bad-rounding", edit(("currency EUR\n", "currency EUR\nrounding half-up to cents per order\n")), "rounding",
        "unknown rounding scope 'per order'"),
    # ---- classifications
    "missing otherwise": Case(
        "missing-otherwise", edit(("  unprofitable otherwise\n", "  unprofitable when profit <= 0 EUR\n")),
        "unprofitable", "'class' has no `otherwise` rule", "catch-all"),
    "unreachable after otherwise": Case(
        "unreachable", edit(append="  late when profit > 0 EUR\n"), "  |late when", "'late' comes after `otherwise`",
        "move it above"),
    "always true rule": Case(
        "unreachable", edit(("profit > 0 EUR", "1 = 1")), "profitable", "always holds", "otherwise",
        severity="warning"),
    "always true yes": Case(
        "unreachable", edit(("profit > 0 EUR", "yes or profit > 0 EUR")), "profitable", "always holds",
        severity="warning"),
    "unknown class label": Case(
        "unknown-label", edit(append='classify tier\n  top when class = "profitible"\n  rest otherwise\n'),
        '"profitible"', "'class' never gives the label \"profitible\"", "did you mean 'profitable'?"),
    # ---- pooled costs over the portfolio
    "bad driver": Case(
        "bad-driver", edit(append="cost shared = allocate 1,000 EUR by region\n"), "by |region",
        "a driver must be a number, but this is text"),
    "bad group": Case(
        "bad-group", edit(append="cost shared = allocate 1,000 EUR by orders within regoin\n"), "allocate 1,000",
        "'regoin' is not a text field", "did you mean 'region'?"),
    "duplicate group": Case(
        "duplicate-group", edit(append=POOLS.replace('"south" = 20 EUR', '"north" = 20 EUR')), '"north" = |20 EUR',
        "the group \"north\" appears twice in table 'pools'"),
    "table line not money": Case(
        "table-amount", edit(append=POOLS.replace("20 EUR", "20")), '"south" = |20', "amount of money"),
    "table without within": Case(
        "table-needs-within", edit(append=POOLS.replace(" within region", "")), "allocate pools",
        "the table 'pools' holds a pool per group", "within"),
    "table used as a figure": Case(
        "table-use", edit(append=POOLS + "measure m = pools\n"), "m = |pools", "only be shared out with `allocate`"),
    "allocation pool not an amount": Case(
        "pool-amount", edit(append="cost shared = allocate revenue by orders\n"), "allocate |revenue",
        "the pool of an allocation is an amount"),
    "capacity pool not money": Case(
        "pool-amount", edit(append="pool centre = 5 over 100 minutes\n"), "centre = |5", "must be written as money"),
    "capacity pool volume zero": Case(
        "pool-volume", edit(append="pool centre = 5,000 EUR over 0 minutes\n"), "over |0", "above zero"),
    # ---- word of mouth
    "referral via a field that is not text": Case(
        "bad-referral-field", edit(append="credit w = referred 5% of revenue via orders\n"), "referred 5%",
        "'orders' is not a text field of the record"),
    "referral anyway flag not yes/no": Case(
        "bad-referral-field", edit(append=f"credit w = {REFERRAL} anyway region 0 EUR\n"), "referred 5%",
        "'region' is not a yes/no field"),
    "referral levels": Case(
        "referral-levels", edit(append=f"credit w = {REFERRAL} levels 9\n"), "referred 5%", "1 to 5 levels"),
    "referral decay": Case(
        "referral-decay", edit(append=f"credit w = {REFERRAL} decay 150%\n"), "referred 5%", "0% to 100%"),
    "referral cap": Case(
        "referral-cap", edit(append=f"credit w = {REFERRAL} cap 5%\n"), "cap |5%", "the cap is an amount of money"),
    "referral value not money": Case(
        "not-money", edit(append="credit w = referred orders via region\n"), "referred |orders",
        "what a referred customer brings must be money"),
    "missing classify": Case(
        "missing-classify", BASE.split("classify class")[0], None, "no classification", "`classify class`"),
    # ---- histories
    "second period field": Case(
        "duplicate-period", edit(PERIOD, ("  revenue ", "  month         month\n  revenue ")), "month         month",
        "'period' is already the period of each record", "one period field"),
    "optional period": Case(
        "optional-period", edit(("  id            text    key\n", "  id            text    key\n"
                                 "  period        quarter optional\n")), "period ",
        "the period field 'period' cannot be optional or have a default", "names its own period"),
    "second history block": Case(
        "duplicate-history", edit(PERIOD, append="history\n  input sorted\nhistory\n  decide every period\n"),
        "history\n  decide", "a policy has one `history` block", "merge its lines"),
    "unknown history line": Case(
        "history-option", edit(PERIOD, append="history\n  input sortd\n"), "  |input sortd",
        "a history line 'input sortd' is not one the engine knows", "write `input sorted` or `input unsorted`"),
    "unknown history line without suggestion": Case(
        "history-option", edit(PERIOD, append="history\n  keep everything\n"), "  |keep everything",
        "'keep everything'", "write one of: missing periods are zero;"),
    "history line given twice": Case(
        "duplicate-option", edit(PERIOD, append="history\n  input sorted\n  input unsorted\n"),
        "  |input unsorted", f"'input unsorted' repeats the setting of 'input sorted' on line {BASE.count(chr(10)) + 3}", "keep one"),
    "history without a period": Case(
        "history-without-period", edit(append="history\n  input sorted\n"), "history\n",
        "the policy has a `history` block, but no record field is a period", "`period quarter`"),
    "history function without a history": Case(
        "no-history", edit(append="measure t = trend(profit, 4)\n"), "trend(profit, 4)",
        "trend() reads earlier periods, but a record of this policy is a single period", "period field"),
    "history function of a formula": Case(
        "history-argument", edit(PERIOD, append="measure t = trend(revenue - cost_of_goods, 4)\n"),
        "trend(|revenue", "the past values of a named field or figure", "define a measure for a formula first"),
    "history window of no periods": Case(
        "history-periods", edit(PERIOD, append="measure t = sum_last(profit, 0)\n"), "profit, |0",
        "a whole number from 1 to 120"),
    "history window from a field": Case(
        "history-periods", edit(PERIOD, append="measure t = change(profit, orders)\n"), "profit, |orders",
        "a whole number from 1 to 120", "e.g. 4 for the last four quarters"),
    "history with pooled costs": Case(
        "history-portfolio", edit(PERIOD, append=POOLS), "cost shared",
        "a history policy cannot share out pooled costs (`allocate`)", "a policy of single periods"),
    "history with referrals": Case(
        "history-portfolio", edit(PERIOD, append=f"credit w = {REFERRAL}\n"), "credit w",
        "or credit word of mouth (`referred`)"),
    # ---- warnings beside the classification
    "warning name twice": Case(
        "duplicate-warning", edit(append=WARN + WARN.replace("< 0 EUR", "< -100 EUR")), "warn loss",
        f"the warning 'loss' is already defined on line {BASE.count(chr(10)) + 1}", "its own name", occurrence=2),
    "warning that never fires": Case(
        "never-fires", edit(append=WARN.replace("profit < 0 EUR", "profit < profit")), "when |profit < profit",
        "the warning 'loss' can never fire", "depend on the record", severity="warning"),
    "warning that never fires, numbers": Case(
        "never-fires", edit(append=WARN.replace("profit < 0 EUR", "vip and 1 > 2")), "when |vip",
        "can never fire", severity="warning"),
    "warning that always fires": Case(
        "always-fires", edit(append=WARN.replace("profit < 0 EUR", "yes or profit < 0 EUR")), "when |yes",
        "the warning 'loss' fires on every decision", "depend on the record", severity="warning"),
    "warning without a message": Case(
        "missing-message", edit(append="warn loss when profit < 0 EUR\n"), "warn loss",
        "the warning 'loss' has no message", '`message "'),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_diagnostic(case: Case):
    found = diagnostics_of(case.source)
    matching = [d for d in found if d.code == case.code]
    assert matching, f"no {case.code} among {[(d.code, d.message) for d in found]}"
    line, column = position(case.source, case.at, case.occurrence) if case.at else (1, 1)
    here = [d for d in matching if (d.span.line, d.span.column) == (line, column)]
    assert here, f"{case.code} not at {line}:{column}: {[(d.span, d.message) for d in matching]}"
    (diagnostic,) = here[:1]
    assert case.message in diagnostic.message
    assert case.help in (diagnostic.help or "")
    assert diagnostic.severity == case.severity
    assert diagnostic.filename == "t.policy"
    if case.severity == "warning":
        assert not [d for d in found if d.is_error], "a warning alone must not stop the policy"


def test_every_checker_code_has_a_case():
    import re
    checker = (Path(__file__).resolve().parent.parent / "engine" / "checker.py").read_text()
    emitted = set(re.findall(r'report\(\s*"([a-z-]+)"', checker))
    covered = {case.code for case in CASES.values()}
    assert emitted - covered == set()


# ---- several problems at once ---------------------------------------------------------------

def test_all_errors_reported_at_once():
    source = edit(
        ("region        text ", "region        txt  "),          # unknown-type
        ("profit > 0 EUR", "profit == 0 EUR"),                   # double-equals
        ("  unprofitable otherwise\n", "  unprofitable when profit < 0 EUR\n"),  # missing-otherwise
        append="measure m = revnue * 2\n"                        # unknown-name
               "measure n = revenue + 5 USD\n",                  # currency
    )
    found = diagnostics_of(source)
    assert sorted(d.code for d in found) == sorted(
        ["unknown-type", "double-equals", "missing-otherwise", "unknown-name", "currency"])
    assert [d.span.line for d in found] == sorted(d.span.line for d in found)


def test_errors_and_warnings_together():
    source = edit(("profit > 0 EUR", "1 = 1"), append="measure m = zzz\n")
    with pytest.raises(PolicyError) as caught:
        check(parse(source))
    assert {d.code for d in caught.value.diagnostics} == {"unreachable", "unknown-name"}
    assert [d.code for d in caught.value.errors] == ["unknown-name"]
    assert "1 error, 1 warning" in str(caught.value)


def test_every_unknown_name_in_one_formula():
    found = diagnostics_of(edit(append="measure m = aaa + bbb * ccc\n"))
    assert [d.message for d in found if d.code == "unknown-name"] == [
        "unknown name 'aaa'", "unknown name 'bbb'", "unknown name 'ccc'"]


def test_unknown_name_reported_once():
    found = diagnostics_of(edit(append="measure m = revnue + 1 EUR\n"))
    assert [d.code for d in found] == ["unknown-name"]


def test_one_mistake_one_diagnostic():
    # An error must not cascade into errors about every figure that uses the broken one.
    found = diagnostics_of(edit(("measure profit  = revenue - cost_of_goods - costs",
                                 "measure profit  = revenue - cost_of_goods - costs + 5%")))
    assert [d.code for d in found] == ["unit"]


# ---- what a valid policy turns into -------------------------------------------------------

def test_figures_come_in_dependency_order():
    source = edit(append="measure late = early * 2\nmeasure early = profit + 1 EUR\n")
    order = [f.name for f in check(parse(source)).figures]
    assert order.index("profit") < order.index("early") < order.index("late")
    assert order.index("service") < order.index("costs") < order.index("profit")


def test_field_specs_and_defaults():
    checked = check(parse(BASE))
    specs = {f.name: f for f in checked.fields}
    assert specs["orders"].default == Decimal(0)
    assert specs["region"].optional and specs["region"].default is None
    assert specs["vip"].default is False
    assert specs["share_field"].default == Decimal(0)
    assert checked.rounding.per_line and str(checked.rounding) == "half-up to cents per line"


def test_standard_and_strict_policies_check_clean():
    for path in sorted((Path(__file__).resolve().parent.parent / "policies").glob("*.policy")):
        checked = check(parse(path.read_text(encoding="utf-8"), str(path)))
        assert checked.warnings == (), path


# ---- golden renderings ------------------------------------------------------------------------
# tests/golden/errors/NAME.policy holds a broken policy, NAME.txt the exact text of the
# PolicyError it raises (what an analyst sees). After an intended change of wording:
#     UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_checker.py -k golden
#     git diff tests/golden/errors/

GOLDEN = Path(__file__).resolve().parent / "golden" / "errors"
GOLDEN_CASES = sorted(p.stem for p in GOLDEN.glob("*.policy"))


def _rendered_error(name: str) -> str:
    source = (GOLDEN / f"{name}.policy").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        check(parse(source, f"{name}.policy"))  # a relative name: the same on every machine
    return str(caught.value) + "\n"


def test_every_golden_policy_has_its_rendering():
    assert {p.stem for p in GOLDEN.glob("*.txt")} == set(GOLDEN_CASES)
    assert {"syntax_errors", "units", "unknown_names", "cycle", "record", "currency"} <= set(GOLDEN_CASES)


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_error_text(name):
    check_golden(GOLDEN / f"{name}.txt", _rendered_error(name), "error text")


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden_error_layout(name):
    """What must hold whatever the wording: a header per diagnostic, the source line under it,
    a caret under the span, and a count at the end."""
    source = (GOLDEN / f"{name}.policy").read_text(encoding="utf-8")
    lines = source.splitlines()
    with pytest.raises(PolicyError) as caught:
        check(parse(source, f"{name}.policy"))
    error = caught.value
    blocks = str(error).split("\n\n")
    assert len(blocks) == len(error.diagnostics) + 1
    errors, warnings = len(error.errors), len(error.diagnostics) - len(error.errors)
    assert blocks[-1] == f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    for diagnostic, block in zip(error.diagnostics, blocks):
        head, quoted, caret, *rest = block.split("\n")
        span = diagnostic.span
        assert head.startswith(f"{name}.policy:{span.line}:{span.column}: {diagnostic.severity}[{diagnostic.code}]: ")
        assert quoted == f"{span.line:>4} | " + lines[span.line - 1].expandtabs(1)
        gutter = quoted.index("| ") + 2
        assert caret[:gutter].strip() == "|"
        assert caret[gutter:].lstrip(" ").startswith("^")
        assert len(caret) - len(caret[gutter:].lstrip(" ")) == gutter + span.column - 1
        assert rest == ([f"     = help: {diagnostic.help}"] if diagnostic.help else [])


# ---- regressions: bugs found while writing these tests -----------------------------------------

def codes(source: str) -> List[str]:
    return [d.code for d in diagnostics_of(source)]


@pytest.mark.parametrize("total", ["costs", "credits"])
def test_rate_using_a_total(total):
    source = edit(("  commission = 5%\n", f"  commission = 5%\n  r = 2 * {total}\n"))
    assert "rate-uses-record" in codes(source)


@pytest.mark.parametrize("source, earlier, later", [
    (edit(append="measure class = 1\n"), "classify class", "measure class"),
    (BASE.replace("record customer\n", "measure orders = 1\nrecord customer\n"),
     "measure orders", "orders        count"),
], ids=["measure after classify", "measure before record"])
def test_duplicate_name_points_at_the_second_definition(source, earlier, later):
    (diagnostic,) = diagnostics_of(source)
    assert diagnostic.code == "duplicate-name"
    assert diagnostic.span.line == position(source, later)[0]
    assert f"first defined on line {position(source, earlier)[0]}" in diagnostic.message


@pytest.mark.parametrize("typo, meant", [("EUX", "EUR"), ("USS", "USD"), ("GPB", "GBP")])
def test_currency_typo_suggests_the_likely_currency(typo, meant):
    for source in (edit(append=f"measure m = revenue + 5 {typo}\n"), edit(("currency EUR", f"currency {typo}"))):
        (diagnostic,) = [d for d in diagnostics_of(source) if d.code == "unknown-currency"]
        assert f"did you mean '{meant}'?" in diagnostic.help


def test_bad_group_does_not_suggest_the_rejected_field():
    (diagnostic,) = diagnostics_of(edit(append="cost shared = allocate 1,000 EUR by orders within orders\n"))
    assert diagnostic.code == "bad-group"
    assert "'orders'?" not in diagnostic.help


def test_valid_portfolio_statements_check_clean():
    source = edit(append=POOLS + "pool centre = 5,000 EUR over 100 calls\n"
                  "cost support = orders * centre\ncost even = allocate 1,000 EUR equally\n")
    assert diagnostics_of(source) == ()


def test_fractional_referral_levels_are_refused():
    source = edit(append=f"credit w = {REFERRAL} levels 2.5\n")
    try:
        found = diagnostics_of(source)
    except PolicyError as error:  # a syntax error would do as well
        found = error.diagnostics
    assert any(d.span.line == position(source, "credit w")[0] for d in found)
