"""Decision → explanation: every figure with its formula, the values substituted into
it and its policy line; every rule tried, with the values it was tested on.

Nothing here computes a figure again. Every value shown is read from the slots the
plan filled while deciding; the only arithmetic is the distance to a threshold
("short by"), which describes a comparison and feeds no decision.
"""
from __future__ import annotations

import decimal
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

import attrs

from . import ast
from .formatter import format_expr
from .functions import FUNCTIONS
from .history import window
from .display import json_value, short, shown, truth
from .money import CONTEXT, plain
from .units import Unit

if TYPE_CHECKING:
    from .compiler import Plan
    from .evaluator import Decision


@attrs.frozen
class Step:
    """One figure: where it comes from and how it was computed."""

    name: str
    kind: str  # field, rate, cost, credit, total, measure, threshold
    value: object
    unit: Unit
    formula: Optional[str]
    substituted: Optional[str]
    line: Optional[int]
    unrounded: Optional[Decimal] = None
    series: Tuple[Series, ...] = ()  # what each history function in its formula read


@attrs.frozen
class Series:
    """The earlier periods a history function read, as the evaluation read them."""

    call: str  # as written: trend(profit, 4)
    figure: str  # the field or figure whose past it read
    points: Tuple[Tuple[str, object], ...]  # (period, value), oldest first, ending with this period
    unit: Unit

    def text(self, currency: str) -> str:
        return f"{self.call} read {self.figure}: " + " · ".join(
            f"{period} {short(value, self.unit)}" for period, value in self.points)

    def as_dict(self) -> dict:
        return {"call": self.call, "figure": self.figure,
                "values": [{"period": str(period), "value": json_value(value)} for period, value in self.points]}


@attrs.frozen
class WarningTest:
    """One warning rule tried on the decision: what it tested, and whether it fired."""

    name: str
    fired: bool
    test: str
    message: str
    line: int


@attrs.frozen
class RuleTest:
    """One rule tried: the values it was tested on and whether it held."""

    classification: str
    rule: int
    label: str
    held: bool
    test: str
    line: int
    shortfall: Optional[str] = None


@attrs.frozen
class Explanation:
    """The whole story of one decision; `str()` for people, `as_dict()` for machines."""

    id: Optional[str]
    row: Optional[int]
    policy: str
    filename: str
    currency: str
    rounding: str
    credits: str
    outcomes: tuple
    steps: tuple
    tests: tuple
    period: Optional[str] = None  # the period decided, for a policy of histories
    warnings: Tuple[WarningTest, ...] = ()  # every warning rule, fired or not

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        with decimal.localcontext(CONTEXT):  # numbers are shown the same, whatever the caller's settings
            return self._text()

    def _text(self) -> str:
        first = self.outcomes[0]
        period = f"  {self.period}" if self.period is not None else ""
        lines = [f"{self.id or '(no id)'}{period}  {first.label}  "
                 f"(policy {self.filename}, rule {first.rule}, line {first.line})"]
        for outcome in self.outcomes[1:]:
            lines.append(f"  {outcome.classification}: {outcome.label} (rule {outcome.rule}, line {outcome.line})")
        for outcome in self.outcomes:
            if outcome.action:
                lines.append(f"  action ({outcome.classification}): {outcome.action}")
            if outcome.reason:
                lines.append(f"  reason ({outcome.classification}): {outcome.reason}")
        lines.append(f"  rounding: {self.rounding}; indirect benefits: {self.credits}")
        width = max((len(s.name) for s in self.steps), default=10)
        pad = " " * (width + 36)
        for step in self.steps:
            value = shown(step.value, step.unit, self.currency)
            where = f"line {step.line}" if step.line else "total"
            if step.kind == "field":
                lines.append(f"  {step.name:<{width}}  {value:>20}  {where:<9} from the record")
                continue
            lines.append(f"  {step.name:<{width}}  {value:>20}  {where:<9} = {step.formula}")
            if step.substituted and step.substituted != step.formula:
                lines.append(f"{pad}= {step.substituted}")
            if step.unrounded is not None:
                lines.append(f"{pad}  (rounded from {plain(step.unrounded)})")
            for series in step.series:
                lines.append(f"{pad}  {series.text(self.currency)}")
        current = None
        for test in self.tests:
            if test.classification != current:
                current = test.classification
                lines.append(f"  classify {current}")
            verdict = "yes" if test.held else "no"
            short = f" (short by {test.shortfall})" if test.shortfall else ""
            lines.append(f"    rule {test.rule} {test.label:<14} line {test.line:<4} {verdict}: {test.test}{short}")
        if self.warnings:
            lines.append("  warnings")
        for warning in self.warnings:
            lines.append(f"    {warning.name:<16} line {warning.line:<4} {'fired' if warning.fired else 'no'}: {warning.test}")
            if warning.fired:
                lines.append(f"      {warning.message}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "row": self.row,
            "policy": self.policy,
            "file": self.filename,
            "currency": self.currency,
            "rounding": self.rounding,
            "indirect_benefits": self.credits,
            "outcomes": [attrs.asdict(o) for o in self.outcomes],
            "figures": [
                {"name": s.name, "kind": s.kind, "value": json_value(s.value), "unit": s.unit.describe(),
                 "formula": s.formula, "substituted": s.substituted, "line": s.line,
                 **({"unrounded": plain(s.unrounded)} if s.unrounded is not None else {}),
                 **({"series": [series.as_dict() for series in s.series]} if s.series else {})}
                for s in self.steps
            ],
            "rules": [attrs.asdict(t) for t in self.tests],
            **({"period": str(self.period)} if self.period is not None else {}),
            **({"warnings": [attrs.asdict(w) for w in self.warnings]} if self.warnings else {}),
        }


