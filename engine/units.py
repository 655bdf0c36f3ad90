"""Units of figures and the arithmetic the checker allows between them.

A unit is a kind (money, count, hours, ...) and, for a rate, what it is per.
Each rule that refuses an operation says why and what the analyst probably meant.
"""
from __future__ import annotations

from typing import Optional

import attrs

NUMERIC = frozenset({"money", "number", "percent", "count", "hours", "days"})
QUANTITIES = frozenset({"count", "hours", "days"})
DIMENSIONLESS = frozenset({"number", "percent"})
FIELD_TYPES = ("money", "number", "count", "hours", "days", "percent", "text", "date", "yes/no", "month", "quarter", "year")
PERIOD_TYPES = ("month", "quarter", "year")  # a field of one of these makes each record one period of a history
TIME_WORDS = {"hour": "hour", "hours": "hour", "h": "hour", "day": "day", "days": "day"}


class UnitError(Exception):
    """An operation with no meaning for these units; `help` says what to write instead."""

    def __init__(self, message: str, help: str) -> None:
        super().__init__(message)
        self.message = message
        self.help = help


@attrs.frozen
class Unit:
    kind: str
    per: Optional[str] = None  # a rate: "hour", "day", or a count word such as "visit"
    literal: bool = False  # a bare number in the policy text adapts to the other side

    def describe(self) -> str:
        base = {
            "money": "money", "number": "a plain number", "percent": "a percentage",
            "count": "a count", "hours": "hours", "days": "days", "text": "text",
            "date": "a date", "yes/no": "yes/no",
        }[self.kind]
        if self.per:
            return f"{'money' if self.kind == 'money' else base} per {self.per}"
        return base

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC

    @property
    def is_scalar(self) -> bool:
        """Dimensionless and not a rate: scales whatever it multiplies."""
        return self.kind in DIMENSIONLESS and self.per is None


MONEY = Unit("money")
NUMBER = Unit("number")
PERCENT = Unit("percent")
COUNT = Unit("count")
YES_NO = Unit("yes/no")
TEXT = Unit("text")
LITERAL = Unit("number", literal=True)


def field_unit(kind: str) -> Unit:
    """The unit of a record field of this type: a period (month, quarter, year) is text, as
    written (`2025Q3`)."""
    return TEXT if kind in PERIOD_TYPES else Unit(kind)


def rate_word(word: str) -> str:
    """`hours`/`h` → `hour`, `days` → `day`; other driver words are counts, singular (`visit`,
    `minute`), so a rate reads "per minute" whether the policy wrote `per minute` or `over 700,000 minutes`."""
    return singular(word)


def singular(word: str) -> str:
    """A unit word as it reads after `per`: minutes → minute, calls → call, hours → hour."""
    if word in TIME_WORDS:
        return TIME_WORDS[word]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _drives(quantity: Unit, per: str) -> bool:
    """Can this quantity multiply a rate that is `per` this word?"""
    if quantity.kind == "number":
        return True
    if quantity.kind == "hours":
        return per == "hour"
    if quantity.kind == "days":
        return per == "day"
    return quantity.kind == "count" and per not in ("hour", "day")


def _require_numeric(*units: Unit) -> None:
    for unit in units:
        if not unit.is_numeric:
            raise UnitError(f"arithmetic needs numbers, but this is {unit.describe()}",
                            "compare text with `=` or `!=` instead")


def add(left: Unit, right: Unit, op: str = "+") -> Unit:
    """`+`, `-`, and anything that must agree in unit: min, max, both sides of a comparison."""
    _require_numeric(left, right)
    if left.literal:
        return right
    if right.literal:
        return left
    if left == right:
        return left
    if {left.kind, right.kind} == {"number", "percent"} and not (left.per or right.per):
        return NUMBER
    kinds = {left.kind, right.kind}
    if "money" in kinds and "percent" in kinds:
        share = "`5% of revenue`"
        raise UnitError(f"cannot {_verb(op)} money and a percentage",
                        f"to take a share of an amount, write {share}")
    raise UnitError(f"cannot {_verb(op)} {left.describe()} and {right.describe()}",
                    "both sides must be in the same unit")


