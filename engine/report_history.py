"""The report over time: what a run of histories adds to the portfolio report.

For a policy with a `history` block (`policy.checked.history`), `engine/report.py` hands the
run's results through `Collector.latest`, which keeps each customer's values period by
period and passes on only each customer's latest decision (so the whale curve, the class
table and the customer tables count every customer once, at its latest period), and one
error per customer that failed (deciding every period, a failed customer gives an error
for each of its rows). `Collector.history()` then gives the section "Over time" (`History`):

* the portfolio's bottom line and the customers in each class, per period;
* the migration of the main classification between consecutive periods, and from the
  first period to the latest;
* the customers that turned unprofitable: a positive bottom line in some period, none
  (zero or less) in their latest, with the money figure that moved most against them;
* for each `warn` rule, the customers it fired for in their latest period and in any.

A customer's values in a period are read from a decision of that period, else from the
`earlier` periods a later decision carries (`decide latest period` decides only the
latest), through `plan.figure_value`; so both ways of deciding give the same section.
Periods are the portfolio's: every period some decided customer has a row in. A customer
with no row in a period (`missing periods are zero` or `skipped`) is counted under
`no row` there. Every amount is an exact Decimal; only SVG drawing positions are floats.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import attrs

from . import report as base
from .evaluator import Decision
from .history import Period, natural_key
from .history_run import HELD
from .money import grouped
from .records import RecordError

if TYPE_CHECKING:
    from .policy import Policy

NO_ROW = "no row"  # the class of a customer in a period it has no row in
LISTED = 20  # customers listed in the turned-unprofitable table and under each warning
_ZERO = Decimal(0)


# ---- the section ------------------------------------------------------------------------


@attrs.frozen
class PeriodTotal:
    """One period of the portfolio: the customers with a row in it, their bottom line added
    up (None when the policy has no bottom line) and how many fell into each class
    (`counts`, in the order of `History.labels`)."""

    period: str
    customers: int
    bottom_line: Optional[Decimal]
    counts: Tuple[int, ...]


@attrs.frozen
class Migration:
    """Customers by class in `before` (rows) and in `after` (columns): `cells[i][j]` customers
    were `labels[i]` in `before` and `labels[j]` in `after`."""

    before: str
    after: str
    labels: Tuple[str, ...]
    cells: Tuple[Tuple[int, ...], ...]

    def cell(self, before: str, after: str) -> int:
        """The customers that were `before` in the first period and `after` in the second."""
        return self.cells[self.labels.index(before)][self.labels.index(after)]

    @property
    def stayed(self) -> int:
        """Customers in the same class in both periods."""
        return sum(self.cells[i][i] for i, label in enumerate(self.labels) if label != NO_ROW)

    @property
    def moved(self) -> int:
        """Customers in one class in the first period and another in the second."""
        return sum(count for i, row in enumerate(self.cells) for j, count in enumerate(row)
                   if i != j and NO_ROW not in (self.labels[i], self.labels[j]))

    @property
    def rowless(self) -> int:
        """Customers with no row in one of the two periods (or in both)."""
        return sum(map(sum, self.cells)) - self.stayed - self.moved

    @property
    def summary(self) -> str:
        """`423 kept their class, 177 moved` (and how many had no row in one of the periods)."""
        rowless = f", {self.rowless:,} had no row in one of the two" if self.rowless else ""
        return f"{self.stayed:,} kept their class, {self.moved:,} moved{rowless}"


@attrs.frozen
class Move:
    """How one money figure that feeds the bottom line changed between two periods. `sign`:
    +1 when the bottom line adds it (revenue, a credit), -1 when it takes it away (a cost)."""

    figure: str
    sign: int
    then: Decimal
    now: Decimal

    @property
    def against(self) -> Decimal:
        """What the change took off the bottom line (positive: it moved against the customer)."""
        return self.sign * (self.then - self.now)

    @property
    def words(self) -> str:
        """`revenue fell by 1,200.00`, `service rose by 310.50`."""
        return f"{self.figure} {'fell' if self.now < self.then else 'rose'} by {grouped(abs(self.now - self.then))}"


@attrs.frozen
class Turned:
    """A customer that made money in an earlier period and makes none in its latest."""

    id: str
    name: Optional[str]
    classification: str  # in its latest period
    period: str  # its latest period
    profitable_in: str  # the last period its bottom line was positive
    then: Decimal  # its bottom line in `profitable_in`
    now: Decimal  # ... and in `period` (zero or less)
    move: Optional[Move]  # the figure that moved most against it between the two; None if none did


@attrs.frozen
class WarningCount:
    """A `warn` rule over the history: the customers it fired for in their latest period
    (`latest`; the first LISTED of them by id in `customers`) and in any period (`ever`)."""

    name: str
    message: str
    line: int
    latest: int
    ever: int
    customers: Tuple[str, ...]


@attrs.frozen
class History:
    """The section "Over time" of a report of histories."""

    key_figure: Optional[str]  # the bottom line
    classification: str  # the main classification's name
    periods: Tuple[str, ...]  # oldest first
    customers: int  # decided customers
    behind: int  # of them, those whose latest period is before the portfolio's latest
    labels: Tuple[str, ...]  # the classes any customer fell into, in rule order, then NO_ROW if used
    totals: Tuple[PeriodTotal, ...]  # per period, oldest first
    migrations: Tuple[Migration, ...]  # between each pair of consecutive periods
    overall: Optional[Migration]  # from the first period to the latest; None with one period
    turned: Tuple[Turned, ...]  # the first LISTED, lowest bottom line now first
    turned_count: int
    warnings: Tuple[WarningCount, ...]  # in the policy's order
    lines: Tuple[Tuple[str, int], ...] = ()  # the money figures compared for `Turned.move`, with signs
    rows: Optional[int] = None  # the records the run read, when it counted them

    @property
    def latest(self) -> str:
        return self.periods[-1] if self.periods else ""

    @property
    def first(self) -> str:
        return self.periods[0] if self.periods else ""


# ---- collecting it ----------------------------------------------------------------------


@attrs.frozen
class _Point:
    """What the section keeps of one customer in one period."""

    period: str
    ordinal: int
    label: str
    bottom: Optional[Decimal]
    lines: Tuple[Optional[Decimal], ...]  # the values of `Collector.lines`
    fired: Tuple[bool, ...]  # each warning rule


Result = Union[Decision, RecordError]


class Collector:
    """Reads a history run's results once: passes on each customer's latest decision (and its
    error, once) and keeps what the section needs of every period."""

    def __init__(self, policy: "Policy", name_field: Optional[str] = None) -> None:
        checked = policy.checked
        self.plan = policy.plan
        self.key = policy.bottom_line
        self.classification = checked.classifications[0].name
        self.rule_labels = tuple(dict.fromkeys(rule.label for rule in checked.classifications[0].rules))
        self.name_field = name_field
        self.lines = _money_lines(policy)
        self.warning_tables = self.plan.warning_tables
        self._points: Dict[str, Dict[int, _Point]] = {}
        self._latest: Dict[str, Decision] = {}

    def latest(self, results: Iterable[Result]) -> Iterator[Result]:
        """Each customer's latest decision and each failed customer's error, in the order the
        customers first appear (read to the end before the first is given)."""
        kept: Dict[Tuple[str, Any], Result] = {}
        for number, result in enumerate(results):
            if isinstance(result, RecordError):
                if not result.id:
                    kept[("lone", number)] = result
                    continue
                key: Tuple[str, Any] = ("error", result.id)
                held = kept.get(key)
                if not isinstance(held, RecordError) or (held.kind == HELD and result.kind != HELD):
                    kept[key] = result
                continue
            customer = result.id or ""
            self._add(customer, result)
            best = self._latest.get(customer)
            if best is None or len(result.earlier) >= len(best.earlier):
                self._latest[customer] = result
                kept[("decision", customer)] = result
        yield from kept.values()

    def _add(self, customer: str, decision: Decision) -> None:
        points = self._points.setdefault(customer, {})
        period = decision.period
        assert isinstance(period, Period)  # a decision of a history policy
        points[period.ordinal] = self._point(period, decision.slots)
        for earlier, slots in reversed(decision.earlier):  # deciding every period, the earlier ones are known
            if earlier.ordinal in points:
                break
            points[earlier.ordinal] = self._point(earlier, slots)

    def _point(self, period: Period, slots: tuple) -> _Point:
        value = self.plan.figure_value
        fired = self.plan.warnings_of(slots)
        return _Point(str(period), period.ordinal, str(value(self.classification, slots)),
                      base._amount(value(self.key, slots)) if self.key is not None else None,
                      tuple(base._amount(value(name, slots)) for name, _ in self.lines),
                      tuple(rule in fired for _, rule in self.warning_tables))

    def history(self, rows: Optional[int] = None) -> History:
        """The section, from everything `latest` read."""
        customers = list(self._points)
        tracks = {c: sorted(self._points[c].values(), key=lambda p: p.ordinal) for c in customers}
        labels_of = {p.ordinal: p.period for track in tracks.values() for p in track}
        ordinals = sorted(labels_of)
        periods = tuple(labels_of[o] for o in ordinals)
        seen = {p.label for track in tracks.values() for p in track}
        missing = any(len(track) < len(ordinals) for track in tracks.values())
        labels = tuple(label for label in self.rule_labels if label in seen)
        labels += tuple(sorted(seen - set(self.rule_labels)))  # none, unless the results were made by hand
        labels += (NO_ROW,) if missing else ()
        index = {label: i for i, label in enumerate(labels)}

        def class_in(customer: str, ordinal: int) -> str:
            point = self._points[customer].get(ordinal)
            return NO_ROW if point is None else point.label

        totals = []
        for ordinal in ordinals:
            counts = [0] * len(labels)
            bottom: Optional[Decimal] = _ZERO if self.key is not None else None
            present = 0
            for customer in customers:
                point = self._points[customer].get(ordinal)
                counts[index[NO_ROW if point is None else point.label]] += 1
                if point is None:
                    continue
                present += 1
                if bottom is not None and point.bottom is not None:
                    bottom += point.bottom
            totals.append(PeriodTotal(labels_of[ordinal], present, bottom, tuple(counts)))

        def migration(before: int, after: int) -> Migration:
            cells = [[0] * len(labels) for _ in labels]
            for customer in customers:
                cells[index[class_in(customer, before)]][index[class_in(customer, after)]] += 1
            return Migration(labels_of[before], labels_of[after], labels, tuple(map(tuple, cells)))

        migrations = tuple(migration(a, b) for a, b in zip(ordinals, ordinals[1:]))
        overall = migration(ordinals[0], ordinals[-1]) if len(ordinals) > 1 else None
        turned = sorted((t for t in (self._turned(c, tracks[c]) for c in customers) if t is not None),
                        key=lambda t: (t.now, natural_key(t.id)))
        warnings = []
        for number, (_, rule) in enumerate(self.warning_tables):
            latest = [c for c in customers if tracks[c][-1].fired[number]]
            ever = sum(1 for c in customers if any(p.fired[number] for p in tracks[c]))
            listed = tuple(sorted(latest, key=natural_key)[:LISTED])
            warnings.append(WarningCount(rule.name, rule.message, rule.line, len(latest), ever, listed))
        last = ordinals[-1] if ordinals else None
        return History(
            key_figure=self.key, classification=self.classification, periods=periods, customers=len(customers),
            behind=sum(1 for c in customers if tracks[c][-1].ordinal != last), labels=labels,
            totals=tuple(totals), migrations=migrations, overall=overall, turned=tuple(turned[:LISTED]),
            turned_count=len(turned), warnings=tuple(warnings), lines=self.lines, rows=rows)

    def _turned(self, customer: str, track: Sequence[_Point]) -> Optional[Turned]:
        now = track[-1]
        if now.bottom is None or now.bottom > 0:
            return None
        then = next((p for p in reversed(track[:-1]) if p.bottom is not None and p.bottom > 0), None)
        if then is None or then.bottom is None:
            return None
        move: Optional[Move] = None
        for (figure, sign), before, after in zip(self.lines, then.lines, now.lines):
            if before is None or after is None:
                continue
            candidate = Move(figure, sign, before, after)
            if candidate.against > 0 and (move is None or candidate.against > move.against):
                move = candidate
        name = None
        if self.name_field is not None:
            value = self._latest[customer].value(self.name_field)
            name = (value.strip() or None) if isinstance(value, str) else None
        return Turned(customer, name, now.label, now.period, then.period, then.bottom, now.bottom, move)


def _money_lines(policy: "Policy") -> Tuple[Tuple[str, int], ...]:
    """The money figures that feed the bottom line, with the sign it takes them with: its
    terms (base._bottom_line_terms), each total (`costs`, `credits`) opened into its lines."""
    checked = policy.checked
    terms, _ = base._bottom_line_terms(checked, policy.bottom_line)
    parts = {f.name: f.parts for f in checked.figures if f.kind == "total"}
    signs: Dict[str, int] = {}

    def add(name: str, sign: int, depth: int = 0) -> None:
        if parts.get(name) and depth < 16:
            for part in parts[name]:
                add(part, sign, depth + 1)
        elif name in policy.plan.figure_slot:
            signs[name] = signs.get(name, 0) + sign

    for name, sign in terms:
        add(name, sign)
    return tuple((name, 1 if sign > 0 else -1) for name, sign in signs.items() if sign)


# ---- text -------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], lefts: Sequence[int] = (0,), indent: str = "  ") -> List[str]:
    """Rows as aligned columns: the columns in `lefts` to the left, the others (numbers) to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [f"{cell:<{w}}" if i in lefts else f"{cell:>{w}}" for i, (cell, w) in enumerate(zip(row, widths))]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def _change(totals: Sequence[PeriodTotal], number: int) -> Optional[Decimal]:
    now, before = totals[number].bottom_line, totals[number - 1].bottom_line if number else None
    return None if now is None or before is None else now - before