def explain(decision: "Decision") -> Explanation:
    with decimal.localcontext(CONTEXT):  # "short by" arithmetic, whatever the caller's settings
        return _explain(decision)


def _explain(decision: "Decision") -> Explanation:
    plan = decision.plan
    slots = decision.slots
    policy = plan.policy
    units = policy.names
    steps: List[Step] = []
    for field in policy.fields:
        steps.append(Step(field.name, "field", plan.figure_value(field.name, slots), units[field.name],
                          None, None, field.span.line))
    leaf = _value_leaf(plan, slots, with_names=False)
    for figure in policy.figures:
        value = plan.figure_value(figure.name, slots)
        raw = plan.unrounded(figure.name, slots)
        if figure.kind == "total":
            formula = " + ".join(figure.parts) or "0 (none defined)"
            substituted = " + ".join(short(plan.figure_value(p, slots), units[p]) for p in figure.parts)
            line = None
        else:
            formula = plan.formulas[figure.name]
            substituted = format_expr(figure.expr, leaf)
            line = figure.span.line
            if figure.name in plan.portfolio_figures:  # its kind says where its share came from
                substituted = decision.share(figure.name).explain(decision)
        unrounded = raw if raw is not None and raw != value else None
        series = tuple(_series(decision, node) for node in ast.walk(figure.expr)
                       if isinstance(node, ast.Call) and FUNCTIONS[node.function].history and plan.evaluated(node)
                       ) if figure.expr is not None and policy.history is not None else ()
        steps.append(Step(figure.name, figure.kind, value, figure.unit, formula, substituted or None, line, unrounded,
                          series))
    tests: List[RuleTest] = []
    for outcome, (name, rules) in zip(decision.outcomes, plan.rules):
        for number, rule in enumerate(rules[: outcome.rule], start=1):
            if rule.condition is None:
                tests.append(RuleTest(name, number, rule.label, True, "otherwise", rule.span.line))
                continue
            held = bool(plan.value(rule.condition, slots))
            text, shortfall = _describe_test(plan, slots, rule.condition)
            tests.append(RuleTest(name, number, rule.label, held, text, rule.span.line,
                                  None if held else shortfall))
    fired = {warning.name for warning in decision.warnings}
    warnings = tuple(WarningTest(rule.name, rule.name in fired, _describe_test(plan, slots, rule.condition)[0],
                                 rule.message, rule.span.line) for rule in policy.warning_rules)
    credits = [f.name for f in policy.figures if f.kind == "credit"]
    credit_note = ("counted: " + ", ".join(credits)) if credits else "not counted (this policy defines no credits)"
    return Explanation(decision.id, decision.row, policy.name, policy.filename, policy.currency,
                       str(policy.rounding), credit_note, decision.outcomes, tuple(steps), tuple(tests),
                       decision.period, warnings)


def _series(decision: "Decision", call: ast.Call) -> Series:
    """The window a history function read: the same `history.window` over the same slots."""
    plan = decision.plan
    history = plan.policy.history
    assert history is not None  # only a history policy has history functions
    named = call.args[0]
    assert isinstance(named, ast.Name)  # the unit rule made sure
    slot = plan.slot_of[named.nid]
    periods = int(plan.value(call.args[1], decision.slots)) + FUNCTIONS[call.function].before \
        if len(call.args) > 1 else None
    points = window(decision.earlier, slot, decision.slots[slot], decision.period, periods, history.zero)  # type: ignore[arg-type]
    return Series(format_expr(call), named.name, points, plan.policy.unit_of(named))