def _verb(op: str) -> str:
    return {"+": "add", "-": "subtract", "compare": "compare"}.get(op, "combine")


def multiply(left: Unit, right: Unit) -> Unit:
    _require_numeric(left, right)
    for a, b in ((left, right), (right, left)):
        if a.literal:  # a bare number scales the other side, whichever side it stands on: a * 2 is a percentage
            return b
    for a, b in ((left, right), (right, left)):
        if a.is_scalar and not (a.kind == "number" and b.per):
            return b
    for a, b in ((left, right), (right, left)):
        if b.per and a.per is None and a.kind in QUANTITIES | {"number"}:
            if _drives(a, b.per):
                return Unit(b.kind)
            raise UnitError(f"{a.describe()} cannot drive a rate per {b.per}",
                            f"multiply a rate per {b.per} by a {'count' if b.per not in ('hour', 'day') else b.per + 's'} figure")
    if left.kind == "money" and right.kind == "money":
        raise UnitError("multiplying money by money has no meaning",
                        "multiply money by a count, a rate or a percentage")
    for a, b in ((left, right), (right, left)):
        if a.kind == "money" and a.per is None and b.kind in QUANTITIES and b.per is None:
            return MONEY
        if a.kind == "count" and b.kind in QUANTITIES and b.per is None:
            return b
    raise UnitError(f"cannot multiply {left.describe()} by {right.describe()}",
                    "one side should be a count, a rate or a percentage")


def divide(left: Unit, right: Unit) -> Unit:
    _require_numeric(left, right)
    if left.kind == right.kind and left.per == right.per and not (left.literal or right.literal):
        return NUMBER  # a unit over the same unit: 90% / 30% is 3, not 300%
    if right.literal or right.is_scalar:
        return left
    if left.per is None and right.per is None and right.kind in QUANTITIES:
        if left.kind == "money" or left.literal:
            return left  # an average: revenue / orders is money (per order), comparable with money
        per = {"hours": "hour", "days": "day"}.get(right.kind, "unit")
        return Unit(left.kind, per=per)
    raise UnitError(f"cannot divide {left.describe()} by {right.describe()}",
                    "divide by a count, hours, days or a plain number, or by a figure in the same unit")


def share_of(left: Unit, right: Unit) -> Unit:
    """`percent of amount`."""
    _require_numeric(right)
    if left.kind != "percent" or left.per is not None:
        raise UnitError(f"`of` takes a percentage on its left, not {left.describe()}",
                        "write e.g. `5% of revenue`, or use `*` to multiply")
    return right


def compare(left: Unit, right: Unit, op: str) -> Unit:
    if left.kind in ("text", "yes/no", "date") or right.kind in ("text", "yes/no", "date"):
        if left.kind != right.kind:
            raise UnitError(f"cannot compare {left.describe()} with {right.describe()}",
                            "both sides must be of the same kind")
        if left.kind != "date" and op not in ("=", "!="):
            raise UnitError(f"{left.describe()} can only be tested with `=` or `!=`", "use `=` or `!=`")
        return YES_NO
    try:
        add(left, right, "compare")
    except UnitError as error:
        raise UnitError(error.message, "compare figures of the same unit, e.g. money with money") from None
    return YES_NO


def unify_branches(then: Unit, otherwise: Unit) -> Unit:
    """The unit of `a when c else b`: both branches must agree."""
    if then.kind in ("text", "yes/no", "date") or otherwise.kind in ("text", "yes/no", "date"):
        if then.kind != otherwise.kind:
            raise UnitError(f"the two branches differ: {then.describe()} and {otherwise.describe()}",
                            "both values of `when ... else` must be of the same kind")
        return then
    try:
        return add(then, otherwise, "combine")
    except UnitError as error:
        raise UnitError(error.message.replace("cannot combine", "the two branches differ:"),
                        "both values of `when ... else` must be in the same unit") from None
