"""Exact share arithmetic: a pool divided in proportion to whole-number weights, to the
smallest currency unit, the shares always adding up to the pool.

Each share is pool × weight / total, rounded down to the smallest unit; the units left
over go one each to the largest remainders, ties to the earlier row. All in integers,
so exact for any portfolio. Drivers are kept as exact weights: driver × 10^6 as an int
where it fits, else the Decimal itself.
"""
from __future__ import annotations

import decimal
from decimal import Decimal
from typing import List, Sequence, Tuple, Union

WIDE = decimal.Context(prec=80, rounding=decimal.ROUND_FLOOR, traps=[decimal.InvalidOperation,
                                                                     decimal.DivisionByZero])
Weight = Union[int, Decimal]  # a driver × 10^6, exactly; -1 marks a row with no share

_SCALE = 6
_MILLION = Decimal("1E+6")
_ZERO = Decimal(0)


class ZeroTotal(Exception):
    """The drivers of a pool add up to zero, so the pool cannot be shared by them."""


def distribute(units: int, weights: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Share `units` smallest currency units in proportion to `weights` (whole numbers ≥ 0).

    Returns each weight's units, which add up to `units` exactly, and the positions that
    got one of the leftover units.
    """
    total = sum(weights)
    if total == 0:
        raise ZeroTotal()
    sign = -1 if units < 0 else 1
    units = abs(units)
    products = [units * w for w in weights]
    floors = [p // total for p in products]
    left = units - sum(floors)
    bonus: List[int] = []
    if left:
        remainders = [p % total for p in products]
        # The `left` largest remainders get a unit; of equal ones at the cut, the earlier rows.
        cut = sorted(remainders, reverse=True)[left - 1]
        above = [i for i, r in enumerate(remainders) if r > cut]
        bonus = above + [i for i, r in enumerate(remainders) if r == cut][:left - len(above)]
        for position in bonus:
            floors[position] += 1
    if sign < 0:
        floors = [-f for f in floors]
    return floors, bonus


def weight(driver: Decimal) -> Weight:
    """A driver kept for the share-out, exactly, as driver × 10^6: an int when it fits
    (28–32 bytes instead of a 104-byte Decimal, a million times over), else a Decimal.
    Negative drivers count as zero; an empty one is -1, as for a record in error."""
    if driver is None:
        return -1  # empty: the record gets an error
    if driver <= _ZERO:
        return 0
    scaled = driver * _MILLION  # exact: only the exponent changes
    whole = int(scaled)
    return whole if whole == scaled else scaled


def whole(weights: List[Weight]) -> Tuple[List[int], int]:
    """A group's weights as whole numbers, and how many more decimal places that took
    (when a driver had more than six)."""
    odd = [w for w in weights if w.__class__ is not int]
    if not odd:
        return weights, 0  # type: ignore[return-value]
    extra = max(-w.as_tuple().exponent for w in odd)  # type: ignore[union-attr, operator]
    return [w * 10 ** extra if w.__class__ is int else int(w.scaleb(extra)) for w in weights], extra  # type: ignore[union-attr]


def unscale(total: int, extra: int) -> Decimal:
    """A sum of weights back in the driver's own terms, without trailing zeros: 4, 6187243.66."""
    value = Decimal(total).scaleb(-_SCALE - extra)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
