"""Pooled costs shared out over the portfolio: `allocate POOL by DRIVER [within FIELD]`,
equally, from a table of pools per group, with `otherwise equally` where drivers add up
to zero. Shares are exact (shares.py): they always add up to the pool."""
from __future__ import annotations

import decimal
from array import array
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, Union

import attrs

from ..checked import AllocationSpec, CheckedPolicy
from ..display import short
from ..formatter import format_expr
from ..money import grouped, quantity
from .kind import Gather, Kind
from .schema import Amount, Count, Fields, Invalid, Items, Maybe, Text, shown
from .kind import Share as ShareBase
from .shares import WIDE, distribute, unscale, weight, whole
from .storage import Column, GroupInfo


LARGEST_POOL = Decimal(10) ** 15  # in currency units: its smallest units fit a 64-bit share


@attrs.frozen
class GroupContext:
    """One group's pool and driver total, as the portfolio run found them."""

    pool: Decimal
    total: Decimal
    customers: int
    allocated: Decimal


@attrs.frozen
class AllocationContext:
    name: str
    driver: Optional[str]  # the driver formula, for explanations; None for equal shares
    groups: Dict[Optional[str], GroupContext]


@attrs.frozen
class Share(ShareBase):
    """One customer's share of one pool, with everything its explanation needs."""

    allocation: str
    group: Optional[str]
    pool: Decimal
    total: Decimal
    amount: Decimal
    remainder: bool  # got one of the leftover smallest units
    context: str  # "this run" or the label of a stored context
    basis: str = "driver"  # "driver", "equal" (shared equally), or "fallback" (drivers added up to zero)

    def explain(self, decision: Any) -> str:
        """pool × driver / portfolio total, with the totals named and where they came from."""
        plan = decision.plan
        expr = plan.policy.figure(self.allocation).expr
        group = f" of {expr.within} \"{self.group}\"" if expr.within else ""
        if self.basis != "driver":
            why = "equal shares" if self.basis == "equal" else "drivers add up to zero: equal shares"
            how = f"{grouped(self.pool)} / {quantity(self.total)} customers{group} ({why})"
        else:
            driver = format_expr(expr.driver)
            unit = plan.policy.unit_of(expr.driver)
            value = max(plan.driver_value(self.allocation, decision.slots), Decimal(0))  # as it was shared
            how = (f"{grouped(self.pool)} * {driver} {short(value, unit)} / "
                   f"{short(self.total, unit)} (total {driver}{group})")
        extra = f" + {grouped(plan.policy.rounding.quantum)} remainder unit" if self.remainder else ""
        return f"{how}{extra} = {grouped(self.amount)} [portfolio: {self.context}]"


class _Gather(Gather):
    """Per row: its group (an index into the group names) and its driver as an exact weight
    (-1 for a record in error), in arrays (a list only if a weight will not fit in 64 bits)."""

    def __init__(self, plan: Any, spec: AllocationSpec) -> None:
        super().__init__()
        self.spec = spec
        self.within = plan.figure_slot[spec.within] if spec.within else None
        self.driver = plan.driver_slot[spec.name] if spec.driver is not None else None
        self.groups: Optional[array] = array("i") if self.within is not None else None  # None: one group
        self.index: Dict[str, int] = {}  # group → its number, in order of first appearance
        self.weights: Any = array("q")

    def reads(self) -> Set[int]:
        return {slot for slot in (self.within, self.driver) if slot is not None}

    def take(self, chunk: List[Optional[tuple]], start: int) -> None:
        spec, driver = self.spec, self.driver
        if driver is None:
            weights = [-1 if s is None else 1 for s in chunk]
        else:
            weights = [-1 if s is None else weight(s[driver]) for s in chunk]  # type: ignore[misc]  # ints or Decimals
            if -1 in weights:
                for offset, slots in enumerate(chunk):
                    if slots is not None and weights[offset] == -1:
                        self.errors[start + offset] = (
                            f"the driver of the allocation '{spec.name}' ({format_expr(spec.driver)}) is empty "
                            "for this record; give the field a default, or test it with `is missing`")
        if self.within is not None:
            within, index = self.within, self.index
            found = [None if s is None else s[within] for s in chunk]
            if None in found:
                for offset, (slots, group) in enumerate(zip(chunk, found)):
                    if slots is not None and group is None:
                        self.errors[start + offset] = (f"{spec.within} is empty, so the record belongs to no "
                                                       f"group of the allocation '{spec.name}'")
                        weights[offset] = -1
            assert self.groups is not None
            self.groups += array("i", [-1 if g is None else index.setdefault(g, len(index)) for g in found])
        if self.weights.__class__ is array:
            try:
                self.weights += array("q", weights)
                return
            except (OverflowError, TypeError):  # a driver too large for 64 bits, or finer than 10^-6
                self.weights = list(self.weights)
        self.weights += weights

    def exclude(self, positions: Iterable[int]) -> None:
        for position in positions:
            self.weights[position] = -1


