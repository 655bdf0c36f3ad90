"""Histories: periods, how a policy reads them, and the windows history functions read.

A record of a history policy is one customer in one period (a field of type `month`,
`quarter` or `year`). A customer's periods are decided in order, each with the values of
its earlier periods at hand (`Earlier`), so that a figure can read its own past: the
history functions of engine/functions.py take a window of it (`window`), and an
explanation shows that same window, period by period.
"""
from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from typing import Any, Dict, Optional, Sequence, Tuple

import attrs

GRANULARITIES = ("month", "quarter", "year")
MAX_WINDOW = 120  # periods a history function may reach back: ten years of months

_FORMS = {
    "month": (re.compile(r"(\d{4})-(\d{1,2})"), "a month such as 2025-03"),
    "quarter": (re.compile(r"(\d{4})\s*-?\s*[Qq]([1-4])"), "a quarter such as 2025Q3"),
    "year": (re.compile(r"(\d{4})"), "a year such as 2025"),
}


class Period(str):
    """A period as written in the output (`2025Q3`), ordered by `ordinal`: consecutive
    periods have consecutive ordinals, so a gap is a difference of more than one."""

    ordinal: int

    def __new__(cls, label: str, ordinal: int) -> "Period":
        made = super().__new__(cls, label)
        made.ordinal = ordinal
        return made

    def __reduce__(self) -> Any:
        return (Period, (str(self), self.ordinal))


def expected(granularity: str) -> str:
    """What a value of the granularity looks like, for messages."""
    return _FORMS[granularity][1]


@functools.lru_cache(maxsize=4096)  # a batch names few periods, on every row
def read_period(granularity: str, text: str) -> Optional[Period]:
    """The period `text` names in the granularity; None when it is not one."""
    pattern, _ = _FORMS[granularity]
    found = pattern.fullmatch(text.strip())
    if found is None:
        return None
    year = int(found.group(1))
    if granularity == "year":
        return _period(granularity, year)
    part = int(found.group(2))
    if granularity == "month" and not 1 <= part <= 12:
        return None
    return _period(granularity, year * _PER_YEAR[granularity] + part - 1)


_PER_YEAR = {"month": 12, "quarter": 4, "year": 1}


def _period(granularity: str, ordinal: int) -> Period:
    """The period with this ordinal, labelled as the output writes it: 2025-03, 2025Q3, 2025."""
    year, part = divmod(ordinal, _PER_YEAR[granularity])
    label = {"month": f"{year:04d}-{part + 1:02d}", "quarter": f"{year:04d}Q{part + 1}", "year": f"{year:04d}"}
    return Period(label[granularity], ordinal)


def looks_like(text: str) -> Optional[str]:
    """The granularity a value that is not of the declared one seems to be, for messages."""
    for granularity in GRANULARITIES:
        if read_period(granularity, text) is not None:
            return granularity
    return None


# ---- how a policy reads its histories: the `history` block ------------------------------

@attrs.frozen
class HistorySpec:
    """The checked `history` block and the period field it governs."""

    field: str  # the period field's name
    granularity: str  # month, quarter or year
    missing: str  # what a period with no row is: "zero" (every figure 0), "skip" (left out) or "error"
    sorted: bool  # rows grouped by customer, periods ascending: streamed; else every customer held
    every: bool  # a decision for every period, else for the latest only

    @property
    def zero(self) -> bool:
        return self.missing == "zero"


# each phrase of a `history` line → the setting it makes
PHRASES: Dict[Tuple[str, ...], Tuple[str, Any]] = {
    ("missing", "periods", "are", "zero"): ("missing", "zero"),
    ("missing", "periods", "are", "skipped"): ("missing", "skip"),
    ("missing", "periods", "are", "errors"): ("missing", "error"),
    ("input", "sorted"): ("sorted", True),
    ("input", "unsorted"): ("sorted", False),
    ("decide", "every", "period"): ("every", True),
    ("decide", "latest", "period"): ("every", False),
}
DEFAULTS = {"missing": "error", "sorted": True, "every": False}


# ---- the values of a customer's earlier periods ------------------------------------------

# (period, every value the plan computed for it), for each earlier period, oldest first
Earlier = Tuple[Tuple[Period, tuple], ...]


