"""A portfolio report of one run: totals per class, the whale curve, who earns and who sinks.

    report = build_report(policy, policy.run(records))
    html_page = render_html(report)      # one self-contained page, chart as inline SVG
    summary = render_text(report)        # a short summary for the terminal

`build_report` consumes the results once, as they stream, and keeps per decision only
what the report needs (its id, name, class, revenue, cost, profit, credits and largest
cost line). Every amount in the report is an exact Decimal; only the SVG drawing
positions are floats. Nothing in the report depends on the clock or the machine, so the
same policy and data always give the same page, byte for byte.

How the class table adds up (`Report.columns`): the policy's bottom line is expanded
through its measures into a signed sum of named money figures and fields (for the
shipped policies: profit = revenue - cost_of_goods - costs + credits), and each of them
is a column. Whatever part of the bottom line is not such a sum (a product, a condition,
a rounding, a literal amount) is shown as one more column, "other": for each customer
the bottom line minus the named columns, so every row adds up exactly either way. A
total that adds nothing (`credits` in a policy without credits) is left out.

A customer's name (`Customer.name`) is read from the record's text field `name`, else
from the first text field whose name ends in `_name` (`customer_name`); an empty value
means no name, and the id alone is shown.

A policy of histories (a `history` block: one record per customer and period) is reported
by customer: the class table, the whale curve and the customer tables are of each
customer's latest period (a customer that failed is one error, however many rows it has),
and a section "Over time" follows them: the bottom line and the classes per period, the
migration between periods, the customers that turned unprofitable and the warnings. That
part is engine/report_history.py; `Report.history` holds it (None for any other policy,
whose report is as it always was).
"""
from __future__ import annotations

import decimal
import html
import math
import re
from collections import Counter
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import attrs

from . import ast, report_history
from .checked import CheckedPolicy
from .evaluator import Decision
from .formatter import format_expr
from .money import CONTEXT, HUNDRED, grouped
from .policy import Policy
from .portfolio import ReferralLeader
from .records import RecordError
from .run import RunSummary

TOP = 10  # customers in the top, bottom and credit tables of the page
TEXT_TOP = 5  # ... and in the terminal summary
ERROR_SAMPLES = 20  # errors listed one by one; the rest are only counted
CURVE_POINTS = 1000  # above this many customers the stored curve is sampled (it is concave, so sampling is faithful)
_TENTH = Decimal("0.1")
_ZERO = Decimal(0)


# ---- the report -------------------------------------------------------------------------


@attrs.frozen
class Column:
    """One column of the class table: the bottom line is the sum of `sign` × each column.

    `name` is the policy's identifier (a field or a figure), None for "other" (what the
    bottom line adds beyond a plain sum of named figures); `parts` are the lines a total
    (`costs`, `credits`) adds.
    """

    name: Optional[str]
    label: str
    sign: int  # +1 or -1
    parts: Tuple[str, ...] = ()

    @property
    def is_other(self) -> bool:
        return self.name is None


@attrs.frozen
class ClassTotals:
    """One class (or the whole portfolio): how many, and what they bring and cost.

    `revenue` and `cost` are None when the policy has no `revenue` figure or field, or no
    costs (`cost` is the `costs` total, which leaves out a cost of goods read from the
    record); `profit` is the total of the key figure (`profit`, else the policy's last
    measure). `parts` are the report's `columns` added up over the class: the profit is
    the sum of each column times its sign, exactly.
    """

    label: str
    count: int
    revenue: Optional[Decimal]
    cost: Optional[Decimal]
    profit: Optional[Decimal]
    parts: Tuple[Decimal, ...] = ()


@attrs.frozen
class Customer:
    """What the report keeps of one decision."""

    id: Optional[str]
    row: Optional[int]
    classification: str
    revenue: Optional[Decimal]
    cost: Optional[Decimal]
    profit: Decimal
    credits: Optional[Decimal]
    worst_cost: Optional[str]  # the cost line with the largest value: the figure that sinks them
    worst_cost_amount: Optional[Decimal]
    name: Optional[str] = None  # from the record (see the module's docstring for which field)
    referred: Optional[int] = None  # customers it brought in directly, when the run has a referral network


@attrs.frozen
class WhalePoint:
    """The top `customers` (a `share` of all ranked customers, 0..1) earn `cumulative` together.

    `percent` is `cumulative` as a percentage of total profit, to 0.1; None when total profit
    is not positive (a percentage of it would mean nothing).
    """

    customers: int
    share: Decimal
    cumulative: Decimal
    percent: Optional[Decimal]


@attrs.frozen
class Pool:
    """A pooled cost: its amount, what was allocated to customers, and the capacity nobody used."""

    name: str
    amount: Decimal
    allocated: Decimal
    unused: Decimal

    @property
    def label(self) -> str:
        """For people: `channel_team [direct]` → `Channel team, direct`."""
        return pool_label(self.name)


@attrs.frozen
class ErrorSample:
    row: Optional[int]
    id: Optional[str]
    field: Optional[str]
    message: str


@attrs.frozen
class Report:
    """Everything the page and the terminal summary show; all amounts are exact Decimals."""

    policy_name: str
    policy_version: Optional[str]
    currency: str
    key_figure: Optional[str]  # the bottom line customers are ranked by: `rank by`, else `profit`, else the last money measure
    classification: str  # the name of the policy's first classification
    records: int  # records in = decisions + errors
    decisions: int
    errors: int
    classes: Tuple[ClassTotals, ...]  # in the policy's rule order; classes nobody fell into are left out
    total: ClassTotals  # the whole portfolio
    # The whale curve: customers ranked from most to least profitable.
    ranked: int  # customers on the curve (every decision whose key figure is an amount)
    curve: Tuple[WhalePoint, ...]  # from 0 customers to all of them; sampled above CURVE_POINTS customers
    deciles: Tuple[WhalePoint, ...]  # the top 10%, 20%, ... 100% of customers (each count once)
    total_profit: Decimal
    peak: Decimal  # the highest cumulative profit
    peak_customers: int  # the fewest top customers that earn it
    peak_share: Decimal  # ... as a share of all ranked customers, 0..1
    peak_percent: Optional[Decimal]  # the peak as a percentage of total profit (None unless total > 0)
    tail_loss: Decimal  # what the rest give back: peak - total
    loss_makers: int  # customers with a negative profit
    losses: Decimal  # their profits added (negative or zero)
    top: Tuple[Customer, ...]  # the most profitable first
    bottom: Tuple[Customer, ...]  # the least profitable first
    credit_leaders: Optional[Tuple[Customer, ...]]  # top customers by `credits`; None: the policy has no credits
    pools: Tuple[Pool, ...] = ()
    referral_leaders: Tuple[ReferralLeader, ...] = ()
    error_samples: Tuple[ErrorSample, ...] = ()
    error_kinds: Tuple[Tuple[str, int], ...] = ()  # (field, or "evaluation" / "record"; count), most first
    # How the class table adds up to the bottom line: profit = sum of sign × column (module docstring).
    columns: Tuple[Column, ...] = ()
    other_reason: Optional[str] = None  # why there is an "other" column: the parts of the formula it holds
    name_field: Optional[str] = None  # the record field customers' names are read from
    # A policy of histories: the section "Over time" (engine/report_history.py); everything above
    # is then of each customer's latest period, and `records` counts customers, not rows.
    history: Optional[report_history.History] = None


