"""The policy language's vocabulary as frozen nodes.

Every node carries a `span` that is left out of equality, so a policy parsed
from formatted text compares equal to the original (`parse(format(p)) == p`).
Numbers are `Decimal`; sequences are tuples.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar, Union

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


def _span() -> Any:
    return attrs.field(default=NOWHERE, eq=False, repr=False, kw_only=True)


def _nid() -> Any:
    """A node's identity within its checked policy (see `numbered`); -1 until numbered."""
    return attrs.field(default=-1, eq=False, repr=False, kw_only=True)


# ---- expressions ----------------------------------------------------------------


@attrs.frozen
class Number:
    """A plain number: `90`, `1,250.5`."""

    value: Decimal
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Percent:
    """A percentage: `5%` holds 5, worth 0.05."""

    value: Decimal
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Money:
    """An amount in a currency: `120.00 EUR`."""

    amount: Decimal
    currency: str
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Rate:
    """A quantity per unit of a driver: `38.00 EUR per hour`, `2% per month`."""

    quantity: Union[Number, Percent, Money]
    per: str
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Text:
    """A text literal in double quotes."""

    value: str
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class YesNo:
    """`yes` or `no`."""

    value: bool
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Name:
    """A reference to a field, rate, cost, credit, measure, threshold or total."""

    name: str
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Call:
    """A built-in function: `min(a, b)`, `max(...)`, `abs(x)`, `round(x, 2)`."""

    function: str
    args: tuple
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Negate:
    """Unary minus."""

    operand: "Expr"
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Binary:
    """Arithmetic: `+`, `-`, `*`, `/`, and `of` (`5% of revenue`)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Compare:
    """A comparison: `>`, `>=`, `<`, `<=`, `=`, `!=` (and `==`, which the checker rejects)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Between:
    """`x is between low and high`, both ends included; `negated` for `is not between`."""

    value: "Expr"
    low: "Expr"
    high: "Expr"
    negated: bool = False
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class IsMissing:
    """`x is missing` (or `x is not missing` when negated) for optional fields."""

    value: "Expr"
    negated: bool = False
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Logical:
    """`and` / `or`, evaluated left to right, stopping as soon as the answer is known."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Not:
    """`not condition`."""

    operand: "Expr"
    span: Span = _span()
    nid: int = _nid()


@attrs.frozen
class Conditional:
    """`value when condition else other`."""

    then: "Expr"
    condition: "Expr"
    otherwise: "Expr"
    span: Span = _span()
    nid: int = _nid()


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
    nid: int = _nid()


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
    nid: int = _nid()


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


@attrs.frozen
class HistoryOption:
    """One line of a `history` block, as its words (`missing periods are zero`)."""

    words: Tuple[str, ...]
    span: Span = _span()


@attrs.frozen
class History:
    """`history`: how a record's periods are read (see engine/history.py for the phrases)."""

    options: tuple  # of HistoryOption
    span: Span = _span()


@attrs.frozen
class WarningRule:
    """`warn NAME when CONDITION message "..."`: a named warning beside the classification."""

    name: str
    condition: Expr
    message: Optional[str] = None
    span: Span = _span()


Statement = Union[Header, Rounding, Record, Constants, Definition, Table, Pool, Classification, History, WarningRule]


@attrs.frozen
class Policy:
    """A parsed policy: its statements in source order."""

    statements: tuple
    filename: str = attrs.field(default="<policy>", eq=False)
    source: str = attrs.field(default="", eq=False, repr=False)
    # How many expression nodes the parser numbered (their `nid`s are below it); 0 for a
    # policy built in code, which `numbered` numbers.
    nodes: int = attrs.field(default=0, eq=False, repr=False)


# ---- walking the tree ------------------------------------------------------------

# The sub-expressions of each kind of node, in source order: the one place that knows
# where a node keeps its children, so every pass walks the tree the same way.
_CHILDREN = {
    Rate: ("quantity",),
    Call: ("args",),
    Negate: ("operand",),
    Binary: ("left", "right"),
    Compare: ("left", "right"),
    Between: ("value", "low", "high"),
    IsMissing: ("value",),
    Logical: ("left", "right"),
    Not: ("operand",),
    Conditional: ("then", "condition", "otherwise"),
    Allocate: ("pool", "driver"),
    Referral: ("value", "cap", "anyway"),
}
_EXPRESSIONS = frozenset(Expr.__args__)  # type: ignore[attr-defined]


def is_expr(value: object) -> bool:
    return type(value) in _EXPRESSIONS