def _matrix_rows(migration: Migration) -> List[List[str]]:
    labels = migration.labels
    head = [f"{migration.before} \\ {migration.after}", *labels, "total"]
    rows = [head]
    for i, label in enumerate(labels):
        rows.append([label, *(f"{n:,}" for n in migration.cells[i]), f"{sum(migration.cells[i]):,}"])
    columns = [sum(row[j] for row in migration.cells) for j in range(len(labels))]
    rows.append(["total", *(f"{n:,}" for n in columns), f"{sum(columns):,}"])
    return rows


def text_header(history: History, currency: str) -> List[str]:
    """Under the report's first line: what the per-customer figures are of."""
    if not history.periods:
        return []
    behind = (f"; {base._plural(history.behind, 'customer')} with no row in {history.latest} "
              f"{'is' if history.behind == 1 else 'are'} shown at {'its' if history.behind == 1 else 'their'} "
              "latest period" if history.behind else "")
    return [f"Per customer, the figures below are of the latest period, {history.latest}, of each of the "
            f"{base._plural(history.customers, 'customer')}{behind}; the periods are under \"Over time\"."]


def render_text(history: History, currency: str) -> List[str]:
    """The section "Over time" for the terminal: the same numbers as the page, as aligned tables."""
    key = history.key_figure or "profit"
    if not history.periods:
        return ["Over time: no customer was decided, so there is no history to show."]
    span = (f"{len(history.periods):,} periods, {history.first} to {history.latest}" if len(history.periods) > 1
            else f"1 period, {history.latest}")
    out = [f"Over time: {span}, {base._plural(history.customers, 'customer')}"]
    head = ["period", "customers", f"{key} ({currency})", "change", *history.labels]
    rows = [head]
    for number, total in enumerate(history.totals):
        change = _change(history.totals, number)
        rows.append([total.period, f"{total.customers:,}", base._money(total.bottom_line),
                     "" if change is None else grouped(change), *(f"{n:,}" for n in total.counts)])
    out += _table(rows)
    out.append(f"  {key} is the sum over the customers with a row in the period; change is against the period "
               f"before; the last columns count customers by {history.classification}.")
    if history.overall is not None:
        out += ["", f"Migration of {history.classification}, {history.first} (rows) to {history.latest} (columns), "
                f"customers: {history.overall.summary}"]
        out += _table(_matrix_rows(history.overall))
        out += ["", f"Migration of {history.classification} between consecutive periods (rows: the period before, "
                "columns: the period after):"]
        for migration in history.migrations:
            out += _table(_matrix_rows(migration))
            out.append(f"  {migration.summary}")
    out.append("")
    out += _turned_text(history, currency)
    out.append("")
    out += _warnings_text(history)
    return out