def build_report(policy: Policy, results: Iterable) -> Report:
    """The report of one run. `results`: a `Run` (`policy.run(records)`), whose pools and
    referral leaders the report lists, or any Decisions and RecordErrors; consumed once."""
    with decimal.localcontext(CONTEXT):
        builder = _Builder(policy)
        collector = report_history.Collector(policy, builder.name_field) if policy.checked.history is not None else None
        report = builder.build(results if collector is None else collector.latest(results))
        summary = getattr(results, "summary", None)
        if collector is not None:
            rows = summary.rows if isinstance(summary, RunSummary) else None
            report = attrs.evolve(report, history=collector.history(rows))
        if isinstance(summary, RunSummary):
            referred: Dict[str, int] = {}
            for leader in summary.referral_leaders:
                referred[leader.id] = referred.get(leader.id, 0) + leader.referred
            credit_leaders = report.credit_leaders
            if credit_leaders is not None and summary.referral_leaders:
                credit_leaders = tuple(attrs.evolve(c, referred=referred.get(c.id or "", 0)) for c in credit_leaders)
            report = attrs.evolve(report, pools=_shared_pools(summary), referral_leaders=summary.referral_leaders[:TOP],
                                  credit_leaders=credit_leaders)
        return report


def _shared_pools(summary: RunSummary) -> Tuple[Pool, ...]:
    """Each pool as shared (per group), then each capacity pool with its unused capacity."""
    pools = [Pool(allocation.name + (f" [{group}]" if group is not None else ""), share.pool, share.allocated,
                  share.pool - share.allocated)
             for allocation in summary.context.allocations.values() for group, share in allocation.groups.items()
             ] if summary.context is not None else []
    pools += [Pool(f"{use.name} (capacity)", use.amount, use.charged, use.unused) for use in summary.pools]
    return tuple(pools)


# ---- labels for people ------------------------------------------------------------------


