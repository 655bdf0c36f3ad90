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
    driver: Decimal
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
    shares: List[List[Any]] = [[] for _ in specs]  # per allocation, per row position: Share or error text
    contexts: Dict[str, AllocationContext] = {}
    referrals: Dict[str, Dict[str, Decimal]] = {}
    rows = 0
    for stage in plan.stages:
        drivers: Dict[int, List] = {i: [] for i in stage.allocations}
        rows = 0
        for position, (row, raw) in enumerate(source()):
            rows += 1
            found = checked(position, raw, row)
            values = None if isinstance(found, RecordError) else found[0]
            slots = None
            if values is not None:
                with decimal.localcontext(CONTEXT):
                    try:
                        slots = stage.function(values, tuple(_amount(shares[i], position) for i in range(len(specs))))
                    except ARITHMETIC_ERRORS:
                        slots = None  # the final pass reports this record's error
            for index in stage.allocations:
                spec = specs[index]
                if slots is None:
                    drivers[index].append(None)
                    continue
                if isinstance(spec, ReferralSpec):
                    drivers[index].append(_referral_entry(plan, stage, spec, values, slots, group_index))
                    continue
                group = values[group_index[spec.within]] if spec.within else None
                if spec.within and group is None:
                    drivers[index].append(f"{spec.within} is empty, so the record belongs to no group of "
                                          f"the allocation '{spec.name}'")
                    continue
                driver = slots[stage.driver_slot[spec.name]] if spec.driver is not None else Decimal(1)
                drivers[index].append((group, max(driver, Decimal(0))))
        for index in stage.allocations:
            spec = specs[index]
            if isinstance(spec, ReferralSpec):
                shares[index], referrals[spec.name] = _credit_network(policy, spec, drivers[index], label)
            else:
                shares[index], contexts[spec.name] = _share_out(policy, spec, drivers[index], label)
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
            problem = next((s[position] for s in shares if position < len(s) and isinstance(s[position], str)), None)
            try:
                if problem is not None:
                    raise RecordError(problem, row=row, id=_id(plan, raw))
                row_shares = tuple(_materialize(spec, s[position], label) for spec, s in zip(specs, shares))
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
                shares[index] = Share(spec.name, group, found.pool, driver, total, amount, False, context.label, basis)
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
    """(id, referrer id, came anyway, value brought, value brought if it came anyway)."""
    flag = bool(values[index[spec.anyway_flag]]) if spec.anyway_flag else False
    anyway = slots[stage.driver_slot[spec.name + " anyway"]] if spec.anyway is not None else None
    return (values[index[plan.policy.key]], values[index[spec.via]], flag,
            slots[stage.driver_slot[spec.name]], anyway)


def _credit_network(policy, spec, entries: List, label: str):
    """Every customer's credit for the customers it brought in, level by level; never loops."""
    by_id: Dict[str, int] = {}
    for position, entry in enumerate(entries):
        if entry is not None:
            by_id.setdefault(entry[0], position)
    notes: Dict[int, List[str]] = {}
    children: Dict[str, List[int]] = {}
    for position, entry in enumerate(entries):
        if entry is None or entry[1] is None:
            continue
        own, link = entry[0], entry[1]
        if link == own:
            notes.setdefault(position, []).append(f"{spec.via} names the customer itself: no one is credited")
        elif link not in by_id:
            notes.setdefault(position, []).append(f"{spec.via} '{link}' is not a customer of this portfolio: "
                                                  "no one is credited")
        else:
            children.setdefault(link, []).append(position)
    out: List[Any] = [None] * len(entries)
    credits: Dict[str, Decimal] = {}
    factor = spec.decay / 100
    rounding = policy.rounding
    for position, entry in enumerate(entries):
        if entry is None:
            continue
        seen = {entry[0]}
        frontier, contributions, weight = list(children.get(entry[0], ())), [], Decimal(1)
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
        if spec.strict and position in notes:
            out[position] = f"referral network problem for '{spec.name}': " + "; ".join(notes[position])
        elif contributions or position in notes:
            out[position] = ReferralShare(spec.name, amount, tuple(contributions), capped,
                                          tuple(notes.get(position, ())), label)
        else:
            out[position] = amount  # compact: nobody referred, nothing to explain
        if amount:
            credits[entry[0]] = amount
    return out, credits


