"""What each history function computes, from the window of past values it reads.

Each takes (earlier periods, slot of the named figure, its value now, this period, whether
missing periods count as zero, the number of periods or None) and its constants, as the
compiled plan calls it (see `Function.history` in engine/functions.py); the window is
`history.window`, which the explanation shows too.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

from .history import Earlier, Period, ago, round_ratio, slope, window


def previous(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    return ago(earlier, slot, current, period, periods, zero)


def change(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    return current - ago(earlier, slot, current, period, periods, zero)


def change_percent(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    """A division by an earlier value of 0 fails the record as any division by zero does."""
    before = ago(earlier, slot, current, period, periods, zero)
    return (current - before) / abs(before)


def sum_last(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    return sum((value for _, value in window(earlier, slot, current, period, periods, zero)), Decimal(0))


def average_last(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    points = window(earlier, slot, current, period, periods, zero)
    return sum((value for _, value in points), Decimal(0)) / len(points)


def min_last(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    return min(value for _, value in window(earlier, slot, current, period, periods, zero))


def max_last(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Any:
    return max(value for _, value in window(earlier, slot, current, period, periods, zero))


def trend(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int,
          quantum: Decimal, rounding: str) -> Decimal:
    return round_ratio(*slope(window(earlier, slot, current, period, periods, zero)), quantum, rounding)


def periods_negative(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool, periods: int) -> Decimal:
    return Decimal(sum(1 for _, value in window(earlier, slot, current, period, periods, zero) if value <= 0))


def periods_since_positive(earlier: Earlier, slot: int, current: Any, period: Period, zero: bool,
                           periods: Optional[int] = None) -> Decimal:
    points = window(earlier, slot, current, period, None, zero)
    for back, (_, value) in enumerate(reversed(points)):
        if value > 0:
            return Decimal(back)
    return Decimal(len(points))