def _turned_text(history: History, currency: str) -> List[str]:
    key = history.key_figure or "profit"
    if history.key_figure is None:
        return ["Turned unprofitable: the policy has no bottom line to follow."]
    if not history.turned_count:
        return [f"Turned unprofitable: no customer went from a positive {key} to none in its latest period."]
    listed = (f"the {len(history.turned):,} lowest {key} now listed" if history.turned_count > len(history.turned)
              else "lowest " + key + " now first")
    out = [f"Turned unprofitable: {base._plural(history.turned_count, 'customer')} made a positive {key} in an "
           f"earlier period and {'makes' if history.turned_count == 1 else 'make'} none (0 or less) in "
           f"{'its' if history.turned_count == 1 else 'their'} latest ({listed}; {currency}):"]
    rows = [["customer", "name", "last positive", f"{key} then", f"{key} now", history.classification,
             "moved most against it"]]
    for t in history.turned:
        rows.append([t.id, t.name or "", t.profitable_in + ("" if t.period == history.latest else f" ({t.period})"),
                     grouped(t.then), grouped(t.now), t.classification, t.move.words if t.move else "-"])
    out += _table(rows, lefts=(0, 1, 2, 5, 6))
    if history.turned_count > len(history.turned):
        out.append(f"  ... and {history.turned_count - len(history.turned):,} more")
    return out


