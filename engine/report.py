"""A portfolio report of one run: totals per class, the whale curve, who earns and who sinks.

    report = build_report(policy, policy.evaluate_many(records))
    html_page = render_html(report)      # one self-contained page, chart as inline SVG
    summary = render_text(report)        # a short summary for the terminal

`build_report` consumes the results once, as they stream, and keeps per decision only
what the report needs (its id, class, revenue, cost, profit, credits and largest cost
line). Every amount in the report is an exact Decimal; only the SVG drawing positions
are floats. Nothing in the report depends on the clock or the machine, so the same
policy and data always give the same page, byte for byte.
"""
from __future__ import annotations

import decimal
import html
import math
from collections import Counter
from decimal import Decimal
from typing import Iterable, List, Optional, Sequence, Tuple

import attrs

from .evaluator import Decision
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


# ---- the report -------------------------------------------------------------------------


@attrs.frozen
class ClassTotals:
    """One class (or the whole portfolio): how many, and what they bring and cost.

    `revenue` and `cost` are None when the policy has no `revenue` figure or field, or no
    costs; `profit` is the total of the key figure (`profit`, else the policy's last measure).
    """

    label: str
    count: int
    revenue: Optional[Decimal]
    cost: Optional[Decimal]
    profit: Optional[Decimal]


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


def build_report(policy: Policy, results: Iterable) -> Report:
    """The report of one run. `results`: a `Run` (`policy.run(records)`), whose pools and
    referral leaders the report lists, or any Decisions and RecordErrors; consumed once."""
    with decimal.localcontext(CONTEXT):
        builder = _Builder(policy)
        report = builder.build(results)
        summary = getattr(results, "summary", None)
        if isinstance(summary, RunSummary):
            report = attrs.evolve(report, pools=_shared_pools(summary), referral_leaders=summary.referral_leaders[:TOP])
        return report


def _shared_pools(summary: RunSummary) -> Tuple[Pool, ...]:
    """Each pool as shared (per group), then each capacity pool with its unused capacity."""
    pools = [Pool(allocation.name + (f" [{group}]" if group is not None else ""), share.pool, share.allocated,
                  share.pool - share.allocated)
             for allocation in summary.context.allocations.values() for group, share in allocation.groups.items()
             ] if summary.context is not None else []
    pools += [Pool(f"{use.name} (capacity)", use.amount, use.charged, use.unused) for use in summary.pools]
    return tuple(pools)


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

    def customer(self, decision: Decision) -> Optional[Customer]:
        value = decision.value
        profit = _amount(value(self.key)) if self.key is not None else None
        if profit is None:
            return None
        worst, worst_amount = None, None
        for name in self.cost_lines:
            amount = _amount(value(name))
            if amount is not None and amount > 0 and (worst_amount is None or amount > worst_amount):
                worst, worst_amount = name, amount
        return Customer(
            id=decision.id, row=decision.row, classification=decision.classification,
            revenue=_amount(value(self.revenue)) if self.revenue is not None else None,
            cost=_amount(value("costs")),
            profit=profit,
            credits=_amount(value("credits")) if self.has_credits else None,
            worst_cost=worst, worst_cost_amount=worst_amount)

    def build(self, results: Iterable) -> Report:
        policy = self.policy
        labels = [rule.label for rule in policy.checked.classifications[0].rules]
        counts: Counter = Counter()
        revenue = {label: Decimal(0) for label in labels}
        cost = dict(revenue)
        profit = dict(revenue)
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
            label = result.classification
            counts[label] += 1
            customer = self.customer(result)
            if customer is None:
                continue
            customers.append(customer)
            if customer.revenue is not None:
                revenue[label] += customer.revenue
            if customer.cost is not None:
                cost[label] += customer.cost
            profit[label] += customer.profit

        def totals(label: str, count: int, rev, cst, prf) -> ClassTotals:
            return ClassTotals(label, count, rev if self.revenue is not None else None, cst,
                               prf if self.key is not None else None)

        classes = tuple(totals(label, counts[label], revenue[label], cost[label], profit[label])
                        for label in labels if counts[label])
        everyone = totals("all customers", sum(counts.values()), sum(revenue.values(), Decimal(0)),
                          sum(cost.values(), Decimal(0)), sum(profit.values(), Decimal(0)))

        # The whale curve: most profitable first; equal profits in id, then input, order.
        customers.sort(key=lambda c: (-c.profit, c.id or "", c.row or 0))
        n = len(customers)
        cumulative = [Decimal(0)]
        for customer in customers:
            cumulative.append(cumulative[-1] + customer.profit)
        total = cumulative[-1]
        peak = max(cumulative)
        peak_at = cumulative.index(peak)

        def point(k: int) -> WhalePoint:
            share = Decimal(k) / Decimal(n) if n else Decimal(0)
            return WhalePoint(k, share, cumulative[k], _percent(cumulative[k], total))

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
                             key=lambda c: (-c.credits, c.id or "", c.row or 0))
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
            peak_share=Decimal(peak_at) / Decimal(n) if n else Decimal(0),
            peak_percent=_percent(peak, total), tail_loss=peak - total,
            loss_makers=len(negatives), losses=sum(negatives, Decimal(0)),
            top=tuple(customers[:TOP]), bottom=tuple(bottom), credit_leaders=credit_leaders,
            error_samples=tuple(samples),
            error_kinds=tuple(sorted(kinds.items(), key=lambda item: (-item[1], item[0]))))