def _value_leaf(plan: "Plan", slots: tuple, with_names: bool) -> Callable[[ast.Expr], Optional[str]]:
    """Replace each name by its value ("revenue 12,400.00" when `with_names`)."""

    def leaf(node: ast.Expr) -> Optional[str]:
        if isinstance(node, ast.Name):
            value = short(plan.value(node, slots), plan.policy.unit_of(node)) if plan.evaluated(node) \
                else "(not evaluated)"
            return f"{node.name} {value}" if with_names else value
        if isinstance(node, ast.Conditional) and plan.evaluated(node.condition):
            # Show only the branch that was taken, and why.
            held = plan.value(node.condition, slots)
            taken = format_expr(node.then if held else node.otherwise, leaf)
            return f"{taken} (as {format_expr(node.condition, leaf)} is {truth(held)})"
        if isinstance(node, ast.Call) and FUNCTIONS[node.function].history:
            return format_expr(node)  # as written: the series it read is shown below the step
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.function].show([format_expr(a, leaf) for a in node.args])
        return None

    return leaf


def _side(plan: "Plan", slots: tuple, node: ast.Expr) -> str:
    """One side of a comparison: a literal as written, a name with its value, a formula with its result."""
    if plan.is_literal(node):
        return format_expr(node)
    value = short(plan.value(node, slots), plan.policy.unit_of(node))
    if isinstance(node, ast.Name):
        return f"{node.name} {value}"
    return f"{format_expr(node)} = {value}"


def _common_unit(plan: "Plan", *nodes: ast.Expr) -> Unit:
    """The unit two or more compared values share: a bare number takes the others' unit."""
    found = [plan.policy.unit_of(n) for n in nodes]
    return next((u for u in found if not u.literal), found[0])


def _describe_test(plan: "Plan", slots: tuple, node: ast.Expr) -> Tuple[str, Optional[str]]:
    """(what was tested, with values; how far it was from holding) for a condition."""
    held = plan.value(node, slots)
    if isinstance(node, ast.Logical):
        parts, shortfall = [], None
        for side in (node.left, node.right):
            side_held = plan.value(side, slots)
            if plan.is_literal(side):
                parts.append(format_expr(side))
            elif plan.evaluated(side) and side_held is not None:
                text, side_shortfall = _describe_test(plan, slots, side)
                parts.append(text)
                if not side_held and shortfall is None:
                    shortfall = side_shortfall
        return f" {node.op} ".join(parts), shortfall
    if isinstance(node, ast.Compare):
        left = plan.value(node.left, slots)
        right = plan.value(node.right, slots)
        text = f"{_side(plan, slots, node.left)} {node.op} {_side(plan, slots, node.right)} is {truth(held)}"
        return text, _compare_shortfall(node, left, right, _common_unit(plan, node.left, node.right),
                                        plan.policy.currency)
    if isinstance(node, ast.Between):
        value = plan.value(node.value, slots)
        low = plan.value(node.low, slots)
        high = plan.value(node.high, slots)
        unit = _common_unit(plan, node.value, node.low, node.high)
        inside = held != node.negated
        text = (f"{_side(plan, slots, node.value)} is {'inside' if inside else 'outside'} "
                f"{short(low, unit)} .. {short(high, unit)}")
        shortfall = None
        if not held and not node.negated and isinstance(value, Decimal):
            distance = low - value if value < low else value - high
            shortfall = shown(distance, unit, plan.policy.currency) + (" under" if value < low else " over")
        return text, shortfall
    return f"{format_expr(node, _value_leaf(plan, slots, with_names=True))} is {truth(held)}", None


def _compare_shortfall(node: ast.Compare, left: Any, right: Any, unit: Unit, currency: str) -> Optional[str]:
    """How far a comparison was from holding, in the unit the checker gave its sides."""
    if not (isinstance(left, Decimal) and isinstance(right, Decimal)):
        return None
    gap = {">": right - left, ">=": right - left, "<": left - right, "<=": left - right}.get(node.op)
    if gap is None:
        gap = abs(left - right) if node.op == "=" else None
    if gap is None:
        return None
    if gap == 0:
        return "nothing: the two sides are equal" if node.op in (">", "<") else None
    return shown(gap, unit, currency)