def _warnings_text(history: History) -> List[str]:
    if not history.warnings:
        return ["Warnings: the policy has no warn rules."]
    out = [f"Warnings, the customers each fired for: in their latest period ({history.latest}) and in any period:"]
    rows = [["warning", "line", "latest", "any period", "message"]]
    for w in history.warnings:
        rows.append([w.name, f"{w.line}", f"{w.latest:,}", f"{w.ever:,}", w.message])
    out += _table(rows, lefts=(0, 4))
    for w in history.warnings:
        if w.customers:
            more = f" and {w.latest - len(w.customers):,} more" if w.latest > len(w.customers) else ""
            out.append(f"  {w.name} in the latest period: {', '.join(w.customers)}{more}")
    return out


# ---- HTML -------------------------------------------------------------------------------

CSS = """
svg .period-bar { fill: var(--accent); opacity: .75; }
svg .period-bar.neg { fill: var(--bad); opacity: .8; }
svg .bar-label { font-size: 11px; fill: var(--ink); }
table.migration td.same { background: #eef3fa; font-weight: 600; }
table.migration td.zero { color: var(--line); }
table.migration th.corner { white-space: nowrap; }
details.migrations summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
@media (max-width: 600px) { svg .bar-label { font-size: 18px; } }
"""

_W, _H = 760, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 86, 24, 26, 52


