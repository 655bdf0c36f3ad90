"""The policy language's vocabulary as frozen nodes.

Every node carries a `span` that is left out of equality, so a policy parsed
from formatted text compares equal to the original (`parse(format(p)) == p`).
Numbers are `Decimal`; sequences are tuples.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Optional, Union

import attrs


@attrs.frozen
class Span:
    """Where a node stands in the policy text (1-based line and column)."""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def covering(cls, first: "Span", last: "Span") -> "Span":
        return cls(first.line, first.column, last.end_line, last.end_column)


NOWHERE = Span(0, 0, 0, 0)


def _span() -> "attrs.Attribute":
    return attrs.field(default=NOWHERE, eq=False, repr=False, kw_only=True)


# ---- expressions ----------------------------------------------------------------


@attrs.frozen
class Number:
    """A plain number: `90`, `1,250.5`."""

    value: Decimal
    span: Span = _span()


@attrs.frozen
class Percent:
    """A percentage: `5%` holds 5, worth 0.05."""

    value: Decimal
    span: Span = _span()


@attrs.frozen
class Money:
    """An amount in a currency: `120.00 EUR`."""

    amount: Decimal
    currency: str
    span: Span = _span()


@attrs.frozen
class Rate:
    """A quantity per unit of a driver: `38.00 EUR per hour`, `2% per month`."""

    quantity: Union[Number, Percent, Money]
    per: str
    span: Span = _span()


@attrs.frozen
class Text:
    """A text literal in double quotes."""

    value: str
    span: Span = _span()


@attrs.frozen
class YesNo:
    """`yes` or `no`."""

    value: bool
    span: Span = _span()


@attrs.frozen
class Name:
    """A reference to a field, rate, cost, credit, measure, threshold or total."""

    name: str
    span: Span = _span()


@attrs.frozen
class Call:
    """A built-in function: `min(a, b)`, `max(...)`, `abs(x)`, `round(x, 2)`."""

    function: str
    args: tuple
    span: Span = _span()


@attrs.frozen
class Negate:
    """Unary minus."""

    operand: "Expr"
    span: Span = _span()


@attrs.frozen
class Binary:
    """Arithmetic: `+`, `-`, `*`, `/`, and `of` (`5% of revenue`)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@attrs.frozen
class Compare:
    """A comparison: `>`, `>=`, `<`, `<=`, `=`, `!=` (and `==`, which the checker rejects)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@attrs.frozen
class Between:
    """`x is between low and high`, both ends included; `negated` for `is not between`."""

    value: "Expr"
    low: "Expr"
    high: "Expr"
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class IsMissing:
    """`x is missing` (or `x is not missing` when negated) for optional fields."""

    value: "Expr"
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class Logical:
    """`and` / `or`, evaluated left to right, stopping as soon as the answer is known."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@attrs.frozen
class Not:
    """`not condition`."""

    operand: "Expr"
    span: Span = _span()


@attrs.frozen
class Conditional:
    """`value when condition else other`."""

    then: "Expr"
    condition: "Expr"
    otherwise: "Expr"
    span: Span = _span()


@attrs.frozen
class Allocate:
    """A pooled cost shared over the portfolio: `allocate POOL by DRIVER [within FIELD]`.

    `driver` is None for an equal share; `fallback_equal` (`otherwise equally`) shares
    equally where the drivers of a group add up to zero.
    """

    pool: "Expr"
    driver: Optional["Expr"]
    within: Optional[str] = None
    fallback_equal: bool = False
    span: Span = _span()


@attrs.frozen
class Referral:
    """Word of mouth: `referred VALUE via FIELD [levels N] [decay P%] [cap AMOUNT] [anyway FLAG VALUE]`.

    Each customer whose FIELD names this customer brings VALUE (worked out on that
    customer); level k counts decay^(k-1); one flagged as coming anyway brings the
    `anyway` value instead (e.g. only the acquisition cost saved). Self-referrals,
    unknown referrers and loops earn nothing and are noted, or with `strict` fail the record.
    """

    value: "Expr"
    via: str
    levels: int = 1
    decay: Decimal = Decimal(100)
    cap: Optional["Expr"] = None
    anyway_flag: Optional[str] = None
    anyway: Optional["Expr"] = None
    strict: bool = False  # a self-referral, unknown referrer or loop is an error for that record
    span: Span = _span()


Expr = Union[
    Number, Percent, Money, Rate, Text, YesNo, Name, Call, Negate, Binary,
    Compare, Between, IsMissing, Logical, Not, Conditional, Allocate, Referral,
]


# ---- statements ------------------------------------------------------------------


@attrs.frozen
class Header:
    """`policy "..."`, `version "..."` or `currency EUR`."""

    key: str
    value: str
    span: Span = _span()


@attrs.frozen
class Rounding:
    """`rounding half-up to cents per line`: how money figures are rounded, and when."""

    mode: str
    unit: str
    scope: str
    span: Span = _span()


@attrs.frozen
class Field:
    """One input column of the record, with its type and how to read it."""

    name: str
    type: str
    description: Optional[str] = None
    key: bool = False
    optional: bool = False
    default: Optional[Expr] = None
    column: Optional[str] = None
    span: Span = _span()


@attrs.frozen
class Record:
    """The record schema: the policy's only inputs."""

    name: str
    fields: tuple
    span: Span = _span()


@attrs.frozen
class Definition:
    """A named figure: a rate or parameter, cost, credit, measure or threshold."""

    kind: str  # "rate", "cost", "credit", "measure", "threshold"
    name: str
    expr: Expr
    span: Span = _span()


@attrs.frozen
class Constants:
    """A `rates` or `parameters` block of named constants."""

    keyword: str
    items: tuple  # of Definition with kind "rate"
    span: Span = _span()


@attrs.frozen
class Rule:
    """One classification rule; `condition` is None for `otherwise`."""

    label: str
    condition: Optional[Expr]
    action: Optional[str] = None
    reason: Optional[str] = None
    span: Span = _span()


@attrs.frozen
class Classification:
    """`classify NAME`: ordered rules, first match wins."""

    name: str
    rules: tuple
    span: Span = _span()


@attrs.frozen
class Table:
    """A pool per group: `table sales_pools` then `"north" = 120,000 EUR` lines."""

    name: str
    rows: tuple  # of (group text, Expr)
    span: Span = _span()


@attrs.frozen
class Pool:
    """A capacity pool: `pool support_centre = 560,000 EUR over 700,000 minutes`, used as a rate."""

    name: str
    amount: "Expr"
    volume: "Expr"
    unit: str
    span: Span = _span()


Statement = Union[Header, Rounding, Record, Constants, Definition, Table, Pool, Classification]


@attrs.frozen
class Policy:
    """A parsed policy: its statements in source order."""

    statements: tuple
    filename: str = attrs.field(default="<policy>", eq=False)
    source: str = attrs.field(default="", eq=False, repr=False)