def children(node: "Expr") -> Tuple["Expr", ...]:
    """The node's sub-expressions, in source order (absent optional parts left out)."""
    found: List[Expr] = []
    for name in _CHILDREN.get(type(node), ()):
        value = getattr(node, name)
        if isinstance(value, tuple):
            found.extend(value)
        elif value is not None:
            found.append(value)
    return tuple(found)


def walk(node: "Expr") -> Iterator["Expr"]:
    """The node and every node below it, parents before children, in source order.
    Iterative, so a deep expression never reaches Python's recursion limit."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def statement_exprs(statement: "Statement") -> Tuple["Expr", ...]:
    """The expressions a statement holds, in source order."""
    if isinstance(statement, Definition):
        return (statement.expr,)
    if isinstance(statement, Constants):
        return tuple(item.expr for item in statement.items)
    if isinstance(statement, Record):
        return tuple(f.default for f in statement.fields if f.default is not None)
    if isinstance(statement, Table):
        return tuple(amount for _, amount in statement.rows)
    if isinstance(statement, Pool):
        return (statement.amount, statement.volume)
    if isinstance(statement, Classification):
        return tuple(r.condition for r in statement.rules if r.condition is not None)
    if isinstance(statement, WarningRule):
        return (statement.condition,)
    return ()


T = TypeVar("T")


class Visitor(Generic[T]):
    """Calls `visit_<NodeClass>(node, *args)` for a node, as Jinja's NodeVisitor does; a
    class without its own method goes to `generic_visit`. Methods are found once per class."""

    def visit(self, node: "Expr", *args: Any) -> T:
        cls = type(self)
        table = cls.__dict__.get("_visit_methods")
        if table is None:  # each subclass its own table, filled as node classes are met
            table = {}
            setattr(cls, "_visit_methods", table)
        method = table.get(type(node))
        if method is None:
            method = getattr(cls, "visit_" + type(node).__name__, None) or cls.generic_visit
            table[type(node)] = method
        return method(self, node, *args)

    def generic_visit(self, node: "Expr", *args: Any) -> T:
        raise TypeError(f"{type(self).__name__} has no visit_{type(node).__name__}")


def numbered(policy: "Policy") -> Tuple["Policy", int]:
    """The policy with every expression node given its identity `nid`: 0, 1, 2... in source
    order, parents before children. Returns it and the number of nodes. The checked policy
    and everything after it (plan, explanations) key their tables by these numbers, never
    by Python object addresses."""
    count = 0

    def number(expr: "Expr") -> "Expr":
        nonlocal count
        originals = list(walk(expr))
        ids = {id(node): count + position for position, node in enumerate(originals)}
        count += len(originals)
        done: Dict[int, Expr] = {}
        for current in reversed(originals):  # children first, so each parent takes the new children
            updates: Dict[str, Any] = {"nid": ids[id(current)]}
            for name in _CHILDREN.get(type(current), ()):
                value = getattr(current, name)
                if isinstance(value, tuple):
                    updates[name] = tuple(done[id(v)] for v in value)
                elif value is not None:
                    updates[name] = done[id(value)]
            done[id(current)] = attrs.evolve(current, **updates)
        return done[id(expr)]

    statements = tuple(_map_statement(statement, number) for statement in policy.statements)
    return attrs.evolve(policy, statements=statements), count


def _map_statement(statement: "Statement", change: Callable[["Expr"], "Expr"]) -> "Statement":
    if isinstance(statement, Definition):
        return attrs.evolve(statement, expr=change(statement.expr))
    if isinstance(statement, Constants):
        return attrs.evolve(statement, items=tuple(attrs.evolve(i, expr=change(i.expr)) for i in statement.items))
    if isinstance(statement, Record):
        return attrs.evolve(statement, fields=tuple(
            attrs.evolve(f, default=change(f.default)) if f.default is not None else f for f in statement.fields))
    if isinstance(statement, Table):
        return attrs.evolve(statement, rows=tuple((group, change(amount)) for group, amount in statement.rows))
    if isinstance(statement, Pool):
        return attrs.evolve(statement, amount=change(statement.amount), volume=change(statement.volume))
    if isinstance(statement, Classification):
        return attrs.evolve(statement, rules=tuple(
            attrs.evolve(r, condition=change(r.condition)) if r.condition is not None else r for r in statement.rules))
    if isinstance(statement, WarningRule):
        return attrs.evolve(statement, condition=change(statement.condition))
    return statement
