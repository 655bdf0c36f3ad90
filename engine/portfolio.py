"""Portfolio evaluation: pooled costs shared out over every customer, in explicit stages.

Stage k reads every record once and computes only the drivers of the allocations
whose drivers need nothing later than stage k-1; then each pool is divided exactly.
The final pass decides every record with its shares known. Between passes only
what the stages need is kept (per record: its group and its driver, then its
share), never whole records, so a CSV still streams.

Exact shares: each share is the pool × driver / total, rounded down to the
smallest currency unit; the units left over go one each to the largest
remainders, ties to the earlier row. The shares always add up to the pool.
"""
from __future__ import annotations

import decimal
from array import array
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import attrs

from .compiler import ARITHMETIC_ERRORS, Plan
from .evaluator import decide
from .formatter import format_expr
from .money import CONTEXT
from .checker import ReferralSpec
from .records import RecordError, validate

_WIDE = decimal.Context(prec=80, rounding=decimal.ROUND_FLOOR, traps=[decimal.InvalidOperation,
                                                                      decimal.DivisionByZero])


class ZeroTotal(Exception):
    """The drivers of a pool add up to zero, so the pool cannot be shared by them."""


def distribute(pool: Decimal, weights: Sequence[Decimal], quantum: Decimal = Decimal("0.01")) -> List[Tuple[Decimal, bool]]:
    """Share `pool` in proportion to `weights` (each ≥ 0): (share, got a remainder unit) per weight.

    The shares add up to the pool exactly, to the quantum.
    """
    total = sum(weights, Decimal(0))
    if total == 0:
        raise ZeroTotal()
    sign = -1 if pool < 0 else 1
    with decimal.localcontext(_WIDE):
        units = (abs(pool) / quantum).to_integral_value(rounding=decimal.ROUND_FLOOR)
        exact = [units * w / total for w in weights]
        floors = [e.to_integral_value(rounding=decimal.ROUND_FLOOR) for e in exact]
        left = int(units - sum(floors, Decimal(0)))
        bonus = set(sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))[:left])
        return [((floors[i] + (i in bonus)) * quantum * sign, i in bonus) for i in range(len(weights))]


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
class PortfolioContext:
    """The portfolio totals of a run, stored so one new record can be decided without re-reading all."""

    label: str
    records: int
    allocations: Dict[str, AllocationContext]
    referrals: Dict[str, Dict[str, Decimal]] = attrs.field(factory=dict)  # credit → customer id → amount

    def as_dict(self) -> dict:
        return {"label": self.label, "records": self.records, "allocations": {
            name: {"driver": a.driver, "groups": [
                {"group": g, "pool": str(c.pool), "total": str(c.total), "customers": c.customers,
                 "allocated": str(c.allocated)} for g, c in a.groups.items()]}
            for name, a in self.allocations.items()},
            "referrals": {name: {i: str(v) for i, v in credits.items()} for name, credits in self.referrals.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PortfolioContext":
        return cls(data["label"], int(data["records"]), {
            name: AllocationContext(name, a.get("driver"), {
                g["group"]: GroupContext(Decimal(g["pool"]), Decimal(g["total"]), int(g["customers"]),
                                         Decimal(g["allocated"])) for g in a["groups"]})
            for name, a in data["allocations"].items()},
            {name: {i: Decimal(v) for i, v in credits.items()} for name, credits in data.get("referrals", {}).items()})


@attrs.frozen
class Share:
    """One customer's share of one pool, with everything its explanation needs."""

    allocation: str
    group: Optional[str]
    pool: Decimal
    total: Decimal
    amount: Decimal
    remainder: bool  # got one of the leftover smallest units
    context: str  # "this run" or the label of a stored context
    basis: str = "driver"  # "driver", "equal" (shared equally), or "fallback" (drivers added up to zero)


@attrs.frozen
class PoolUse:
    """A capacity pool: what it cost, what customers used at its rate, and the capacity left unused."""

    name: str
    amount: Decimal
    volume: Decimal
    unit: str
    rate: Decimal
    used: Decimal
    charged: Decimal
    unused: Decimal


Source = Callable[[], Iterable[Tuple[int, Any]]]


def evaluate_portfolio(plan: Plan, source: Source, label: str = "this run",
                       keep_values: bool = False) -> Tuple[Iterator, Callable[[], "PortfolioSummary"]]:
    """Stage passes over `source()` (called once per pass), then the decisions of the final pass.

    Returns the iterator of results (Decision or RecordError, one per row, in order) and a
    function giving the portfolio summary once that iterator is exhausted. With `keep_values`
    (the records are in memory anyway) each record is validated once, not once per pass.
    """
    kept: Dict[int, Any] = {}

    def checked(position: int, raw, row):
        """(values, id) or the RecordError of a record, validated once when kept."""
        if position in kept:
            return kept[position]
        if isinstance(raw, RecordError):
            found = raw
        else:
            try:
                with decimal.localcontext(CONTEXT):
                    found = validate(raw, plan.fields, plan.key_column, policy.currency, row)
            except RecordError as error:
                found = error
        if keep_values:
            kept[position] = found
        return found

    policy = plan.policy
    specs = policy.allocations
    group_index = {f.name: i for i, f in enumerate(plan.fields)}
    columns: List[Optional[_Column]] = [None] * len(specs)  # per portfolio figure: every row's result
    contexts: Dict[str, AllocationContext] = {}
    referrals: Dict[str, Dict[str, Decimal]] = {}
    quantum = policy.rounding.quantum
    rows = 0
    for stage in plan.stages:
        # During a pass only what the stage needs is kept: per row a group and a driver,
        # or for a referral credit the ids and the values brought.
        collected: Dict[int, Tuple[list, list, dict]] = {i: ([], [], {}) for i in stage.allocations}
        rows = 0
        known_groups: Dict[Optional[str], Optional[str]] = {}
        for position, (row, raw) in enumerate(source()):
            rows += 1
            found = checked(position, raw, row)
            values = None if isinstance(found, RecordError) else found[0]
            slots = None
            if values is not None:
                with decimal.localcontext(CONTEXT):
                    try:
                        slots = stage.function(values, tuple(c.amount(position) if c is not None else None
                                                             for c in columns))
                    except ARITHMETIC_ERRORS:
                        slots = None  # the final pass reports this record's error
            for index in stage.allocations:
                spec = specs[index]
                groups, weights, errors = collected[index]
                if slots is None:
                    groups.append(None)
                    weights.append(None)
                elif isinstance(spec, ReferralSpec):
                    groups.append(None)
                    weights.append(_referral_entry(plan, stage, spec, values, slots, group_index))
                else:
                    group = values[group_index[spec.within]] if spec.within else None
                    if spec.within and group is None:
                        errors[position] = (f"{spec.within} is empty, so the record belongs to no group of "
                                            f"the allocation '{spec.name}'")
                    driver = slots[stage.driver_slot[spec.name]] if spec.driver is not None else Decimal(1)
                    groups.append(known_groups.setdefault(group, group))  # one string per group, not per row
                    weights.append(None if position in errors else _weight(driver))
        for index in stage.allocations:
            spec = specs[index]
            groups, weights, errors = collected.pop(index)
            if isinstance(spec, ReferralSpec):
                columns[index], referrals[spec.name] = _credit_network(policy, spec, weights, quantum, label)
            else:
                columns[index], contexts[spec.name] = _share_out(policy, spec, groups, weights, errors)
    summary: Dict[str, Any] = {}

    def results() -> Iterator:
        count = 0
        uses = {name: Decimal(0) for name, _ in plan.pool_uses}
        allocated: Dict[Tuple[str, Optional[str]], Decimal] = {}
        for position, (row, raw) in enumerate(source()):
            count += 1
            found = checked(position, raw, row)
            kept.pop(position, None)
            if isinstance(found, RecordError):
                yield found
                continue
            problem = next((c.errors[position] for c in columns if position in c.errors), None)
            try:
                if problem is not None:
                    raise RecordError(problem, row=row, id=found[1])
                row_shares = tuple(c.share(spec, position, label) for spec, c in zip(specs, columns))
                with decimal.localcontext(CONTEXT):
                    decision = decide(plan, found[0], found[1], row, lambda values, given=row_shares: given)
            except RecordError as error:
                yield error
                continue
            for share in decision.shares:
                if isinstance(share, ReferralShare):
                    continue
                key = (share.allocation, share.group)
                allocated[key] = allocated.get(key, Decimal(0)) + share.amount
            for name, slot in plan.pool_uses:
                volume = decision.slots[slot]
                if isinstance(volume, Decimal):
                    uses[name] += volume
            yield decision
        summary["records"] = count
        summary["uses"] = uses
        summary["allocated"] = allocated

    def finish() -> PortfolioSummary:
        """Pools as shared out to the records that were decided (a record in error keeps no share)."""
        allocated = summary.get("allocated", {})
        decided = {name: AllocationContext(name, a.driver, {
            group: attrs.evolve(g, allocated=allocated.get((name, group), Decimal(0)))
            for group, g in a.groups.items()}) for name, a in contexts.items()}
        return PortfolioSummary(
            PortfolioContext(label, summary.get("records", rows), decided, referrals),
            tuple(_pool_use(pool, summary.get("uses", {}).get(pool.name, Decimal(0))) for pool in policy.pools))

    return results(), finish


@attrs.frozen
class PortfolioSummary:
    """What a portfolio run found: the context (pools, totals) and the capacity pools' use."""

    context: PortfolioContext
    pools: Tuple[PoolUse, ...]


def shares_from_context(plan: Plan, values: tuple, context: PortfolioContext) -> tuple:
    """One record's shares from stored totals (no remainder units: there is no portfolio to balance)."""
    specs = plan.policy.allocations
    group_index = {f.name: i for i, f in enumerate(plan.fields)}
    shares: List[Any] = [None] * len(specs)
    key = values[group_index[plan.policy.key]]
    for stage in plan.stages:
        with decimal.localcontext(CONTEXT):
            slots = stage.function(values, tuple(getattr(s, "amount", None) for s in shares))
            for index in stage.allocations:
                spec = specs[index]
                if isinstance(spec, ReferralSpec):
                    amount = context.referrals.get(spec.name, {}).get(key, Decimal("0.00"))
                    shares[index] = ReferralShare(spec.name, amount, (), False, (), context.label)
                    continue
                group = values[group_index[spec.within]] if spec.within else None
                stored = context.allocations.get(spec.name)
                if stored is None:
                    shares[index] = (f"the stored context {context.label} has no allocation '{spec.name}': "
                                     "it was made with another policy")
                    return tuple(shares)
                found = stored.groups.get(group)
                if found is not None and spec.driver is not None and not found.total and not spec.fallback_equal:
                    shares[index] = (f"the drivers of '{spec.name}' added up to zero in the stored context "
                                     f"{context.label}; add `otherwise equally` to share it equally instead")
                    return tuple(shares)
                if found is None:
                    where = f" for {spec.within} '{group}'" if spec.within else ""
                    shares[index] = f"no pool '{spec.name}'{where} in the stored context {context.label}"
                    return tuple(shares)
                basis = "driver" if spec.driver is not None and found.total else (
                    "equal" if spec.driver is None else "fallback")
                if basis == "driver":
                    driver, total = max(slots[stage.driver_slot[spec.name]], Decimal(0)), found.total
                else:
                    driver, total = Decimal(1), Decimal(found.customers + 1)  # the new customer joins the group
                amount = (found.pool * driver / total).quantize(plan.policy.rounding.quantum, plan.policy.rounding.rounding)
                shares[index] = Share(spec.name, group, found.pool, total, amount, False, context.label, basis)
    return tuple(shares)


@attrs.frozen
class Contribution:
    """What one referred customer brought its referrer, at which level and weight."""

    level: int
    id: str
    value: Decimal
    weight: Decimal
    anyway: bool  # would have come anyway: brings the `anyway` value


@attrs.frozen
class ReferralShare:
    """A customer's referral credit, with every contribution behind it."""

    allocation: str
    amount: Decimal
    contributions: Tuple[Contribution, ...]
    capped: bool
    notes: Tuple[str, ...]  # self-referrals, cycles, unknown referrers
    context: str


def _referral_entry(plan: Plan, stage, spec, values: tuple, slots: tuple, index: Dict[str, int]):
    """A referred customer: (id, referrer id, came anyway, value brought, value if it came anyway).
    Any other customer: just its id, which is all the network needs of it."""
    own, link = values[index[plan.policy.key]], values[index[spec.via]]
    if link is None:
        return own
    flag = bool(values[index[spec.anyway_flag]]) if spec.anyway_flag else False
    anyway = slots[stage.driver_slot[spec.name + " anyway"]] if spec.anyway is not None else None
    return (own, link, flag, slots[stage.driver_slot[spec.name]], anyway)


def _credit_network(policy, spec, entries: List, quantum: Decimal, label: str):
    """Every customer's credit for the customers it brought in, level by level; never loops."""
    ids = [entry if entry.__class__ is not tuple else entry[0] for entry in entries]
    by_id: Dict[str, int] = {}
    for position, own in enumerate(ids):
        if own is not None:
            by_id.setdefault(own, position)
    notes: Dict[int, List[str]] = {}
    children: Dict[str, List[int]] = {}
    for position, entry in enumerate(entries):
        if entry.__class__ is not tuple:
            continue
        own, link = entry[0], entry[1]
        if link == own:
            notes.setdefault(position, []).append(f"{spec.via} names the customer itself: no one is credited")
        elif link not in by_id:
            notes.setdefault(position, []).append(f"{spec.via} '{link}' is not a customer of this portfolio: "
                                                  "no one is credited")
        else:
            children.setdefault(link, []).append(position)
    column = _Column(spec.name, len(entries), quantum)
    credits: Dict[str, Decimal] = {}
    factor = spec.decay / 100
    rounding = policy.rounding
    for position, own in enumerate(ids):
        if own is None or (own not in children and position not in notes):
            continue  # brought no one in: a credit of zero, already in the column
        seen = {own}
        frontier, contributions, weight = list(children.get(own, ())), [], Decimal(1)
        for level in range(1, spec.levels + 1):
            following = []
            for child in frontier:
                child_id, _, came_anyway, value, anyway_value = entries[child]
                if child_id in seen:
                    notes.setdefault(position, []).append(f"the referrals loop back to '{child_id}'; "
                                                          "each customer is credited once")
                    continue
                seen.add(child_id)
                brought = anyway_value if came_anyway and spec.anyway is not None else value
                contributions.append(Contribution(level, child_id, brought, weight, came_anyway))
                following.extend(children.get(child_id, ()))
            frontier, weight = following, weight * factor
        with decimal.localcontext(CONTEXT):
            total = sum((c.value * c.weight for c in contributions), Decimal(0))
            capped = spec.cap is not None and total > spec.cap
            amount = (spec.cap if capped else total).quantize(rounding.quantum, rounding.rounding)
        column.set(position, amount)
        if spec.strict and position in notes:
            column.errors[position] = f"referral network problem for '{spec.name}': " + "; ".join(notes[position])
        elif contributions or position in notes:
            column.details[position] = ReferralShare(spec.name, amount, tuple(contributions), capped,
                                                     tuple(notes.get(position, ())), label)
        if amount:
            credits[own] = amount
    return column, credits


class _Column:
    """One portfolio figure's result for every row, kept small: whole smallest units in an array,
    the group as an index, and errors and referral details only for the rows that have them."""

    __slots__ = ("units", "exponent", "bonus", "group", "infos", "errors", "details", "name")

    def __init__(self, name: str, size: int, quantum: Decimal) -> None:
        self.name = name
        self.units = array("q", bytes(8 * size))
        self.exponent = quantum.as_tuple().exponent
        self.bonus = bytearray(size)  # got a remainder unit
        self.group = array("i", bytes(4 * size))  # index into infos
        self.infos: List[tuple] = []  # (group, pool, total, basis)
        self.errors: Dict[int, str] = {}
        self.details: Dict[int, "ReferralShare"] = {}

    def set(self, position: int, amount: Decimal) -> None:
        self.units[position] = int(amount.scaleb(-self.exponent))

    def amount(self, position: int) -> Optional[Decimal]:
        if position in self.errors:
            return None
        return Decimal(self.units[position]).scaleb(self.exponent)

    def share(self, spec, position: int, label: str):
        """The Share or ReferralShare a decision keeps."""
        if position in self.details:
            return self.details[position]
        amount = self.amount(position)
        if isinstance(spec, ReferralSpec):
            return ReferralShare(spec.name, amount, (), False, (), label)
        group, pool, total, basis = self.infos[self.group[position]]
        return Share(spec.name, group, pool, total, amount, bool(self.bonus[position]), label, basis)


_SCALE = 6


def _weight(driver: Decimal):
    """A driver kept for the share-out, exactly, as driver × 10^6: a small int when it fits
    (28–32 bytes instead of a 104-byte Decimal, a million times over), else a Decimal.
    Negative drivers count as zero."""
    if driver <= 0:
        return 0
    scaled = driver.scaleb(_SCALE)
    return int(scaled) if scaled == scaled.to_integral_value() else scaled


def _unscale(scaled: Decimal) -> Decimal:
    """A sum of weights back in the driver's own terms, without trailing zeros: 4, 6187243.66."""
    total = scaled.scaleb(-_SCALE)
    return total.quantize(Decimal(1)) if total == total.to_integral_value() else total.normalize()


def _share_out(policy, spec, row_groups: List, weights: List, errors: Dict[int, str]):
    """Every row's share of one allocation, or the text of the error that row will get."""
    quantum = policy.rounding.quantum
    column = _Column(spec.name, len(weights), quantum)
    column.errors.update(errors)
    groups: Dict[Optional[str], List[int]] = {}
    for position, weight in enumerate(weights):
        if weight is not None:
            groups.setdefault(row_groups[position], []).append(position)
    context: Dict[Optional[str], GroupContext] = {}
    table = policy.tables.get(spec.table) if spec.table else None
    for group, positions in groups.items():
        if table is not None and group not in table:
            for position in positions:
                column.errors[position] = (f"no pool for {spec.within} '{group}' in the table '{spec.table}' "
                                           f"of the allocation '{spec.name}'")
            continue
        pool = (table[group] if table is not None else spec.pool).quantize(quantum, decimal.ROUND_HALF_UP)
        group_weights = [weights[p] for p in positions]
        total = _unscale(sum(group_weights, Decimal(0)))
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
            group_weights = [Decimal(1)] * len(positions)
        column.infos.append((group, pool, total if basis == "driver" else Decimal(len(positions)), basis))
        info = len(column.infos) - 1
        for position, (amount, bonus) in zip(positions, distribute(pool, group_weights, quantum)):
            column.set(position, amount)
            column.bonus[position] = bonus
            column.group[position] = info
        context[group] = GroupContext(pool, total, len(positions), pool)
    if table is not None:
        for group, amount in table.items():
            context.setdefault(group, GroupContext(amount, Decimal(0), 0, Decimal(0)))  # a pool nobody shared
    driver_text = format_expr(spec.driver) if spec.driver is not None else None
    return column, AllocationContext(spec.name, driver_text, context)


def _pool_use(pool, used: Decimal) -> PoolUse:
    with decimal.localcontext(CONTEXT):
        rate = pool.amount / pool.volume
        charged = rate * used
        return PoolUse(pool.name, pool.amount, pool.volume, pool.unit, rate, used, charged, pool.amount - charged)