def _id(plan: Plan, raw) -> Optional[str]:
    value = raw.get(plan.key_column) if isinstance(raw, Mapping) else None
    return None if value in (None, "") else str(value)


def _amount(shares: List[Any], position: int):
    entry = shares[position] if position < len(shares) else None
    if isinstance(entry, tuple):
        return entry[0]
    if isinstance(entry, Decimal):
        return entry
    return getattr(entry, "amount", None)


def _materialize(spec, entry, label: str):
    """The Share or ReferralShare a decision keeps, from the compact entry a stage stored."""
    if isinstance(entry, tuple):
        amount, bonus, weight, (group, pool, total, basis) = entry
        return Share(spec.name, group, pool, weight, total, amount, bonus, label, basis)
    if isinstance(entry, Decimal):
        return ReferralShare(spec.name, entry, (), False, (), label)
    return entry


def _share_out(policy, spec, drivers: List, label: str):
    """Every row's share of one allocation, or the text of the error that row will get."""
    groups: Dict[Optional[str], List[int]] = {}
    out: List[Any] = [None] * len(drivers)
    for position, entry in enumerate(drivers):
        if isinstance(entry, str):
            out[position] = entry  # the record's error
        elif entry is not None:
            groups.setdefault(entry[0], []).append(position)
    context: Dict[Optional[str], GroupContext] = {}
    table = policy.tables.get(spec.table) if spec.table else None
    quantum = policy.rounding.quantum
    for group, positions in groups.items():
        if table is not None and group not in table:
            for position in positions:
                out[position] = (f"no pool for {spec.within} '{group}' in the table '{spec.table}' "
                                 f"of the allocation '{spec.name}'")
            continue
        pool = (table[group] if table is not None else spec.pool).quantize(quantum, decimal.ROUND_HALF_UP)
        weights = [drivers[p][1] for p in positions]
        total = sum(weights, Decimal(0))
        equal = spec.driver is None or (total == 0 and spec.fallback_equal)
        if total == 0 and not equal:
            where = f" in {spec.within} '{group}'" if spec.within else ""
            for position in positions:
                out[position] = (f"the drivers of the allocation '{spec.name}' add up to zero{where}, so its pool "
                                 f"cannot be shared by them; add `otherwise equally` to share it equally instead")
            context[group] = GroupContext(pool, total, len(positions), Decimal(0))
            continue
        basis = "driver"
        if equal:
            basis = "equal" if spec.driver is None else "fallback"
            weights = [Decimal(1)] * len(positions)
        info = (group, pool, sum(weights, Decimal(0)), basis)
        parts = distribute(pool, weights, quantum)
        for position, weight, (amount, bonus) in zip(positions, weights, parts):
            out[position] = (amount, bonus, weight, info)  # compact: a Share is made only when deciding
        context[group] = GroupContext(pool, total, len(positions), pool)
    if table is not None:
        for group, amount in table.items():
            context.setdefault(group, GroupContext(amount, Decimal(0), 0, Decimal(0)))  # a pool nobody shared
    driver_text = format_expr(spec.driver) if spec.driver is not None else None
    return out, AllocationContext(spec.name, driver_text, context)


def _pool_use(pool, used: Decimal) -> PoolUse:
    with decimal.localcontext(CONTEXT):
        rate = pool.amount / pool.volume
        charged = rate * used
        return PoolUse(pool.name, pool.amount, pool.volume, pool.unit, rate, used, charged, pool.amount - charged)