def label(identifier: Optional[str]) -> str:
    """An identifier as a reader wants it: `cost_of_goods` → `Cost of goods`, `break-even` → `Break-even`."""
    text = (identifier or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_GROUPED_POOL = re.compile(r"(?P<figure>.+?) \[(?P<group>.*)\]")
_CAPACITY_POOL = re.compile(r"(?P<figure>.+?) \(capacity\)")


def pool_label(name: str) -> str:
    """A pool's name for people: `channel_team [direct]` → `Channel team, direct`;
    `support_centre (capacity)` → `Support centre (capacity)`."""
    grouped_pool = _GROUPED_POOL.fullmatch(name)
    if grouped_pool:
        return f"{label(grouped_pool['figure'])}, {grouped_pool['group']}"
    capacity = _CAPACITY_POOL.fullmatch(name)
    if capacity:
        return f"{label(capacity['figure'])} (capacity)"
    return label(name)


# ---- how the bottom line adds up --------------------------------------------------------


def _bottom_line_terms(checked: CheckedPolicy, key: Optional[str]) -> Tuple[List[Tuple[str, int]], List[str]]:
    """The bottom line as a signed sum of named money figures and fields, expanding its measures:
    ([(name, +1 or -1), ...] in the order the formulas name them, [the parts that are not such a sum])."""
    if key is None:
        return [], []
    figures = {f.name: f for f in checked.figures}
    money_fields = {f.name for f in checked.fields if f.kind == "money"}
    figure = figures.get(key)
    if figure is None or figure.kind != "measure" or figure.expr is None:
        return [], []  # the bottom line is one figure or field itself: nothing to break down
    coefficients: Dict[str, int] = {}
    rest: List[str] = []

    def add(expr: ast.Expr, sign: int) -> None:
        if isinstance(expr, ast.Binary) and expr.op in ("+", "-"):
            add(expr.left, sign)
            add(expr.right, sign if expr.op == "+" else -sign)
            return
        if isinstance(expr, ast.Negate):
            add(expr.operand, -sign)
            return
        if isinstance(expr, ast.Name):
            named = figures.get(expr.name)
            if named is not None and named.kind == "measure" and named.expr is not None and named.unit.kind == "money":
                add(named.expr, sign)
                return
            if expr.name in money_fields or (named is not None and named.unit.kind == "money" and not named.unit.per
                                              and named.kind in ("cost", "credit", "total", "threshold")):
                coefficients[expr.name] = coefficients.get(expr.name, 0) + sign
                return
        rest.append(format_expr(expr))

    add(figure.expr, 1)
    terms = []
    for name, coefficient in coefficients.items():
        if coefficient in (1, -1):
            named = figures.get(name)
            if named is not None and named.kind == "total" and not named.parts:
                continue  # a total of nothing (`credits` without credits) is always 0
            terms.append((name, coefficient))
        elif coefficient:
            rest.append(f"{coefficient} * {name}")
    return terms, rest


def equation(report: Report, *, ascii_only: bool = False) -> str:
    """How each row adds up, with the policy's identifiers: `revenue - cost_of_goods - costs + credits = profit`."""
    key = report.key_figure or "profit"
    if not report.columns:
        return ""
    minus = "-" if ascii_only else "−"
    out = []
    for number, column in enumerate(report.columns):
        name = column.name or "other"
        if number == 0:
            out.append(name if column.sign > 0 else f"{minus}{name}")
        else:
            out.append(f"{'+' if column.sign > 0 else minus} {name}")
    return " ".join(out) + f" = {key}"


# ---- building it ------------------------------------------------------------------------


class _Builder:
    def __init__(self, policy: Policy) -> None:
        checked = policy.checked
        self.policy = policy
        self.key = policy.bottom_line
        names = set(policy.figure_names) | set(policy.field_names)
        self.revenue = "revenue" if "revenue" in names else None
        self.has_credits = any(f.kind == "credit" for f in checked.figures)
        totals = {f.name: f.parts for f in checked.figures if f.kind == "total"}
        self.cost_lines = totals.get("costs") or tuple(f.name for f in checked.figures if f.kind == "cost")
        self.costs = "costs" if "costs" in names else None
        texts = [f.name for f in checked.fields if f.kind == "text" and f.name != checked.key]
        self.name_field = "name" if "name" in texts else next((n for n in texts if n.endswith("_name")), None)
        self.terms, self.rest = _bottom_line_terms(checked, self.key)
        self.parts_of = totals

    def customer(self, decision: Decision) -> Optional[Customer]:
        value = decision.value
        profit = _amount(value(self.key)) if self.key is not None else None
        if profit is None:
            return None
        worst, worst_amount = None, None
        for line in self.cost_lines:
            amount = _amount(value(line))
            if amount is not None and amount > 0 and (worst_amount is None or amount > worst_amount):
                worst, worst_amount = line, amount
        name = value(self.name_field) if self.name_field is not None else None
        return Customer(
            id=decision.id, row=decision.row, classification=decision.classification,
            revenue=_amount(value(self.revenue)) if self.revenue is not None else None,
            cost=_amount(value(self.costs)) if self.costs is not None else None,
            profit=profit,
            credits=_amount(value("credits")) if self.has_credits else None,
            worst_cost=worst, worst_cost_amount=worst_amount,
            name=(name.strip() or None) if isinstance(name, str) else None)

    def build(self, results: Iterable) -> Report:
        policy = self.policy
        classes_in_order = list(dict.fromkeys(rule.label for rule in policy.checked.classifications[0].rules))
        counts: Counter = Counter()
        revenue = {cls: _ZERO for cls in classes_in_order}
        cost = dict(revenue)
        profit = dict(revenue)
        terms = self.terms
        parts = {cls: [_ZERO] * len(terms) for cls in classes_in_order}
        other = dict(revenue)
        other_seen = False
        customers: List[Customer] = []
        samples: List[ErrorSample] = []
        kinds: Counter = Counter()
        records = errors = 0
        for result in results:
            records += 1
            if isinstance(result, RecordError):
                errors += 1
                kinds[result.field or ("evaluation" if result.line is not None else "record")] += 1
                if len(samples) < ERROR_SAMPLES:
                    samples.append(ErrorSample(result.row, result.id, result.field, result.message))
                continue
            cls = result.classification
            counts[cls] += 1
            customer = self.customer(result)
            if customer is None:
                continue
            customers.append(customer)
            if customer.revenue is not None:
                revenue[cls] += customer.revenue
            if customer.cost is not None:
                cost[cls] += customer.cost
            profit[cls] += customer.profit
            if terms:
                rest = customer.profit
                sums = parts[cls]
                for index, (name, sign) in enumerate(terms):
                    amount = _amount(result.value(name))
                    if amount is not None:
                        sums[index] += amount
                        rest -= sign * amount
                if rest:
                    other[cls] += rest
                    other_seen = True

        with_other = bool(terms) and bool(self.rest or other_seen)
        columns = tuple(Column(name, label(name), sign, self.parts_of.get(name, ()))
                        for name, sign in terms)
        if with_other:
            columns += (Column(None, "Other", 1),)

        def totals(cls: str, count: int, rev: Decimal, cst: Decimal, prf: Decimal, sums: Sequence[Decimal],
                   rest: Decimal) -> ClassTotals:
            shown = tuple(sums) + ((rest,) if with_other else ())
            return ClassTotals(cls, count, rev if self.revenue is not None else None,
                               cst if self.costs is not None else None,
                               prf if self.key is not None else None, shown)

        classes = tuple(totals(cls, counts[cls], revenue[cls], cost[cls], profit[cls], parts[cls],
                               other[cls])
                        for cls in classes_in_order if counts[cls])
        everyone = totals("all customers", sum(counts.values()), sum(revenue.values(), _ZERO),
                          sum(cost.values(), _ZERO), sum(profit.values(), _ZERO),
                          [sum((parts[cls][i] for cls in classes_in_order), _ZERO) for i in range(len(terms))],
                          sum(other.values(), _ZERO))

        # The whale curve: most profitable first; equal profits in id, then input, order.
        customers.sort(key=lambda c: (-c.profit, c.id or "", c.row or 0))
        n = len(customers)
        cumulative = [_ZERO]
        for customer in customers:
            cumulative.append(cumulative[-1] + customer.profit)
        total = cumulative[-1]
        peak = max(cumulative)
        peak_at = cumulative.index(peak)

        def point(k: int) -> WhalePoint:
            share = Decimal(k) / Decimal(n) if n else _ZERO
            return WhalePoint(k, share, cumulative[k], _percent(cumulative[k], total))

        picks: Sequence[int]
        if n <= CURVE_POINTS:
            picks = range(n + 1)
        else:
            picks = sorted({round(i * n / CURVE_POINTS) for i in range(CURVE_POINTS + 1)} | {peak_at})
        # Under ten customers some tenths would repeat (or be nobody): each count appears once.
        deciles = tuple(point(k) for k in sorted({n * tenth // 10 for tenth in range(1, 11)} - {0}))
        negatives = [c.profit for c in customers if c.profit < 0]
        bottom = customers[-TOP:][::-1]
        if self.has_credits:
            earners = sorted((c for c in customers if c.credits and c.credits > 0),
                             key=lambda c: (-(c.credits or _ZERO), c.id or "", c.row or 0))
            credit_leaders: Optional[tuple] = tuple(earners[:TOP])
        else:
            credit_leaders = None
        return Report(
            policy_name=policy.name, policy_version=policy.version, currency=policy.currency,
            key_figure=self.key, classification=policy.classification_names[0],
            records=records, decisions=records - errors, errors=errors,
            classes=classes, total=everyone,
            ranked=n, curve=tuple(point(k) for k in picks), deciles=deciles,
            total_profit=total, peak=peak, peak_customers=peak_at,
            peak_share=Decimal(peak_at) / Decimal(n) if n else _ZERO,
            peak_percent=_percent(peak, total), tail_loss=peak - total,
            loss_makers=len(negatives), losses=sum(negatives, _ZERO),
            top=tuple(customers[:TOP]), bottom=tuple(bottom), credit_leaders=credit_leaders,
            error_samples=tuple(samples),
            error_kinds=tuple(sorted(kinds.items(), key=lambda item: (-item[1], item[0]))),
            columns=columns,
            other_reason=("; ".join(self.rest) if self.rest else "rounding") if with_other else None,
            name_field=self.name_field)


def _amount(value: Any) -> Optional[Decimal]:
    return value if isinstance(value, Decimal) and value.is_finite() else None


def _percent(part: Decimal, whole: Decimal) -> Optional[Decimal]:
    """part as a percentage of whole, to 0.1 (half-up); None unless whole is positive."""
    if whole <= 0:
        return None
    with decimal.localcontext(CONTEXT):
        return (part * HUNDRED / whole).quantize(_TENTH, rounding=decimal.ROUND_HALF_UP)


def share_text(share: Decimal) -> str:
    """A share 0..1 as a percentage to 0.1: 0.3816666 → 38.2%."""
    with decimal.localcontext(CONTEXT):
        value = (share * HUNDRED).quantize(_TENTH, rounding=decimal.ROUND_HALF_UP)
    return f"{value}%"


def percent_text(value: Optional[Decimal]) -> str:
    return "n/a" if value is None else f"{grouped(value, 1)}%"


def _money(value: Optional[Decimal]) -> str:
    return "" if value is None else grouped(value)


def _plural(count: int, word: str, many: Optional[str] = None) -> str:
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def _headline(report: Report) -> str:
    """The whale curve in one sentence."""
    cur = report.currency
    if not report.ranked:
        return "No customer has a profit figure, so there is no whale curve."
    if not report.peak_customers:
        return (f"No customer earns a profit: the curve only falls, to {grouped(report.total_profit)} {cur}.")
    who = (f"The top {share_text(report.peak_share)} of customers ({report.peak_customers:,} of {report.ranked:,}) "
           f"earn {grouped(report.peak)} {cur}")
    if report.peak_percent is not None:
        return (f"{who}, {percent_text(report.peak_percent)} of total profit; "
                f"the rest give back {grouped(report.tail_loss)} {cur}.")
    return (f"{who}; total profit is {grouped(report.total_profit)} {cur}, "
            f"so the rest give back {grouped(report.tail_loss)} {cur}.")


def peak_meaning(report: Report) -> str:
    """What the whale curve's peak means, in words a finance reader uses."""
    cur = report.currency
    key = label(report.key_figure or "profit").lower()
    if not report.ranked or not report.peak_customers:
        return ""
    rest = report.ranked - report.peak_customers
    top = f"the most profitable {_plural(report.peak_customers, 'customer')}"
    if not report.tail_loss:
        return (f"No customer loses money, so nobody gives any of the {key} back: the curve ends at its peak, "
                "100% of the total.")
    if report.peak_percent is not None:
        return (f"A peak above 100% means that {top} together earn more than the whole portfolio's {key} "
                f"({grouped(report.peak)} against {grouped(report.total_profit)} {cur}); "
                f"the other {_plural(rest, 'customer')} give {grouped(report.tail_loss)} {cur} of it back, "
                f"{percent_text(report.peak_percent - HUNDRED)} of the total.")
    return (f"{label(top)} earn {grouped(report.peak)} {cur}, and the other {_plural(rest, 'customer')} lose "
            f"{grouped(report.tail_loss)} {cur}, more than that: the portfolio's {key} is "
            f"{grouped(report.total_profit)} {cur}, so there is no percentage of it to give.")


def coverage_warning(report: Report) -> str:
    """When records failed: what the figures leave out. Empty when every record was decided."""
    if not report.errors:
        return ""
    unit = "record" if report.history is None else "customer"  # histories: a customer fails as a whole
    return (f"{report.errors:,} of {_plural(report.records, unit)} failed and are left out of every figure: "
            f"the totals, the tables and the whale curve cover only the {_plural(report.decisions, 'decided customer')}"
            + (f", so the curve's 100% is the {label(report.key_figure or 'profit').lower()} of those "
               f"{report.decisions:,}, not of all {report.records:,}" if report.ranked else "") + ".")


def _unranked(report: Report) -> int:
    return report.decisions - report.ranked


# ---- text -------------------------------------------------------------------------------


def _who(customer: Customer) -> str:
    return (customer.id or "") + (f"  {customer.name}" if customer.name else "")


def render_text(report: Report) -> str:
    """A short summary for the terminal: the page's figures, with the policy's identifiers."""
    cur = report.currency
    key = report.key_figure or "profit"
    version = f" (version {report.policy_version})" if report.policy_version else ""
    out = [f"{report.policy_name}{version}, amounts in {cur}",
           f"{report.records:,} records in = {report.decisions:,} decisions + {report.errors:,} errors out"]
    history = report.history
    if history is not None:
        out[1] = _customers_line(report, history)
        out += report_history.text_header(history, cur)
    if report.errors:
        out.append(f"WARNING: {coverage_warning(report)}")
    if _unranked(report):
        out.append(f"{_plural(_unranked(report), 'decided customer')} without a {key} amount "
                   f"{'is' if _unranked(report) == 1 else 'are'} counted but not on the curve.")
    out.append("")
    heads = [(column.name or "other") if number == 0 and column.sign > 0 else
             f"{'+' if column.sign > 0 else '-'} {column.name or 'other'}"
             for number, column in enumerate(report.columns)]
    rows = [(report.classification, "count", *heads, f"= {key}" if heads else key)]
    for totals in (*report.classes, report.total):
        rows.append((totals.label, f"{totals.count:,}", *(_money(v) for v in totals.parts), _money(totals.profit)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        if number == len(rows) - 1:
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        out.append(f"{row[0]:<{widths[0]}}  " + "  ".join(f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:])))
    if report.columns:
        out.append(f"Each row adds up: {equation(report, ascii_only=True)}.")
        for column in report.columns:
            if column.parts:
                out.append(f"  {column.name} = {' + '.join(column.parts)}")
        if report.columns[-1].is_other:
            out.append(f"  other = {key} minus the named columns, per customer ({report.other_reason})")
    out += ["", "Whale curve: " + _headline(report)]
    meaning = peak_meaning(report)
    if meaning:
        out.append(meaning)
    if report.loss_makers:
        out.append(f"{report.loss_makers:,} customers lose money, {grouped(-report.losses)} {cur} together.")

    def customers(title: str, chosen: Sequence[Customer]) -> None:
        if not chosen:
            return
        out.extend(["", title])
        width = max(len(_who(c)) for c in chosen)
        amounts = [grouped(c.profit) for c in chosen]
        awidth = max(len(a) for a in amounts)
        for c, amount in zip(chosen, amounts):
            sinks = (f"  largest cost: {c.worst_cost} {_money(c.worst_cost_amount)}" if c.worst_cost else "")
            out.append(f"  {_who(c):<{width}}  {amount:>{awidth}}  {c.classification}{sinks}")

    customers(f"Most profitable ({key}, {cur}):", report.top[:TEXT_TOP])
    customers(f"Least profitable ({key}, {cur}):", report.bottom[:TEXT_TOP])
    out.append("")
    if history is not None:
        out += report_history.render_text(history, cur) + [""]
    if report.pools:
        out.append(f"Pooled costs ({cur}): amount, allocated, unused")
        for pool in report.pools:
            out.append(f"  {pool.name}: {grouped(pool.amount)}, {grouped(pool.allocated)}, {grouped(pool.unused)}")
    else:
        out.append("Pooled costs: no pooled costs in this policy")
    leaders = _credit_rows(report)
    if leaders is None:
        out.append("Credits: none in this policy (indirect benefits are not counted)")
    elif not leaders:
        out.append("Credits: no customer earned credits")
    else:
        referred = _shows_referred(report)
        out.append((f"Referral leaders and credits ({cur}): customers referred directly, " if referred else
                    f"Credits, indirect benefits ({cur}): ") + f"credits, {key}, {key} without credits")
        for leader in leaders[:TEXT_TOP]:
            cells = ([f"{leader.referred:,}" if leader.referred is not None else "-"] if referred else [])
            cells += [grouped(leader.credits), _money(leader.profit), _money(leader.without)]
            out.append(f"  {leader.id or ''}: " + ", ".join(cells) + (f"  {leader.name}" if leader.name else ""))
    out.append(f"Errors: {report.errors:,}" + (
        " (" + ", ".join(f"{what}: {count:,}" for what, count in report.error_kinds) + ")" if report.errors else ""))
    return "\n".join(out) + "\n"


def _customers_line(report: Report, history: report_history.History) -> str:
    """A report of histories counts customers: `4,790 records in: 600 customers = 600 decided + 0 failed`."""
    rows = f"{_plural(history.rows, 'record')} in: " if history.rows is not None else ""
    return (f"{rows}{_plural(report.records, 'customer')} = {report.decisions:,} decided + {report.errors:,} failed")


@attrs.frozen
class _CreditRow:
    id: Optional[str]
    name: Optional[str]
    classification: Optional[str]
    referred: Optional[int]
    credits: Decimal
    profit: Optional[Decimal]

    @property
    def who(self) -> str:
        return (self.id or "") + (f"  {self.name}" if self.name else "")

    @property
    def without(self) -> Optional[Decimal]:
        return None if self.profit is None else self.profit - self.credits


def _credit_rows(report: Report) -> Optional[List[_CreditRow]]:
    """The one list of customers who earn indirect benefit: the credit leaders, with how many customers
    each referred (from the run's referral network). None: the policy counts no credits."""
    if report.credit_leaders is not None:
        rows = [_CreditRow(c.id, c.name, c.classification, c.referred, c.credits or _ZERO, c.profit)
                for c in report.credit_leaders]
        if report.referral_leaders and all(c.referred is None for c in report.credit_leaders):
            # a report put together by hand: take the counts from its referral leaders
            counts: Dict[str, int] = {}
            for leader in report.referral_leaders:
                counts[leader.id] = counts.get(leader.id, 0) + leader.referred
            rows = [attrs.evolve(row, referred=counts.get(row.id or "")) for row in rows]
        return rows
    if report.referral_leaders:
        return [_CreditRow(r.id, None, None, r.referred, r.credit, None) for r in report.referral_leaders]
    return None


def _shows_referred(report: Report) -> bool:
    return bool(report.referral_leaders) or any(
        c.referred is not None for c in (report.credit_leaders or ()))


# ---- HTML -------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _num(value: Optional[Decimal], strong: bool = False) -> str:
    if value is None:
        return '<td class="n"></td>'
    css = "n neg" if value < 0 else "n"
    text = _e(grouped(value))
    return f'<td class="{css}">{"<b>" + text + "</b>" if strong else text}</td>'


def _css_string(text: str) -> str:
    """Any text as a CSS string literal: everything but ASCII letters, digits and spaces escaped."""
    return '"' + "".join(ch if (ch.isascii() and ch.isalnum()) or ch == " " else f"\\{ord(ch):06x} "
                         for ch in text) + '"'


def _ident(text: Optional[str]) -> str:
    """A policy identifier, shown small beside its readable label."""
    return f'<code class="ident">{_e(text)}</code>'


def _labelled(identifier: str, readable: Optional[str] = None) -> str:
    """A readable label that keeps the policy's identifier in its title (hover) attribute."""
    return f'<span title="{_e(identifier)}">{_e(readable if readable is not None else label(identifier))}</span>'


_CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#d8dde5; --soft:#f3f5f8; --accent:#1f5fa8;
        --good:#2e7d4f; --bad:#b3261e; --warn-bg:#fdf0e6; --warn:#8a3b00; }
* { box-sizing: border-box; }
html { font: 15px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1040px; padding: 28px 32px 48px; background: #fff; overflow-wrap: break-word; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 20px; }
h1 { font-size: 1.6rem; line-height: 1.2; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line);
     break-after: avoid; page-break-after: avoid; }
p { margin: 6px 0; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
code.ident { color: var(--muted); font-size: .78em; white-space: nowrap; }
.sub, .note { color: var(--muted); }
.note { font-size: .85rem; }
.warning { margin: 16px 0 8px; padding: 10px 14px; border-left: 4px solid var(--bad); background: var(--warn-bg);
           color: var(--warn); break-inside: avoid; page-break-inside: avoid; }
.warning b { color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; margin: 18px 0 8px; }
.card { background: var(--soft); border-radius: 6px; padding: 10px 14px; min-width: 0; break-inside: avoid;
        page-break-inside: avoid; }
.card.bad { background: var(--warn-bg); box-shadow: inset 4px 0 0 var(--bad); }
.card.bad .v { color: var(--bad); }
.card .k { font-size: .78rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 1.25rem; font-weight: bold; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.card .of { font-size: .8rem; font-weight: normal; color: var(--muted); }
.card .d { font-size: .8rem; color: var(--muted); margin-top: 2px; }
.headline { font-size: 1.02rem; margin: 12px 0; padding: 10px 14px; border-left: 4px solid var(--accent);
            background: var(--soft); break-inside: avoid; page-break-inside: avoid; }
.headline .meaning { display: block; margin-top: 6px; font-size: .9rem; color: var(--muted); }
figure { margin: 8px 0 4px; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: 2px; }
svg text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; fill: var(--ink); }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis-label { font-size: 12px; fill: var(--ink); }
svg .grid { stroke: #e6e9ee; stroke-width: 1; }
svg .axis { stroke: #8a94a3; stroke-width: 1; }
svg .zero { stroke: #8a94a3; stroke-width: 1; }
svg .reference { stroke: var(--good); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .reference-label { font-size: 11px; fill: var(--good); }
svg .halo { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
svg .curve { fill: none; stroke: var(--accent); stroke-width: 2.5; stroke-linejoin: round; }
svg .area { fill: var(--accent); opacity: .08; }
svg .peak { fill: var(--bad); stroke: #fff; stroke-width: 1.5; }
svg .peak-line { stroke: var(--bad); stroke-width: 1; stroke-dasharray: 3 3; }
svg .peak-label { font-size: 12px; font-weight: bold; fill: var(--bad); }
svg .narrow { display: none; }
.scroll { max-width: 100%; overflow-x: auto; margin: 6px 0 4px;
          /* a shadow at an edge where the table goes on: it scrolls sideways */
          background: linear-gradient(to right, #fff 30%, rgba(255,255,255,0)) left / 32px 100% no-repeat local,
                      linear-gradient(to left, #fff 30%, rgba(255,255,255,0)) right / 32px 100% no-repeat local,
                      radial-gradient(farthest-side at 0 50%, rgba(29,36,48,.22), rgba(29,36,48,0)) left / 12px 100% no-repeat scroll,
                      radial-gradient(farthest-side at 100% 50%, rgba(29,36,48,.22), rgba(29,36,48,0)) right / 12px 100% no-repeat scroll; }
.scroll > table { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: .9rem; }
table.deciles { max-width: 640px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: .82rem; color: var(--muted); }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
th.key, td.key { background: #eef3fa; }
table.classes td:first-child { white-space: nowrap; }
td.neg { color: var(--bad); }
.id { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85rem; white-space: nowrap; }
td .cname { margin-right: .5em; }
td .id { color: var(--muted); font-size: .8rem; }
tfoot td { font-weight: bold; border-top: 2px solid var(--ink); border-bottom: none; }
.reconcile { font-size: .85rem; color: var(--muted); break-before: avoid; page-break-before: avoid; }
.reconcile .eq { color: var(--ink); font-weight: 600; }
.note, figcaption { break-before: avoid; page-break-before: avoid; }
.empty { color: var(--muted); font-style: italic; }
.bar { display: inline-block; height: 9px; background: var(--accent); opacity: .55; border-radius: 2px;
       vertical-align: middle; }
footer { margin-top: 36px; color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line); padding-top: 8px; }
@media (max-width: 760px) {
  body { padding: 20px 18px 36px; }
  .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); }
}
@media (max-width: 600px) {
  body { padding: 16px 14px 32px; }
  h1 { font-size: 1.3rem; }
  .card { padding: 8px 10px; }
  .card .v { font-size: 1.05rem; }
  table { font-size: .85rem; }
  th, td { padding: 4px 6px; }
  .bar { display: none; }
  svg .wide { display: none; }
  svg .narrow { display: inline; }
  svg .tick { font-size: 18px; }
  svg .axis-label { font-size: 20px; }
  svg .peak-label { font-size: 21px; }
  svg .reference-label { font-size: 19px; }
}
@page {
  size: A4; margin: 14mm 12mm 16mm;
  @bottom-left { content: RUNNING_TITLE; font: 8pt "DejaVu Sans", Helvetica, Arial, sans-serif; color: #5b6575; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
                  font: 8pt "DejaVu Sans", Helvetica, Arial, sans-serif; color: #5b6575; }
}
@media print {
  html { font-size: 10pt; }
  body { max-width: none; padding: 0; }
  .cards { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .scroll { overflow: visible; background: none; }
  section.keep, .keep { break-inside: avoid; page-break-inside: avoid; }
  h2 { margin-top: 18px; }
  th, th.key, td.key, .card, .warning, .headline { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  th { background: #eef1f5 !important; }
  svg .halo { stroke: none; }
  figure svg { height: 95mm; }  /* the chart a little smaller, so the deciles fit under it */
  a { color: inherit; text-decoration: none; }
}
"""


def render_html(report: Report) -> str:
    """One self-contained page (no scripts, no external resources) that reads well on screen, on a
    phone (no part wider than the screen; wide tables scroll in their own box) and on A4 (page numbers)."""
    cur = _e(report.currency)
    key = report.key_figure or "profit"
    version = f" · version {_e(report.policy_version)}" if report.policy_version else ""
    running = report.policy_name + (f" · version {report.policy_version}" if report.policy_version else "")
    history = report.history
    counts = (f"{report.records:,} records in = {report.decisions:,} decisions + {report.errors:,} errors out"
              if history is None else _e(_customers_line(report, history)))
    css = _CSS.replace('RUNNING_TITLE', _css_string(running)) + (report_history.CSS if history is not None else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Customer profitability: {_e(report.policy_name)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>Customer profitability report</h1>",
        f'<p class="sub">Policy <b>{_e(report.policy_name)}</b>{version} · amounts in {cur}'
        + (f" · profit here is the policy's measure {_labelled(key)} {_ident(key)}" if key != "profit" else "")
        + "</p>",
        report_history.html_header(history) if history is not None else "",
        "</header>",
        _warning(report),
        _cards(report),
        '<section id="whale">',
        "<h2>The whale curve</h2>",
        _headline_block(report),
        _chart(report),
        _deciles(report),
        "</section>",
        _class_table(report),
        _customer_table("top", "Most profitable customers", report.top, report),
        _customer_table("bottom", "Least profitable customers", report.bottom, report),
        report_history.render_html(history, report.currency) if history is not None else "",
        _credit_table(report),
        _pools(report),
        _errors(report),
        f"<footer>{counts}. "
        "Every amount is exact, from the policy's own rounding; percentages are rounded to 0.1.</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _warning(report: Report) -> str:
    notes = []
    if report.errors:
        head = f"{report.errors:,} of {_plural(report.records, 'record' if report.history is None else 'customer')} failed"
        text = coverage_warning(report)
        notes.append(f"<b>{_e(head)}</b>{_e(text[len(head):])} They are listed under <i>Records that failed</i>, "
                     "at the end.")
    if _unranked(report):
        notes.append(f"{_e(_plural(_unranked(report), 'decided customer'))} without a "
                     f"{_e(label(report.key_figure or 'profit').lower())} amount "
                     f"{'is' if _unranked(report) == 1 else 'are'} counted but not on the curve.")
    if not notes:
        return ""
    return '<div class="warning" role="alert">' + "<br>".join(notes) + "</div>"


def _cards(report: Report) -> str:
    cur = _e(report.currency)
    key = report.key_figure or "profit"
    cards = [("Records in", f"{report.records:,}", "read from the data", ""),
             ("Decided", f"{report.decisions:,}", "classified by the policy", ""),
             ("Failed", f"{report.errors:,}",
              "left out of every figure" if report.errors else "every record was classified",
              " bad" if report.errors else "")]
    history = report.history
    if history is not None:  # histories: a card counts customers, each at its latest period
        rows = f"{history.rows:,} records" if history.rows is not None else "records"
        cards = [("Customers in", f"{report.records:,}", f"{rows} of {_plural(len(history.periods), 'period')}", ""),
                 ("Decided", f"{report.decisions:,}", f"classified in their latest period, {_e(history.latest)}", ""),
                 ("Failed", f"{report.errors:,}",
                  "left out of every figure" if report.errors else "every customer was classified",
                  " bad" if report.errors else "")]
    if report.total.revenue is not None:
        cards.append((f"Revenue ({cur})", _e(grouped(report.total.revenue)), "of the decided customers", ""))
    cards.append((f"Total {_e(label(key).lower())} ({cur})", _e(grouped(report.total_profit)),
                  f"the policy's {_ident(key)}, added up", ""))
    if report.peak_percent is not None:
        detail = (f"of total {_e(label(key).lower())}, earned by the top {share_text(report.peak_share)} of "
                  "customers" + ("; the rest give part of it back" if report.tail_loss else "; nobody gives any back"))
        cards.append(("Whale peak", f"{percent_text(report.peak_percent)}", detail, ""))
    else:
        cards.append((f"Whale peak ({cur})", _e(grouped(report.peak)),
                      f"earned by the top {share_text(report.peak_share)} of customers", ""))
        cards.append((f"Given back by the tail ({cur})", _e(grouped(report.tail_loss)), "by the other customers", ""))
    body = "".join(f'<div class="card{css}"><div class="k">{k}</div><div class="v">{v}</div><div class="d">{d}</div>'
                   "</div>" for k, v, d, css in cards)
    return f'<div class="cards">{body}</div>'


def _headline_block(report: Report) -> str:
    meaning = peak_meaning(report)
    return (f'<p class="headline">{_e(_headline(report))}'
            + (f'<span class="meaning">{_e(meaning)}</span>' if meaning else "") + "</p>")


# The chart's drawing area, in SVG user units (the SVG scales to the page width).
_W, _H = 760, 400
_LEFT, _RIGHT, _TOP_MARGIN, _BOTTOM = 86, 24, 30, 58
# About how wide a character is, in units per unit of font size (DejaVu Sans Bold is about 0.62).
_CHAR = 0.62


def _nice_step(span: float, ticks: int = 6) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(magnitude * f for f in (1, 2, 2.5, 5, 10) if magnitude * f >= raw * (1 - 1e-12))


def _tick_amount(value: float) -> str:
    """An axis tick: a drawing label, not a money figure."""
    for limit, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:,.2f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:,.0f}"


def _chart(report: Report) -> str:
    if not report.ranked:
        return '<p class="empty">No customer has a profit figure, so there is no whale curve to draw.</p>'
    key = report.key_figure or "profit"
    total = float(report.total_profit)
    values = [float(p.cumulative) for p in report.curve]
    low, high = min(0.0, min(values), total), max(values + [total, 0.0])
    if high == low:
        high = low + 1.0
    by_percent = report.total_profit > 0
    unit = total / 100 if by_percent else 1.0
    step = _nice_step((high - low) / unit) * unit
    low = step * _floor(low / step)
    high = step * _ceil(high / step + 0.08)  # headroom for the peak label
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP_MARGIN - _BOTTOM

    def x(share: float) -> float:
        return _LEFT + share * plot_w

    def y(amount: float) -> float:
        return _TOP_MARGIN + (high - amount) / (high - low) * plot_h

    out = [f'<figure><svg class="whale" role="img" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" '
           f'aria-labelledby="whale-title" preserveAspectRatio="xMidYMid meet">',
           f'<title id="whale-title">Whale curve: cumulative {_e(key)} by cumulative '
           "share of customers, most profitable first</title>"]
    # grid and y ticks
    count = int(round((high - low) / step))
    for i in range(count + 1):
        amount = low + i * step
        tick = f"{amount / unit:,.0f}%" if by_percent else _tick_amount(amount)
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y(amount):.1f}" x2="{_W - _RIGHT}" y2="{y(amount):.1f}"/>')
        out.append(f'<text class="tick" x="{_LEFT - 8}" y="{y(amount) + 4:.1f}" text-anchor="end">{_e(tick)}</text>')
    for tenth in range(11):
        px = x(tenth / 10)
        out.append(f'<line class="axis" x1="{px:.1f}" y1="{_H - _BOTTOM}" x2="{px:.1f}" y2="{_H - _BOTTOM + 5}"/>')
        out.append(f'<text class="tick" x="{px:.1f}" y="{_H - _BOTTOM + 19}" text-anchor="middle">{tenth * 10}%</text>')
    # axes and their labels (a shorter one, in larger type, on a narrow screen)
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP_MARGIN}" x2="{_LEFT}" y2="{_H - _BOTTOM}"/>')
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W - _RIGHT}" y2="{_H - _BOTTOM}"/>')
    if low < 0:
        out.append(f'<line class="zero" x1="{_LEFT}" y1="{y(0):.1f}" x2="{_W - _RIGHT}" y2="{y(0):.1f}"/>')
    middle = _LEFT + plot_w / 2
    out.append(f'<text class="axis-label wide" x="{middle:.1f}" y="{_H - 12}" text-anchor="middle">'
               "Cumulative share of customers, most profitable first</text>")
    out.append(f'<text class="axis-label narrow" x="{middle:.1f}" y="{_H - 8}" text-anchor="middle">'
               "Share of customers, most profitable first</text>")
    what = "of total " + _e(key) if by_percent else f"{_e(report.currency)}"
    out.append(f'<text class="axis-label wide" transform="translate(18 {_TOP_MARGIN + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">Cumulative {_e(key)} ({what})</text>')
    out.append(f'<text class="axis-label narrow" transform="translate(20 {_TOP_MARGIN + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">Cumulative {_e(key)}</text>')
    # the curve, and the area under it
    n = report.ranked
    coords = [(x(p.customers / n), y(float(p.cumulative))) for p in report.curve]
    path = "M" + " L".join(f"{cx:.2f} {cy:.2f}" for cx, cy in coords)
    out.append(f'<path class="area" d="{path} L{coords[-1][0]:.2f} {y(0):.2f} L{coords[0][0]:.2f} {y(0):.2f} Z"/>')
    out.append(f'<path class="curve" d="{path}"/>')
    # the peak
    px, py = x(report.peak_customers / n), y(float(report.peak))
    short_label = (f"peak {percent_text(report.peak_percent)}" if report.peak_percent is not None
                   else f"peak {grouped(report.peak)}")
    peak_label = (f"peak {percent_text(report.peak_percent)} " if report.peak_percent is not None else "peak ")
    peak_label += f"({grouped(report.peak)} {report.currency}) at {share_text(report.peak_share)} of customers"

    def placed(text: str, size: float) -> Tuple[str, float]:
        width = len(text) * size * _CHAR
        if px + 10 + width <= _W - _RIGHT:
            return "start", px + 10
        return "end", max(px - 10, _LEFT + width)

    # under the labels: the peak's share of customers, down to the axis
    out.append(f'<line class="peak-line" x1="{px:.1f}" y1="{py:.1f}" x2="{px:.1f}" y2="{_H - _BOTTOM}"/>')
    # the reference line: 100% of profit (the total), across the whole width
    ref_label = "100% of total profit" if by_percent else "total profit"
    ref_label += f" = {grouped(report.total_profit)} {report.currency}"
    ref_short = (f"100% = {grouped(report.total_profit)}" if by_percent else f"total {grouped(report.total_profit)}")
    ry = y(total)
    out.append(f'<line class="reference" x1="{_LEFT}" y1="{ry:.1f}" x2="{_W - _RIGHT}" y2="{ry:.1f}"/>')
    out.append(f'<circle class="peak" cx="{px:.1f}" cy="{py:.1f}" r="5.5"/>')
    for css, text, size, rise, ref_text, ref_size in (("wide", peak_label, 12, 10, ref_label, 11),
                                                      ("narrow", short_label, 21, 12, ref_short, 19)):
        anchor, lx = placed(text, size)
        ly = max(py - rise, _TOP_MARGIN - 8)
        peak_box = _text_box(lx, ly, anchor, text, size)
        # the reference label where neither the curve nor the peak label runs through it
        candidates = [(_W - _RIGHT - 4, ry + 4 + ref_size, "end"), (_W - _RIGHT - 4, ry - 5, "end"),
                      (_LEFT + 6, ry - 5, "start"), (_LEFT + 6, ry + 4 + ref_size, "start")]
        rx, rly, ranchor = next((c for c in candidates if _clear(_text_box(c[0], c[1], c[2], ref_text, ref_size),
                                                                   coords, peak_box)), candidates[0])
        out.append(f'<text class="reference-label halo {css}" x="{rx:.1f}" y="{rly:.1f}" text-anchor="{ranchor}">'
                   f"{_e(ref_text)}</text>")
        out.append(f'<text class="peak-label halo {css}" x="{lx:.1f}" y="{ly:.1f}" '
                   f'text-anchor="{anchor}">{_e(text)}</text>')
    out.append("</svg>")
    sampled = (f" The curve is drawn through {len(report.curve):,} of the {n + 1:,} points (it is concave, "
               "so nothing is lost between them)." if len(report.curve) < n + 1 else "")
    covers = (f" It covers only the {_plural(n, 'customer')} decided with a {_e(key)} amount; "
              f"{_plural(report.records - n, 'record')} are not on it." if report.records > n else "")
    out.append(f"<figcaption>Customers ranked from most to least profitable; the curve rises while customers add "
               f"profit and falls where they lose it.{sampled}{covers}</figcaption></figure>")
    return "\n".join(out)


Box = Tuple[float, float, float, float]  # left, top, right, bottom, in SVG units


def _text_box(x: float, y: float, anchor: str, text: str, size: float) -> Box:
    """About where a line of text drawn at (x, y) lies: a drawing estimate, never a figure."""
    width = len(text) * size * _CHAR
    left = x if anchor == "start" else x - width
    return left, y - 0.8 * size, left + width, y + 0.25 * size


def _clear(box: Box, curve: Sequence[Tuple[float, float]], other: Box) -> bool:
    """Whether the curve (sampled every few units along each segment) and `other` stay out of `box`."""
    left, top, right, bottom = box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2
    if left < _LEFT or top < 0:
        return False
    if not (other[2] < left or other[0] > right or other[3] < top or other[1] > bottom):
        return False
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if max(x0, x1) < left or min(x0, x1) > right:
            continue
        steps = max(1, int(math.hypot(x1 - x0, y1 - y0) / 3))
        for i in range(steps + 1):
            cx, cy = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            if left <= cx <= right and top <= cy <= bottom:
                return False
    return True


def _floor(value: float) -> int:
    return math.floor(value + 1e-9)


def _ceil(value: float) -> int:
    return math.ceil(value - 1e-9)


def _scroll(table: str) -> str:
    """A table in its own box, which scrolls sideways when the screen is narrower than the table."""
    return f'<div class="scroll">{table}</div>'


def _deciles(report: Report) -> str:
    if not report.deciles:
        return ""
    cur = _e(report.currency)
    rows = []
    for point in report.deciles:
        rows.append(f"<tr><td>Top {_e(share_text(point.share).replace('.0%', '%'))}</td>"
                    f'<td class="n">{point.customers:,}</td><td class="n">{_e(percent_text(point.percent))}</td>'
                    f"{_num(point.cumulative)}</tr>")
    loss = ""
    if report.loss_makers:
        loss = (f'<p class="note">{report.loss_makers:,} customers lose money; together they give back '
                f"{_e(grouped(-report.losses))} {cur}.</p>")
    key = _e(label(report.key_figure or "profit").lower())
    table = ('<table class="deciles"><thead><tr><th>Most profitable customers</th><th class="n">Count</th>'
             f'<th class="n">% of total {key}</th><th class="n">Cumulative {key} ({cur})</th></tr></thead><tbody>'
             + "".join(rows) + "</tbody></table>")
    return f'<div class="keep">{_scroll(table)}{loss}</div>'


def _sign(column: Column, first: bool) -> str:
    if column.sign < 0:
        return "− "
    return "" if first else "+ "


def _class_table(report: Report) -> str:
    cur = _e(report.currency)
    key = report.key_figure or "profit"
    total = report.total
    title = f"<h2>By {_e(label(report.classification).lower())}</h2>"
    if not report.classes:
        return f'<section id="classes" class="keep">{title}<p class="empty">no decisions</p></section>'
    columns = report.columns
    head = "".join(f'<th class="n" data-sign="{"-" if c.sign < 0 else "+"}" title="{_e(c.name or "other")}">'
                   f"{_sign(c, i == 0)}{_e(c.label)} ({cur})</th>" for i, c in enumerate(columns))
    show_key = total.profit is not None
    if show_key:
        head += (f'<th class="n key" data-key="{_e(key)}" title="{_e(key)}">{"= " if columns else ""}'
                 f"{_e(label(key))} ({cur})</th>")

    def row(t: ClassTotals) -> str:
        share = t.count / total.count if total.count else 0
        cells = [f'<td title="{_e(t.label)}">{_e(label(t.label))}</td>', f'<td class="n">{t.count:,}</td>',
                 f'<td class="n">{share_text(Decimal(t.count) / Decimal(total.count)) if total.count else ""} '
                 f'<span class="bar" style="width:{share * 48:.1f}px"></span></td>']
        cells += [_num(value) for value in t.parts]
        if show_key:
            cells.append(_num(t.profit).replace('class="n', 'class="key n', 1))
        return "<tr>" + "".join(cells) + "</tr>"

    body = "".join(row(t) for t in report.classes)
    table = (f'<table class="classes"><thead><tr><th>{_e(label(report.classification))}</th>'
             f'<th class="n">Customers</th><th class="n">Share</th>{head}</tr></thead><tbody>{body}</tbody>'
             f"<tfoot>{row(total)}</tfoot></table>")
    return f'<section id="classes" class="keep">{title}{_scroll(table)}{_reconciliation(report)}</section>'


def _reconciliation(report: Report) -> str:
    """Under the class table: how its columns add up to the bottom line, in words and in the policy's names."""
    if report.key_figure is None:
        return ""
    key = report.key_figure
    columns = report.columns
    no_credits = "This policy counts no credits (indirect benefits such as referrals)."
    if not columns:
        return (f'<p class="reconcile">{_e(label(key))} {_ident(key)} is a single figure of the policy, '
                "not a sum of others, so it is shown on its own."
                + (f" {no_credits}" if report.credit_leaders is None else "") + "</p>")
    words = " ".join(f"{_sign(c, i == 0)}{c.label}" for i, c in enumerate(columns)) + f" = {label(key)}"
    out = [f'<p class="reconcile">Every row adds up: <span class="eq">{_e(words)}</span>, the policy\'s bottom line '
           f"({_ident(equation(report, ascii_only=True))}). "]
    for column in columns:
        if column.parts:
            out.append(f"{_e(column.label)} are {_e(' + '.join(label(p).lower() for p in column.parts))}. ")
    if report.credit_leaders is None:
        out.append(no_credits + " ")
    if columns[-1].is_other:
        out.append(f"<i>Other</i> is the part of {_e(label(key).lower())} that is not a plain sum of named figures "
                   f"(here: {_ident(report.other_reason)}): for each customer, {_e(label(key).lower())} minus the "
                   "other columns, so each row still adds up exactly. ")
    return "".join(out).rstrip() + "</p>"


def _who_cell(id_: Optional[str], name: Optional[str]) -> str:
    if name:
        return f'<td class="who"><span class="cname">{_e(name)}</span><span class="id">{_e(id_)}</span></td>'
    return f'<td class="who"><span class="id">{_e(id_)}</span></td>'


def _table_section(anchor: str, title: str, css: str, head: str, rows: Sequence[str], empty: str,
                   note: str = "") -> str:
    """A titled table of rows, or the title and `empty` when there are none."""
    if not rows:
        return f'<section id="{anchor}"><h2>{title}</h2><p class="empty">{empty}</p></section>'
    table = f"<table class=\"{css}\"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<section id="{anchor}" class="keep"><h2>{title}</h2>{_scroll(table)}{note}</section>'


def _customer_table(anchor: str, title: str, customers: Sequence[Customer], report: Report) -> str:
    cur = _e(report.currency)
    key = report.key_figure or "profit"
    rows = []
    for c in customers:
        sinks = (f'{_labelled(c.worst_cost)} <span class="note">{_e(_money(c.worst_cost_amount))}</span>'
                 if c.worst_cost else '<span class="note">none</span>')
        rows.append(f"<tr>{_who_cell(c.id, c.name)}<td>{_labelled(c.classification)}</td>{_num(c.profit)}"
                    f"<td>{sinks}</td></tr>")
    head = (f'<th>Customer</th><th>{_e(label(report.classification))}</th>'
            f'<th class="n">{_e(label(key))} ({cur})</th><th>Largest cost line</th>')
    return _table_section(anchor, title, "customers", head, rows, "no customers")


def _credit_table(report: Report) -> str:
    """The one list of customers who earn indirect benefit: their credits, how many customers they
    referred (when the run has a referral network), and what they would make without the credits."""
    rows = _credit_rows(report)
    if rows is None:
        return ""
    cur = _e(report.currency)
    key = report.key_figure or "profit"
    referred = _shows_referred(report)
    body = []
    for r in rows:
        cells = [_who_cell(r.id, r.name), _num(r.credits), _num(r.profit), _num(r.without)]
        if referred:
            cells.append(f'<td class="n">{"" if r.referred is None else f"{r.referred:,}"}</td>')
        cells.append(f"<td>{_labelled(r.classification) if r.classification else ''}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = (f'<th>Customer</th><th class="n">Credits ({cur})</th><th class="n">{_e(label(key))} ({cur})</th>'
            f'<th class="n">{_e(label(key))} without credits ({cur})</th>'
            + ('<th class="n">Customers referred</th>' if referred else "")
            + f"<th>{_e(label(report.classification))}</th>")
    rescued = sum(1 for r in rows if r.without is not None and r.profit is not None and r.profit > 0 >= r.without)
    note = (f'<p class="note">The customers with the most credits, the policy\'s {_ident("credits")}: what a '
            "customer earns beyond its own sales"
            + (", from the customers it referred (counted directly, not their referrals)" if referred else "")
            + f". {_e(label(key))} without credits is what its own sales and costs leave"
            + (f": {rescued:,} of these {len(rows):,} would make a loss without {'its' if rescued == 1 else 'their'} "
               "credits" if rescued else "") + ".</p>")
    return _table_section("credits", "Indirect benefits: who earns credits", "credits", head, body,
                          "no customer earned credits", note)


def _pools(report: Report) -> str:
    cur = _e(report.currency)
    rows = [f"<tr><td>{_e(p.label)} {_ident(p.name)}</td>{_num(p.amount)}{_num(p.allocated)}{_num(p.unused)}</tr>"
            for p in report.pools]
    head = (f'<th>Pool</th><th class="n">Amount ({cur})</th><th class="n">Allocated ({cur})</th>'
            f'<th class="n">Unused ({cur})</th>')
    return _table_section("pools", "Pooled costs", "pools", head, rows, "no pooled costs in this policy",
                          '<p class="note">Unused capacity is reported, not charged to customers.</p>')


def _errors(report: Report) -> str:
    title = "<h2>Records that failed</h2>"
    if not report.errors:
        return f'<section id="errors">{title}<p class="empty">none: every record was classified</p></section>'
    kinds = ", ".join(f"{_ident(what)}: {count:,}" for what, count in report.error_kinds)
    rows = "".join(f'<tr><td class="n">{"" if s.row is None else s.row}</td><td class="id">{_e(s.id)}</td>'
                   f"<td>{_ident(s.field) if s.field else ''}</td><td>{_e(s.message)}</td></tr>"
                   for s in report.error_samples)
    more = (f'<p class="note">The first {len(report.error_samples):,} of {report.errors:,} are listed; '
            "`profit run` lists them all.</p>" if report.errors > len(report.error_samples) else "")
    table = ('<table class="errors"><thead><tr><th class="n">Row</th><th>Id</th><th>Field</th><th>Problem</th></tr>'
             f"</thead><tbody>{rows}</tbody></table>")
    return (f'<section id="errors">{title}<p>{report.errors:,} of {report.records:,} records could not be '
            f"classified and are left out of every figure above ({kinds}).</p>{_scroll(table)}{more}</section>")