def _amount(value) -> Optional[Decimal]:
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


# ---- text -------------------------------------------------------------------------------


def render_text(report: Report) -> str:
    """A short summary for the terminal."""
    cur = report.currency
    key = report.key_figure or "profit"
    version = f" (version {report.policy_version})" if report.policy_version else ""
    out = [f"{report.policy_name}{version}, amounts in {cur}",
           f"{report.records:,} records in = {report.decisions:,} decisions + {report.errors:,} errors out", ""]
    rows = [(report.classification, "count", "revenue", "cost", key)]
    for totals in (*report.classes, report.total):
        rows.append((totals.label, f"{totals.count:,}", _money(totals.revenue), _money(totals.cost),
                     _money(totals.profit)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for number, row in enumerate(rows):
        if number == len(rows) - 1:
            out.append("-" * (sum(widths) + 8))
        out.append(f"{row[0]:<{widths[0]}}  " + "  ".join(f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:])))
    out += ["", "Whale curve: " + _headline(report)]
    if report.loss_makers:
        out.append(f"{report.loss_makers:,} customers lose money, {grouped(-report.losses)} {cur} together.")

    def customers(title: str, chosen: Sequence[Customer]) -> None:
        if not chosen:
            return
        out.extend(["", title])
        width = max(len(c.id or "") for c in chosen)
        amounts = [grouped(c.profit) for c in chosen]
        awidth = max(len(a) for a in amounts)
        for c, amount in zip(chosen, amounts):
            sinks = (f"  largest cost: {c.worst_cost} {grouped(c.worst_cost_amount)}" if c.worst_cost else "")
            out.append(f"  {c.id or '':<{width}}  {amount:>{awidth}}  {c.classification}{sinks}")

    customers(f"Most profitable ({key}, {cur}):", report.top[:TEXT_TOP])
    customers(f"Least profitable ({key}, {cur}):", report.bottom[:TEXT_TOP])
    out.append("")
    if report.pools:
        out.append(f"Pooled costs ({cur}): amount, allocated, unused")
        for pool in report.pools:
            out.append(f"  {pool.name}: {grouped(pool.amount)}, {grouped(pool.allocated)}, {grouped(pool.unused)}")
    else:
        out.append("Pooled costs: no pooled costs in this policy")
    if report.referral_leaders:
        out.append(f"Referral leaders ({cur}): customers referred directly, credit")
        for leader in report.referral_leaders[:TEXT_TOP]:
            out.append(f"  {leader.id}: {leader.referred:,}, {grouped(leader.credit)}")
    out.append(f"Errors: {report.errors:,}" + (
        " (" + ", ".join(f"{what}: {count:,}" for what, count in report.error_kinds) + ")" if report.errors else ""))
    return "\n".join(out) + "\n"