def html_header(history: History) -> str:
    """Under the page's title: what the per-customer figures are of."""
    e = base._e
    if not history.periods:
        return ""
    behind = (f"; {e(base._plural(history.behind, 'customer'))} with no row in {e(history.latest)} "
              f"{'is' if history.behind == 1 else 'are'} shown at {'its' if history.behind == 1 else 'their'} "
              "latest period" if history.behind else "")
    return (f'<p class="sub">Per customer, the figures are of the latest period, <b>{e(history.latest)}</b>, '
            f"of each of the {e(base._plural(history.customers, 'customer'))}{behind}; the periods are under "
            '<a href="#history">Over time</a>.</p>')


def render_html(history: History, currency: str) -> str:
    """The section "Over time" of the page: the chart, the periods, the migrations, the
    customers that turned unprofitable, the warnings."""
    e = base._e
    title = "<h2>Over time</h2>"
    if not history.periods:
        return f'<section id="history">{title}<p class="empty">no customer was decided</p></section>'
    span = (f"{len(history.periods):,} periods, {e(history.first)} to {e(history.latest)}"
            if len(history.periods) > 1 else f"1 period, {e(history.latest)}")
    parts = [f'<section id="history">{title}',
             f"<p>{span}, {e(base._plural(history.customers, 'customer'))}.</p>",
             _chart(history, currency), _periods_table(history, currency)]
    if history.overall is not None:
        parts.append(_matrix(history.overall, history, "overall"))
        inner = "".join(_matrix(m, history, f"migration-{n}") for n, m in enumerate(history.migrations, 1))
        parts.append(f'<details class="migrations" open><summary>Between consecutive periods '
                     f"({len(history.migrations):,})</summary>{inner}</details>")
    parts += [_turned_html(history, currency), _warnings_html(history), "</section>"]
    return "\n".join(parts)


