"""The checker's answer: a typed, checked policy that every later stage reads.

As Cedar's type checker answers with a type on every expression, a checked policy
keeps the unit of every expression node, by the node's identity (`ast.Expr.nid`).
Records, compiler, portfolio, explanations and reports import this module, never
the checker, so what the checker found is read here and never worked out again.
"""
from __future__ import annotations

import decimal
import functools
import hashlib
from decimal import Decimal
from typing import Dict, FrozenSet, Mapping, Optional, Tuple, Union

import attrs

from . import ast
from .diagnostics import Diagnostic
from .history import HistorySpec
from .units import Unit, field_unit

ROUNDING_MODES = {
    "half-up": decimal.ROUND_HALF_UP,
    "half-even": decimal.ROUND_HALF_EVEN,
    "half-down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}
ROUNDING_UNITS = {"cents": Decimal("0.01"), "units": Decimal("1")}
ROUNDING_SCOPES = ("per line", "at end")
@attrs.frozen
class RoundingRule:
    """How and when money figures are rounded."""

    mode: str
    unit: str
    scope: str

    @property
    def rounding(self) -> str:
        return ROUNDING_MODES[self.mode]

    @property
    def quantum(self) -> Decimal:
        return ROUNDING_UNITS[self.unit]

    @property
    def per_line(self) -> bool:
        return self.scope == "per line"

    def __str__(self) -> str:
        return f"{self.mode} to {self.unit} {self.scope}"


DEFAULT_ROUNDING = RoundingRule("half-up", "cents", "per line")


@attrs.frozen
class FieldSpec:
    """One input field as the record reader must validate it."""

    name: str
    kind: str
    optional: bool
    default: Union[Decimal, str, bool, None]
    column: str
    description: Optional[str]
    span: ast.Span = attrs.field(eq=False)


@attrs.frozen
class Figure:
    """A named figure in evaluation order. Totals have no `expr` but the `parts` they add."""

    kind: str
    name: str
    expr: Optional[ast.Expr]
    unit: Unit
    rounded: bool
    span: ast.Span = attrs.field(eq=False)
    parts: Tuple[str, ...] = ()  # a total: the figures it adds


@attrs.frozen
class CheckedClassification:
    name: str
    rules: Tuple[ast.Rule, ...]  # in order; the last one is `otherwise`
    span: ast.Span = attrs.field(eq=False)


@attrs.frozen
class CheckedWarning:
    """A `warn` rule: it fires on every decision whose record meets its condition."""

    name: str
    condition: ast.Expr
    message: str
    span: ast.Span = attrs.field(eq=False)


@attrs.frozen
class AllocationSpec:
    """A pooled cost and how it is shared; `stage` orders cascades (1 = drivers need no other allocation)."""

    name: str
    stage: int
    pool: Optional[Decimal]  # one pool for the whole portfolio (or for each group) ...
    table: Optional[str]  # ... or a pool per group, from this table
    driver: Optional[ast.Expr]  # None: an equal share per customer
    within: Optional[str]  # the text field that forms the groups
    fallback_equal: bool
    span: ast.Span = attrs.field(eq=False)

    def row_values(self) -> Tuple[Tuple[str, ast.Expr], ...]:
        """What a stage pass works out on each record for this figure, by key: its driver."""
        return ((self.name, self.driver),) if self.driver is not None else ()

    @property
    def only_where(self) -> Optional[str]:
        """The field without which a record has no row values (None: every record has them)."""
        return None


@attrs.frozen
class ReferralSpec:
    """A credit from the referral network; like an allocation, it needs the whole portfolio."""

    name: str
    stage: int
    driver: ast.Expr  # what each referred customer brings, worked out on that customer
    via: str
    levels: int
    decay: Decimal  # the weight of level k is (decay / 100) ** (k - 1)
    cap: Optional[Decimal]
    anyway_flag: Optional[str]
    anyway: Optional[ast.Expr]
    strict: bool
    span: ast.Span = attrs.field(eq=False)

    def row_values(self) -> Tuple[Tuple[str, ast.Expr], ...]:
        """What a stage pass works out on each referred customer: the value it brings, and
        the value it brings if it came anyway."""
        return ((self.name, self.driver),) + (((self.name + " anyway", self.anyway),) if self.anyway is not None else ())

    @property
    def only_where(self) -> Optional[str]:
        """Only a referred customer brings its referrer anything."""
        return self.via


@attrs.frozen
class PoolSpec:
    """A capacity pool: its amount over its practical volume gives a rate."""

    name: str
    amount: Decimal
    volume: Decimal
    unit: str
    span: ast.Span = attrs.field(eq=False)


PortfolioSpec = Union[AllocationSpec, ReferralSpec]


@attrs.frozen
class CheckedPolicy:
    """A policy that passed every check, ready to compile; every expression node typed."""

    name: str
    version: Optional[str]
    currency: str
    rounding: RoundingRule
    record_name: str
    key: str
    fields: Tuple[FieldSpec, ...]
    figures: Tuple[Figure, ...]  # in evaluation order
    classifications: Tuple[CheckedClassification, ...]
    warnings: Tuple[Diagnostic, ...]
    allocations: Tuple[PortfolioSpec, ...]  # figures that need the whole portfolio
    tables: Mapping[str, Mapping[str, Decimal]]  # table name → {group: pool amount}
    pools: Tuple[PoolSpec, ...]
    depends: Mapping[str, FrozenSet[str]]  # figure name → every figure it uses, directly or not
    node_units: Tuple[Optional[Unit], ...] = attrs.field(repr=False)  # by node nid
    bottom_line: Optional[str]  # the money figure that ranks customers (`rank by`, else the documented rule)
    filename: str
    source: str = attrs.field(repr=False)
    history: Optional[HistorySpec] = None  # a record is one period of a customer's history
    warning_rules: Tuple[CheckedWarning, ...] = ()  # in file order

    def unit_of(self, node: ast.Expr) -> Unit:
        """The unit the checker gave this expression node."""
        unit = self.node_units[node.nid] if 0 <= node.nid < len(self.node_units) else None
        if unit is None:
            raise KeyError(f"no unit for node {node.nid} ({type(node).__name__})")
        return unit

    @property
    def names(self) -> Dict[str, Unit]:
        """The unit of every field and figure, by name."""
        return {**{f.name: field_unit(f.kind) for f in self.fields}, **{f.name: f.unit for f in self.figures}}

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    @property
    def is_portfolio(self) -> bool:
        """Whether decisions need the whole portfolio (the policy shares pooled costs)."""
        return bool(self.allocations)

    @property
    def passes(self) -> Tuple[Tuple[str, ...], ...]:
        """For a portfolio policy, the pooled figures each stage pass shares out, in order:
        a stage's drivers need only the allocations of earlier stages."""
        stages = sorted({a.stage for a in self.allocations})
        return tuple(tuple(a.name for a in self.allocations if a.stage == stage) for stage in stages)

    @functools.cached_property
    def digest(self) -> str:
        """"sha256:" and the SHA-256 of the exact policy text (UTF-8), as a stored portfolio
        context records the policy that made it: any change of the text counts, even of
        whitespace, a comment or a line end (CRLF or LF); only a leading BOM, which is not
        read as part of the text, does not."""
        return "sha256:" + hashlib.sha256(self.source.encode("utf-8", "surrogatepass")).hexdigest()