# ---- HTML -------------------------------------------------------------------------------


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _num(value: Optional[Decimal], strong: bool = False) -> str:
    if value is None:
        return '<td class="n"></td>'
    css = "n neg" if value < 0 else "n"
    text = _e(grouped(value))
    return f'<td class="{css}">{"<b>" + text + "</b>" if strong else text}</td>'


_CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#d8dde5; --soft:#f3f5f8; --accent:#1f5fa8;
        --good:#2e7d4f; --bad:#b3261e; }
* { box-sizing: border-box; }
html { font: 15px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); }
body { margin: 0 auto; max-width: 980px; padding: 28px 32px 48px; background: #fff; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 20px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line);
     break-after: avoid; page-break-after: avoid; }
p { margin: 6px 0; }
.sub, .note { color: var(--muted); }
.note { font-size: .85rem; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 18px 0 8px; }
.card { background: var(--soft); border-radius: 6px; padding: 10px 14px; break-inside: avoid; }
.card .k { font-size: .78rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 1.25rem; font-weight: bold; font-variant-numeric: tabular-nums; white-space: nowrap; }
.card .of { font-size: .8rem; font-weight: normal; color: var(--muted); }
.headline { font-size: 1.02rem; margin: 12px 0; padding: 10px 14px; border-left: 4px solid var(--accent);
            background: var(--soft); break-inside: avoid; }
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
table.deciles { max-width: 640px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: .9rem; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: .82rem; color: var(--muted); }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.neg { color: var(--bad); }
td.id { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85rem; word-break: break-all; }
tfoot td { font-weight: bold; border-top: 2px solid var(--ink); border-bottom: none; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
.pair > section { min-width: 0; }
.pair h2 { margin-top: 22px; }
.empty { color: var(--muted); font-style: italic; }
.bar { display: inline-block; height: 9px; background: var(--accent); opacity: .55; border-radius: 2px;
       vertical-align: middle; }
footer { margin-top: 36px; color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line); padding-top: 8px; }
@media (max-width: 760px) { .cards { grid-template-columns: repeat(2, 1fr); } .pair { grid-template-columns: 1fr; } }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  html { font-size: 10pt; }
  body { max-width: none; padding: 0; }
  .cards { grid-template-columns: repeat(4, 1fr); }
  .pair { grid-template-columns: 1fr 1fr; gap: 14px; }
  section.keep { break-inside: avoid; page-break-inside: avoid; }
  h2 { margin-top: 18px; }
  th { background: #eef1f5 !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""


def render_html(report: Report) -> str:
    """One self-contained page (no scripts, no external resources) that reads well on screen and on A4."""
    cur = _e(report.currency)
    key = _e(report.key_figure or "profit")
    version = f" · version {_e(report.policy_version)}" if report.policy_version else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Customer profitability: {_e(report.policy_name)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>Customer profitability report</h1>",
        f'<p class="sub">Policy <b>{_e(report.policy_name)}</b>{version} · amounts in {cur}'
        + (f" · profit here is the policy's measure <code>{key}</code>" if key != "profit" else "") + "</p>",
        "</header>",
        _cards(report),
        '<section id="whale">',
        "<h2>The whale curve</h2>",
        f'<p class="headline">{_e(_headline(report))}</p>',
        _chart(report),
        _deciles(report),
        "</section>",
        _class_table(report),
        '<div class="pair">',
        _customer_table("top", "Most profitable customers", report.top, report),
        _customer_table("bottom", "Least profitable customers", report.bottom, report),
        "</div>",
        _credit_table(report),
        _pools(report),
        _referrals(report),
        _errors(report),
        f'<footer>{report.records:,} records in = {report.decisions:,} decisions + {report.errors:,} errors out. '
        "Every amount is exact, from the policy's own rounding; percentages are rounded to 0.1.</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _cards(report: Report) -> str:
    cur = _e(report.currency)
    cards = [("Customers", f"{report.decisions:,}")]
    if report.total.revenue is not None:
        cards.append((f"Revenue ({cur})", _e(grouped(report.total.revenue))))
    cards.append((f"Total {_e(report.key_figure or 'profit')} ({cur})", _e(grouped(report.total_profit))))
    if report.peak_percent is not None:
        cards.append(("Whale peak", f"{percent_text(report.peak_percent)} "
                      f'<span class="of">of {_e(report.key_figure or "profit")}</span>'))
    else:
        cards.append((f"Whale peak ({cur})", _e(grouped(report.peak))))
    if report.total.revenue is None:
        cards.append((f"Given back by the tail ({cur})", _e(grouped(report.tail_loss))))
    body = "".join(f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>' for k, v in cards)
    return f'<div class="cards">{body}</div>'


# The chart's drawing area, in SVG user units (the SVG scales to the page width).
_W, _H = 760, 400
_LEFT, _RIGHT, _TOP_MARGIN, _BOTTOM = 86, 24, 30, 58


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
           f'<title id="whale-title">Whale curve: cumulative {_e(report.key_figure or "profit")} by cumulative '
           "share of customers, most profitable first</title>"]
    # grid and y ticks
    count = int(round((high - low) / step))
    for i in range(count + 1):
        amount = low + i * step
        label = f"{amount / unit:,.0f}%" if by_percent else _tick_amount(amount)
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y(amount):.1f}" x2="{_W - _RIGHT}" y2="{y(amount):.1f}"/>')
        out.append(f'<text class="tick" x="{_LEFT - 8}" y="{y(amount) + 4:.1f}" text-anchor="end">{_e(label)}</text>')
    for tenth in range(11):
        px = x(tenth / 10)
        out.append(f'<line class="axis" x1="{px:.1f}" y1="{_H - _BOTTOM}" x2="{px:.1f}" y2="{_H - _BOTTOM + 5}"/>')
        out.append(f'<text class="tick" x="{px:.1f}" y="{_H - _BOTTOM + 19}" text-anchor="middle">{tenth * 10}%</text>')
    # axes and their labels
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP_MARGIN}" x2="{_LEFT}" y2="{_H - _BOTTOM}"/>')
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W - _RIGHT}" y2="{_H - _BOTTOM}"/>')
    if low < 0:
        out.append(f'<line class="zero" x1="{_LEFT}" y1="{y(0):.1f}" x2="{_W - _RIGHT}" y2="{y(0):.1f}"/>')
    out.append(f'<text class="axis-label" x="{_LEFT + plot_w / 2:.1f}" y="{_H - 12}" text-anchor="middle">'
               "Cumulative share of customers, most profitable first</text>")
    what = "of total " + _e(report.key_figure or "profit") if by_percent else f"{_e(report.currency)}"
    out.append(f'<text class="axis-label" transform="translate(18 {_TOP_MARGIN + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">Cumulative {_e(report.key_figure or "profit")} ({what})</text>')
    # the curve, and the area under it
    n = report.ranked
    coords = [(x(p.customers / n), y(float(p.cumulative))) for p in report.curve]
    path = "M" + " L".join(f"{cx:.2f} {cy:.2f}" for cx, cy in coords)
    out.append(f'<path class="area" d="{path} L{coords[-1][0]:.2f} {y(0):.2f} L{coords[0][0]:.2f} {y(0):.2f} Z"/>')
    out.append(f'<path class="curve" d="{path}"/>')
    # the peak
    px, py = x(report.peak_customers / n), y(float(report.peak))
    peak_label = (f"peak {percent_text(report.peak_percent)} " if report.peak_percent is not None else "peak ")
    peak_label += f"({grouped(report.peak)} {report.currency}) at {share_text(report.peak_share)} of customers"
    width = len(peak_label) * 7.4  # DejaVu Sans Bold at 12 units: about 7.4 units a character
    if px + 10 + width <= _W - _RIGHT:
        anchor, lx = "start", px + 10
    else:
        anchor, lx = "end", max(px - 10, _LEFT + width)
    # under the labels: the peak's share of customers, down to the axis
    out.append(f'<line class="peak-line" x1="{px:.1f}" y1="{py:.1f}" x2="{px:.1f}" y2="{_H - _BOTTOM}"/>')
    # the reference line: 100% of profit (the total), across the whole width
    ref_label = "100% of total profit" if by_percent else "total profit"
    ref_label += f" = {grouped(report.total_profit)} {report.currency}"
    ry = y(total)
    out.append(f'<line class="reference" x1="{_LEFT}" y1="{ry:.1f}" x2="{_W - _RIGHT}" y2="{ry:.1f}"/>')
    out.append(f'<text class="reference-label halo" x="{_W - _RIGHT - 4}" y="{ry + 15:.1f}" text-anchor="end">'
               f"{_e(ref_label)}</text>")
    out.append(f'<circle class="peak" cx="{px:.1f}" cy="{py:.1f}" r="5.5"/>')
    out.append(f'<text class="peak-label halo" x="{lx:.1f}" y="{max(py - 10, _TOP_MARGIN - 8):.1f}" '
               f'text-anchor="{anchor}">{_e(peak_label)}</text>')
    out.append("</svg>")
    sampled = (f" The curve is drawn through {len(report.curve):,} of the {n + 1:,} points (it is concave, "
               "so nothing is lost between them)." if len(report.curve) < n + 1 else "")
    out.append(f"<figcaption>Customers ranked from most to least profitable; the curve rises while customers add "
               f"profit and falls where they lose it.{sampled}</figcaption></figure>")
    return "\n".join(out)