def _chart(history: History, currency: str) -> str:
    e = base._e
    key = history.key_figure or "profit"
    totals = [t for t in history.totals if t.bottom_line is not None]
    if history.key_figure is None or not totals:
        return '<p class="empty">The policy has no bottom line, so there is no chart of it over time.</p>'
    values = [float(t.bottom_line) for t in totals if t.bottom_line is not None]
    low, high = min(0.0, min(values)), max(0.0, max(values))
    if high == low:
        high = low + 1.0
    step = base._nice_step(high - low, 5)
    low = step * base._floor(low / step)
    high = step * base._ceil(high / step + (0.08 if max(values) > 0 else 0))
    if high == low:
        high = low + step
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = len(totals)
    slot = plot_w / n
    bar = slot * 0.62

    def y(amount: float) -> float:
        return _TOP + (high - amount) / (high - low) * plot_h

    desc = "; ".join(f"{t.period}: {grouped(t.bottom_line)} {currency}" for t in totals if t.bottom_line is not None)
    out = [f'<figure><svg class="history" role="img" viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" '
           'aria-labelledby="history-title history-desc" preserveAspectRatio="xMidYMid meet">',
           f'<title id="history-title">The portfolio\'s {e(key)} per period, {e(history.first)} to '
           f"{e(history.latest)}</title>",
           f'<desc id="history-desc">{e(desc)}</desc>']
    count = int(round((high - low) / step))
    for i in range(count + 1):
        amount = low + i * step
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y(amount):.1f}" x2="{_W - _RIGHT}" y2="{y(amount):.1f}"/>')
        out.append(f'<text class="tick" x="{_LEFT - 8}" y="{y(amount) + 4:.1f}" text-anchor="end">'
                   f"{e(base._tick_amount(amount))}</text>")
    every = max(1, math.ceil(n / 12))  # a label for every period up to 12 of them, else every few
    for number, total in enumerate(totals):
        assert total.bottom_line is not None
        amount = float(total.bottom_line)
        cx = _LEFT + slot * (number + 0.5)
        top, bottom = sorted((y(amount), y(0.0)))
        css = "period-bar neg" if total.bottom_line < 0 else "period-bar"
        out.append(f'<rect class="{css}" x="{cx - bar / 2:.1f}" y="{top:.1f}" width="{bar:.1f}" '
                   f'height="{max(bottom - top, 0.5):.1f}"><title>{e(total.period)}: {e(grouped(total.bottom_line))} '
                   f"{e(currency)}</title></rect>")
        if number % every == 0 or number == n - 1:
            out.append(f'<text class="tick" x="{cx:.1f}" y="{_H - _BOTTOM + 18}" text-anchor="middle">'
                       f"{e(total.period)}</text>")
        if n <= 12:
            ly = top - 5 if amount >= 0 else bottom + 14
            out.append(f'<text class="bar-label halo" x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle">'
                       f"{e(base._tick_amount(amount))}</text>")
    out.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_H - _BOTTOM}"/>')
    out.append(f'<line class="zero" x1="{_LEFT}" y1="{y(0.0):.1f}" x2="{_W - _RIGHT}" y2="{y(0.0):.1f}"/>')
    out.append(f'<text class="axis-label" x="{_LEFT + plot_w / 2:.1f}" y="{_H - 12}" text-anchor="middle">Period</text>')
    out.append(f'<text class="axis-label" transform="translate(18 {_TOP + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{e(base.label(key))} ({e(currency)})</text>')
    out.append("</svg>")
    out.append(f"<figcaption>The {e(key)} of every customer with a row in the period, added up; the exact "
               "amounts are in the table below.</figcaption></figure>")
    return "\n".join(out)