class AllocationKind(Kind):
    spec = AllocationSpec
    section = "allocations"
    gatherer = _Gather

    def share_out(self, policy: CheckedPolicy, spec: AllocationSpec, gather: Gather, label: str
                  ) -> Tuple[Column, AllocationContext]:
        """Every row's share of the pool (of its group), or the text of the error that row gets."""
        assert isinstance(gather, _Gather)
        weights = gather.weights
        quantum = policy.rounding.quantum
        column = Column(spec.name, len(weights), policy.rounding)
        column.errors.update(gather.errors)
        groups: Dict[Optional[str], array] = {}
        if gather.groups is None:
            groups[None] = array("q", (p for p, w in enumerate(weights) if w >= 0))
        else:
            names = list(gather.index)
            by_index = [array("q") for _ in names]
            for position, (row_weight, index) in enumerate(zip(weights, gather.groups)):
                if row_weight >= 0:
                    by_index[index].append(position)
            groups = {name: positions for name, positions in zip(names, by_index) if positions}
        context: Dict[Optional[str], GroupContext] = {}
        table = policy.tables.get(spec.table) if spec.table else None
        with decimal.localcontext(WIDE):
            for group, positions in groups.items():
                if table is not None and group not in table:
                    for position in positions:
                        column.errors[position] = (f"no pool for {spec.within} '{group}' in the table "
                                                   f"'{spec.table}' of the allocation '{spec.name}'")
                    continue
                amount = table[group] if table is not None and group is not None else spec.pool
                assert amount is not None
                if abs(amount) >= LARGEST_POOL:  # shares are whole smallest units in 64 bits
                    for position in positions:
                        column.errors[position] = (f"the pool of the allocation '{spec.name}' ({amount:,f}) is "
                                                   f"too large to share out exactly: at most {LARGEST_POOL:,}")
                    continue
                pool = amount.quantize(quantum, decimal.ROUND_HALF_UP)
                group_weights, extra = whole([weights[p] for p in positions])
                total = unscale(sum(group_weights), extra)
                equal = spec.driver is None or (total == 0 and spec.fallback_equal)
                if total == 0 and not equal:
                    where = f" in {spec.within} '{group}'" if spec.within else ""
                    for position in positions:
                        column.errors[position] = (
                            f"the drivers of the allocation '{spec.name}' add up to zero{where}, so its pool "
                            f"cannot be shared by them; add `otherwise equally` to share it equally instead")
                    context[group] = GroupContext(pool, total, len(positions), Decimal(0))
                    continue
                basis = "driver"
                if equal:
                    basis = "equal" if spec.driver is None else "fallback"
                    group_weights = [1] * len(positions)
                column.infos.append(GroupInfo(group, pool, total if basis == "driver" else Decimal(len(positions)),
                                              basis))
                info = len(column.infos) - 1
                units, bonus = distribute(int(pool.scaleb(-column.exponent)), group_weights)
                if len(positions) == len(weights):  # every row, in order
                    column.units = array("q", units)
                    column.group = array("i", [info]) * len(positions)
                else:
                    for position, share in zip(positions, units):
                        column.units[position] = share
                        column.group[position] = info
                for index in bonus:
                    column.bonus[positions[index]] = 1
                context[group] = GroupContext(pool, total, len(positions), pool)
        if table is not None:
            for group, amount in table.items():
                context.setdefault(group, GroupContext(amount, Decimal(0), 0, Decimal(0)))  # a pool nobody shared
        driver_text = format_expr(spec.driver) if spec.driver is not None else None
        return column, AllocationContext(spec.name, driver_text, context)

    def share(self, spec: AllocationSpec, column: Column, position: int, label: str) -> Share:
        info = column.infos[column.group[position]]
        return Share(spec.name, info.group, info.pool, info.total, column.amount(position),
                     bool(column.bonus[position]), label, info.basis)

    def from_context(self, plan: Any, spec: AllocationSpec, stored: Optional[AllocationContext], slots: tuple,
                     label: str) -> Union[Share, str]:
        """No remainder units here: there is no portfolio to balance."""
        group = slots[plan.figure_slot[spec.within]] if spec.within else None
        if stored is None:
            return f"the stored context {label} has no allocation '{spec.name}': it was made with another policy"
        found = stored.groups.get(group)
        if found is None:
            where = f" for {spec.within} '{group}'" if spec.within else ""
            return f"no pool '{spec.name}'{where} in the stored context {label}"
        if spec.driver is not None and not found.total and not spec.fallback_equal:
            return (f"the drivers of '{spec.name}' added up to zero in the stored context "
                    f"{label}; add `otherwise equally` to share it equally instead")
        basis = "driver" if spec.driver is not None and found.total else (
            "equal" if spec.driver is None else "fallback")
        if basis == "driver":
            driver, total = max(plan.driver_value(spec.name, slots), Decimal(0)), found.total
        else:
            driver, total = Decimal(1), Decimal(found.customers + 1)  # the new customer joins the group
        rounding = plan.policy.rounding
        amount = (found.pool * driver / total).quantize(rounding.quantum, rounding.rounding)
        return Share(spec.name, group, found.pool, total, amount, False, label, basis)

    def decided(self, spec: AllocationSpec, column: Column, stored: AllocationContext, lost: Set[int]
                ) -> AllocationContext:
        """A record in error keeps no share: its group's pool counts that much less as allocated."""
        unshared: Dict[Optional[str], Decimal] = {}
        for position in lost:
            share = column.shared(position)
            if share is not None:
                unshared[share[0]] = unshared.get(share[0], Decimal(0)) + share[1]
        if not unshared:
            return stored
        return attrs.evolve(stored, groups={
            group: attrs.evolve(g, allocated=g.allocated - unshared.get(group, 0)) for group, g in stored.groups.items()})

    def dump(self, stored: AllocationContext) -> Any:
        """Decimals as plain strings ("420000.00", never an exponent), one entry per group."""
        return {"driver": stored.driver, "groups": [
            {"group": g, "pool": format(c.pool, "f"), "total": format(c.total, "f"), "customers": c.customers,
             "allocated": format(c.allocated, "f")} for g, c in stored.groups.items()]}

    def load(self, name: str, data: Any) -> AllocationContext:
        """Read by its schema: a pool, its total and what was allocated are decimals, not negative;
        no group twice; no more allocated than the pool. Raises context.Invalid otherwise."""
        found = Fields({"driver": Maybe(Text()), "groups": Items(Fields({
            "group": Maybe(Text()), "pool": Amount(), "total": Amount(), "customers": Count(),
            "allocated": Amount()}))}).read(data, ())
        groups: Dict[Optional[str], GroupContext] = {}
        for index, g in enumerate(found["groups"]):
            if g["group"] in groups:
                raise Invalid(f"the group {shown(g['group'])} is given twice", ("groups", index, "group"))
            if g["allocated"] > g["pool"]:
                raise Invalid(f"{format(g['allocated'], 'f')} allocated is more than the pool, "
                              f"{format(g['pool'], 'f')}", ("groups", index, "allocated"))
            groups[g["group"]] = GroupContext(g["pool"], g["total"], g["customers"], g["allocated"])
        return AllocationContext(name, found["driver"], groups)