def window(earlier: Earlier, slot: int, current: Any, period: Period, length: Optional[int],
           zero: bool) -> Tuple[Tuple[Period, Any], ...]:
    """The last `length` periods of the value in `slot` (all of them for None), oldest first,
    ending with this period's `current` value. With `zero`, a period in the window that has
    no row counts as 0 (a period before the history's first is not in it); else the window
    is the last `length` periods that have rows."""
    taken = earlier if length is None else earlier[max(0, len(earlier) - length + 1):]
    if zero and taken and taken[0][0].ordinal != period.ordinal - len(taken):
        return _filled(earlier, slot, current, period, length)  # a gap among the periods it reads
    points = [(earlier_period, slots[slot]) for earlier_period, slots in taken]
    points.append((period, current))
    return tuple(points)


def _filled(earlier: Earlier, slot: int, current: Any, period: Period,
            length: Optional[int]) -> Tuple[Tuple[Period, Any], ...]:
    """`window` with missing periods counting as zero, when some are missing."""
    points = [(period, current)]
    for earlier_period, slots in reversed(earlier):
        if length is not None and len(points) >= length:
            break
        gap = points[-1][0].ordinal - earlier_period.ordinal - 1
        granularity = _granularity_of(earlier_period)
        for _ in range(gap):
            if length is not None and len(points) >= length:
                break
            points.append((_period(granularity, points[-1][0].ordinal - 1), Decimal(0)))
        if length is not None and len(points) >= length:
            break
        points.append((earlier_period, slots[slot]))
    points.reverse()
    return tuple(points)


def _granularity_of(period: Period) -> str:
    """The granularity a period's label is written in (2025Q3, 2025-03 or 2025)."""
    return "quarter" if "Q" in period else "month" if "-" in period else "year"


def ago(earlier: Earlier, slot: int, current: Any, period: Period, periods: int, zero: bool) -> Any:
    """The value `periods` periods before this one; the first period's when the history does
    not reach back so far (so that a change is the change since the history began)."""
    return window(earlier, slot, current, period, periods + 1, zero)[0][1]


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """`C-999` before `C-1000`: runs of digits compared as numbers (by length without leading
    zeros, then digit by digit, so that no id, however long, is converted to an int)."""
    key = []
    for part in _DIGITS.split(text):
        if part.isdigit():
            digits = part.lstrip("0")
            key.append((0, len(digits), digits))
        elif part:
            key.append((1, 0, part))
    return tuple(key)


# ---- exact least squares -------------------------------------------------------------------


def slope(points: Sequence[Tuple[Period, Any]]) -> Tuple[int, int]:
    """The least-squares slope of the values per period, exactly, as (numerator, denominator)
    integers, the denominator positive ((0, 1) for a single point): (nΣxy − ΣxΣy) / (nΣx² −
    (Σx)²), the values as whole multiples of their common denominator (no decimal context is
    involved). Left unreduced: `round_ratio` needs no common factor taken out."""
    n = len(points)
    ratios = [value.as_integer_ratio() for _, value in points]
    common = math.lcm(*[denominator for _, denominator in ratios])
    ys = [numerator * (common // denominator) for numerator, denominator in ratios]
    first = points[0][0].ordinal
    xs = [period.ordinal - first for period, _ in points]
    sx, sy = sum(xs), sum(ys)
    denominator = n * sum([x * x for x in xs]) - sx * sx
    if denominator == 0:
        return 0, 1
    return n * sum([x * y for x, y in zip(xs, ys)]) - sx * sy, denominator * common


def round_ratio(numerator: int, denominator: int, quantum: Decimal, rounding: str) -> Decimal:
    """numerator / denominator (denominator > 0) rounded to a multiple of `quantum` in a decimal
    rounding mode, in integers only: no intermediate decimal, so no double rounding."""
    per, unit = quantum.as_integer_ratio()  # quantum = per / unit
    numerator, denominator = numerator * unit, denominator * per  # the value in quanta
    negative = numerator < 0
    whole, rest = divmod(-numerator if negative else numerator, denominator)
    if rest:
        twice = 2 * rest  # against the denominator: below, at or above half a quantum
        if rounding == "ROUND_HALF_UP":
            whole += twice >= denominator
        elif rounding == "ROUND_HALF_EVEN":
            whole += twice > denominator or (twice == denominator and whole % 2 == 1)
        elif rounding == "ROUND_HALF_DOWN":
            whole += twice > denominator
        elif rounding == "ROUND_UP" or rounding == ("ROUND_FLOOR" if negative else "ROUND_CEILING"):
            whole += 1
    return Decimal(-whole if negative else whole).scaleb(quantum.as_tuple().exponent)  # type: ignore[arg-type]