def _floor(value: float) -> int:
    return math.floor(value + 1e-9)


def _ceil(value: float) -> int:
    return math.ceil(value - 1e-9)


def _deciles(report: Report) -> str:
    if not report.deciles:
        return ""
    cur = _e(report.currency)
    rows = []
    for point in report.deciles:
        rows.append(f"<tr><td>top {_e(share_text(point.share).replace('.0%', '%'))}</td><td class=\"n\">{point.customers:,}</td>"
                    f"{_num(point.cumulative)}<td class=\"n\">{_e(percent_text(point.percent))}</td></tr>")
    loss = ""
    if report.loss_makers:
        loss = (f'<p class="note">{report.loss_makers:,} customers lose money; together they give back '
                f"{_e(grouped(-report.losses))} {cur}.</p>")
    return ('<table class="deciles"><thead><tr><th>customers, most profitable first</th><th class="n">count</th>'
            f'<th class="n">cumulative {_e(report.key_figure or "profit")} ({cur})</th>'
            '<th class="n">% of total</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>" + loss)


def _class_table(report: Report) -> str:
    cur = _e(report.currency)
    key = _e(report.key_figure or "profit")
    total = report.total
    cols = [("revenue", total.revenue is not None), ("cost", total.cost is not None), (key, total.profit is not None)]
    head = "".join(f'<th class="n">{name} ({cur})</th>' for name, shown in cols if shown)

    def row(t: ClassTotals, tag: str = "td") -> str:
        share = t.count / total.count if total.count else 0
        cells = [f"<td>{_e(t.label)}</td>", f'<td class="n">{t.count:,}</td>',
                 f'<td class="n">{share_text(Decimal(t.count) / Decimal(total.count)) if total.count else ""} '
                 f'<span class="bar" style="width:{share * 60:.1f}px"></span></td>']
        for value, (_, shown) in zip((t.revenue, t.cost, t.profit), cols):
            if shown:
                cells.append(_num(value))
        return "<tr>" + "".join(cells) + "</tr>"

    if not report.classes:
        return (f'<section id="classes" class="keep"><h2>By {_e(report.classification)}</h2>'
                '<p class="empty">no decisions</p></section>')
    body = "".join(row(t) for t in report.classes)
    return (f'<section id="classes" class="keep"><h2>By {_e(report.classification)}</h2>'
            f'<table class="classes"><thead><tr><th>{_e(report.classification)}</th><th class="n">customers</th>'
            f'<th class="n">share</th>{head}</tr></thead><tbody>{body}</tbody>'
            f"<tfoot>{row(total)}</tfoot></table></section>")


def _table_section(anchor: str, title: str, css: str, head: str, rows: Sequence[str], empty: str,
                   note: str = "") -> str:
    """A titled table of rows, or the title and `empty` when there are none."""
    if not rows:
        return f'<section id="{anchor}"><h2>{title}</h2><p class="empty">{empty}</p></section>'
    return (f'<section id="{anchor}" class="keep"><h2>{title}</h2><table class="{css}"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>{note}</section>")


def _customer_table(anchor: str, title: str, customers: Sequence[Customer], report: Report) -> str:
    cur = _e(report.currency)
    key = _e(report.key_figure or "profit")
    rows = []
    for c in customers:
        sinks = (f'{_e(c.worst_cost)} <span class="note">{_e(grouped(c.worst_cost_amount))}</span>'
                 if c.worst_cost else '<span class="note">none</span>')
        rows.append(f'<tr><td class="id">{_e(c.id)}</td><td>{_e(c.classification)}</td>{_num(c.profit)}'
                    f"<td>{sinks}</td></tr>")
    head = (f'<th>id</th><th>{_e(report.classification)}</th><th class="n">{key} ({cur})</th>'
            "<th>largest cost line</th>")
    return _table_section(anchor, title, "customers", head, rows, "no customers")


def _credit_table(report: Report) -> str:
    if report.credit_leaders is None:
        return ""
    cur = _e(report.currency)
    key = _e(report.key_figure or "profit")
    rows = [f'<tr><td class="id">{_e(c.id)}</td><td>{_e(c.classification)}</td>{_num(c.credits)}'
            f"{_num(c.profit)}</tr>" for c in report.credit_leaders]
    head = (f'<th>id</th><th>{_e(report.classification)}</th><th class="n">credits ({cur})</th>'
            f'<th class="n">{key} ({cur})</th>')
    return _table_section("credits", "Most credited customers (indirect benefits)", "credits", head, rows,
                          "no customer earned credits")


def _pools(report: Report) -> str:
    cur = _e(report.currency)
    rows = [f"<tr><td>{_e(p.name)}</td>{_num(p.amount)}{_num(p.allocated)}{_num(p.unused)}</tr>"
            for p in report.pools]
    head = (f'<th>pool</th><th class="n">amount ({cur})</th><th class="n">allocated ({cur})</th>'
            f'<th class="n">unused ({cur})</th>')
    return _table_section("pools", "Pooled costs", "pools", head, rows, "no pooled costs in this policy",
                          '<p class="note">Unused capacity is reported, not charged to customers.</p>')


def _referrals(report: Report) -> str:
    cur = _e(report.currency)
    rows = [f'<tr><td class="id">{_e(r.id)}</td><td class="n">{r.referred:,}</td>{_num(r.credit)}</tr>'
            for r in report.referral_leaders]
    head = f'<th>id</th><th class="n">customers referred</th><th class="n">credit ({cur})</th>'
    return _table_section("referrals", "Referral leaders", "referrals", head, rows,
                          "no referral credits in this policy")


def _errors(report: Report) -> str:
    title = "<h2>Records that failed</h2>"
    if not report.errors:
        return f'<section id="errors">{title}<p class="empty">none: every record was classified</p></section>'
    kinds = ", ".join(f"{_e(what)}: {count:,}" for what, count in report.error_kinds)
    rows = "".join(f'<tr><td class="n">{"" if s.row is None else s.row}</td><td class="id">{_e(s.id)}</td>'
                   f"<td>{_e(s.field)}</td><td>{_e(s.message)}</td></tr>" for s in report.error_samples)
    more = (f'<p class="note">The first {len(report.error_samples):,} of {report.errors:,} are listed; '
            "`profit run` lists them all.</p>" if report.errors > len(report.error_samples) else "")
    return (f'<section id="errors">{title}<p>{report.errors:,} of {report.records:,} records could not be '
            f"classified and are left out of every figure above ({kinds}).</p>"
            '<table class="errors"><thead><tr><th class="n">row</th><th>id</th><th>field</th><th>problem</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>{more}</section>")