def _periods_table(history: History, currency: str) -> str:
    e = base._e
    key = history.key_figure or "profit"
    cur = e(currency)
    head = (f'<th>Period</th><th class="n">Customers</th><th class="n key">{e(base.label(key))} ({cur})</th>'
            f'<th class="n">Change ({cur})</th>'
            + "".join(f'<th class="n" title="{e(label)}">{e(base.label(label))}</th>' for label in history.labels))
    rows = []
    for number, total in enumerate(history.totals):
        change = _change(history.totals, number)
        rows.append(f"<tr><td>{e(total.period)}</td><td class=\"n\">{total.customers:,}</td>"
                    + base._num(total.bottom_line).replace('class="n', 'class="key n', 1) + base._num(change)
                    + "".join(f'<td class="n">{n:,}</td>' for n in total.counts) + "</tr>")
    table = (f'<table class="periods"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return (f'<div class="keep">{base._scroll(table)}<p class="note">{e(base.label(key))} is the sum over the '
            "customers with a row in the period; the change is against the period before; the last columns count "
            f"customers by {base._ident(history.classification)}.</p></div>")


def _matrix(migration: Migration, history: History, anchor: str) -> str:
    e = base._e
    labels = migration.labels
    head = (f'<th class="corner">{e(migration.before)} \u2193 / {e(migration.after)} \u2192</th>'
            + "".join(f'<th class="n" title="{e(label)}">{e(base.label(label))}</th>' for label in labels)
            + '<th class="n">Total</th>')
    rows = []
    for i, label in enumerate(labels):
        cells = []
        for j, count in enumerate(migration.cells[i]):
            css = "n same" if i == j else ("n zero" if not count else "n")
            cells.append(f'<td class="{css}">{count:,}</td>')
        rows.append(f'<tr><td title="{e(label)}">{e(base.label(label))}</td>{"".join(cells)}'
                    f'<td class="n">{sum(migration.cells[i]):,}</td></tr>')
    columns = [sum(row[j] for row in migration.cells) for j in range(len(labels))]
    foot = ("<tr><td>Total</td>" + "".join(f'<td class="n">{n:,}</td>' for n in columns)
            + f'<td class="n">{sum(columns):,}</td></tr>')
    table = (f'<table class="migration"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
             f"<tfoot>{foot}</tfoot></table>")
    return (f'<div id="{e(anchor)}" class="keep"><h3>{e(base.label(history.classification))} migration, '
            f"{e(migration.before)} to {e(migration.after)}</h3>{base._scroll(table)}<p class=\"note\">Customers by class in "
            f"{e(migration.before)} (rows) and in {e(migration.after)} (columns): {e(migration.summary)}.</p></div>")


