"""Compact per-row storage for portfolio passes: a million rows must fit.

`Values` holds one slot's value for every row; `Carry` holds, between streamed stage
passes, the few slots later passes read; `Column` holds one portfolio figure's result
for every row (whole smallest units in an array, the group as an index, errors only for
the rows that have them).
"""
from __future__ import annotations

from array import array
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import attrs

from ..checked import RoundingRule
from ..money import CONTEXT

if TYPE_CHECKING:
    from ..compiler import Plan

INT64 = 2 ** 63
CHUNK = 256  # rows a stage pass takes at a time (their slots are held until taken)


@attrs.frozen
class GroupInfo:
    """What the rows of one group of a share-out have in common."""

    group: Optional[str]
    pool: Decimal
    total: Decimal  # the drivers added up, or the number of customers for equal shares
    basis: str  # "driver", "equal", or "fallback" (drivers added up to zero)


class Values:
    """One slot's value for every row, compact: a Decimal with the column's usual exponent as
    a whole number in an array, anything else (text, other exponents, None) as itself."""

    __slots__ = ("whole", "unit", "up", "others")

    def __init__(self) -> None:
        self.whole = array("q")
        self.unit: Optional[Decimal] = None  # 10^exponent
        self.up: Optional[Decimal] = None  # 10^-exponent
        self.others: Dict[int, Any] = {}

    def add(self, value: Any) -> None:
        position = len(self.whole)
        if value.__class__ is Decimal and value.is_finite():
            if self.unit is None:
                exponent = value.as_tuple().exponent
                assert isinstance(exponent, int)
                self.unit, self.up = Decimal(1).scaleb(exponent), Decimal(1).scaleb(-exponent)
            assert self.up is not None
            if value.same_quantum(self.unit):
                whole = int(value * self.up)  # exact: only the exponent changes
                if -INT64 <= whole < INT64:
                    self.whole.append(whole)
                    return
        self.whole.append(0)
        self.others[position] = value

    def get(self, position: int) -> Any:
        if position in self.others:
            return self.others[position]
        assert self.unit is not None
        return Decimal(self.whole[position]) * self.unit  # exact, with the exponent it had


class Carry:
    """Between streamed stage passes: for every row, the few slots that later stage passes
    read (their segment's inputs and their share-outs' drivers, groups and ids), so that
    only the first pass and the deciding pass read the records."""

    def __init__(self, plan: "Plan", reads: Dict[int, set]) -> None:
        """`reads`: for each later stage pass (by number), the slots its share-outs read."""
        stages = plan.stages
        needed: set = set()
        for segment in stages[1:]:
            wanted = set(segment.uses) | reads.get(segment.number, set())
            needed |= {slot for slot in wanted if slot < segment.start}
        self.stored: Dict[int, List[int]] = {  # pass → the slots stored after it
            segment.number: sorted(slot for slot in needed
                                   if (segment.number == 1 or segment.start <= slot) and slot < segment.end)
            for segment in stages}
        self.columns: Dict[int, Values] = {slot: Values() for slot in needed}
        self.bad = bytearray()  # per row of the first pass, 1 if the row is in error

    def after(self, number: int) -> List[Tuple[int, Values]]:
        return [(slot, self.columns[slot]) for slot in self.stored.get(number, ())]

    def put(self, carry: List[Tuple[int, Values]], position: int, slots: Optional[tuple]) -> None:
        """Store one row's slots after a pass (None: the row is in error), rows in order."""
        if position == len(self.bad):
            self.bad.append(0)
        if slots is None:
            self.bad[position] = 1
        for slot, values in carry:
            values.add(None if slots is None else slots[slot])

    def slots(self, position: int, size: int) -> Optional[tuple]:
        """The row's given slots for a segment that takes `size` of them, those not carried None."""
        if self.bad[position]:
            return None
        slots: list = [None] * size
        for slot, values in self.columns.items():
            if slot < size:
                slots[slot] = values.get(position)
        return tuple(slots)


class Column:
    """One portfolio figure's result for every row, kept small: whole smallest units in an array,
    the group as an index into `infos`, and errors only for the rows that have them. A kind may
    keep what its explanations need in `detail` (a referral credit keeps its network)."""

    __slots__ = ("units", "quantum", "exponent", "bonus", "group", "infos", "errors", "detail", "rounding", "name")

    def __init__(self, name: str, size: int, rounding: RoundingRule) -> None:
        quantum = rounding.quantum
        self.name, self.rounding = name, rounding
        self.units = array("q", bytes(8 * size))
        self.quantum = quantum
        exponent = quantum.as_tuple().exponent
        assert isinstance(exponent, int)
        self.exponent = exponent
        self.bonus = bytearray(size)  # got a remainder unit
        self.group = array("i", [-1]) * size  # index into infos; -1: no share
        self.infos: List[GroupInfo] = []
        self.errors: Dict[int, str] = {}  # position → why the row gets no share (its record error)
        self.detail: Any = None

    def set(self, position: int, amount: Decimal) -> None:
        self.units[position] = int(amount.scaleb(-self.exponent))

    def amount(self, position: int) -> Decimal:
        return CONTEXT.multiply(Decimal(self.units[position]), self.quantum)  # exact, whatever the caller's context

    def shared(self, position: int) -> Optional[Tuple[Optional[str], Decimal]]:
        """(group, amount) of the row's share of a pool, if it got one."""
        index = self.group[position]
        if index < 0 or position in self.errors:
            return None
        return self.infos[index].group, self.amount(position)