def _turned_html(history: History, currency: str) -> str:
    e = base._e
    key = history.key_figure or "profit"
    cur = e(currency)
    title = "Turned unprofitable"
    if history.key_figure is None:
        return f'<h3>{title}</h3><p class="empty">the policy has no bottom line to follow</p>'
    if not history.turned_count:
        return (f'<h3>{title}</h3><p class="empty">no customer went from a positive {e(key)} to none in its '
                "latest period</p>")
    rows = []
    for t in history.turned:
        moved = (f'{base._labelled(t.move.figure)} {"fell" if t.move.now < t.move.then else "rose"} by '
                 f'<span class="n">{e(grouped(abs(t.move.now - t.move.then)))}</span>' if t.move
                 else '<span class="note">none</span>')
        rows.append(f"<tr>{base._who_cell(t.id, t.name)}<td>{e(t.profitable_in)}</td>{base._num(t.then)}"
                    f"{base._num(t.now)}<td>{base._labelled(t.classification)}</td><td>{moved}</td></tr>")
    head = (f'<th>Customer</th><th>Last positive</th><th class="n">{e(base.label(key))} then ({cur})</th>'
            f'<th class="n">{e(base.label(key))} now ({cur})</th><th>{e(base.label(history.classification))} now</th>'
            "<th>Moved most against it</th>")
    table = f'<table class="turned"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    more = (f" The {len(history.turned):,} with the lowest {e(key)} now are listed."
            if history.turned_count > len(history.turned) else "")
    return (f'<div class="keep"><h3>{title}</h3><p>{e(base._plural(history.turned_count, "customer"))} made a positive '
            f"{e(key)} in an earlier period and {'makes' if history.turned_count == 1 else 'make'} none (0 or less) in "
            f"{'its' if history.turned_count == 1 else 'their'} latest period.{more}</p>{base._scroll(table)}"
            '<p class="note">Moved most against it: of the money figures that make up the bottom line, the one whose '
            f"change from the last positive period to the latest took most off {e(key)}.</p></div>")


def _warnings_html(history: History) -> str:
    e = base._e
    title = "<h3>Warnings</h3>"
    if not history.warnings:
        return f'{title}<p class="empty">the policy has no warn rules</p>'
    rows = []
    for w in history.warnings:
        more = f" and {w.latest - len(w.customers):,} more" if w.latest > len(w.customers) else ""
        who = (", ".join(f'<span class="id">{e(c)}</span>' for c in w.customers) + e(more)) if w.customers else ""
        rows.append(f"<tr><td>{base._ident(w.name)}</td><td>{e(w.message)}</td><td class=\"n\">{w.line}</td>"
                    f'<td class="n">{w.latest:,}</td><td class="n">{w.ever:,}</td><td>{who}</td></tr>')
    head = ('<th>Warning</th><th>Message</th><th class="n">Line</th>'
            f'<th class="n">Latest ({e(history.latest)})</th><th class="n">Any period</th><th>In the latest period</th>')
    table = f'<table class="warnings"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return (f'<div class="keep">{title}{base._scroll(table)}<p class="note">The customers each warn rule fired for, '
            f"in their latest period and in any period; the first {LISTED} by id are named.</p></div>")
