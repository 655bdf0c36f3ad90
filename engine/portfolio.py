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

from .checker import ReferralSpec
from .compiler import ARITHMETIC_ERRORS, Plan
from .evaluator import arithmetic_error, conclude
from .formatter import format_expr
from .money import CONTEXT
from .records import RecordError, validate

_WIDE = decimal.Context(prec=80, rounding=decimal.ROUND_FLOOR, traps=[decimal.InvalidOperation,
                                                                      decimal.DivisionByZero])


class ZeroTotal(Exception):
    """The drivers of a pool add up to zero, so the pool cannot be shared by them."""


def distribute(units: int, weights: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Share `units` smallest currency units in proportion to `weights` (whole numbers ≥ 0).

    Returns each weight's units, which add up to `units` exactly, and the positions that
    got one of the leftover units. All in integers, so exact for any portfolio.
    """
    total = sum(weights)
    if total == 0:
        raise ZeroTotal()
    sign = -1 if units < 0 else 1
    units = abs(units)
    products = [units * w for w in weights]
    floors = [p // total for p in products]
    left = units - sum(floors)
    remainders = [p % total for p in products]
    bonus = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)[:left]  # stable: earlier rows first
    for position in bonus:
        floors[position] += 1
    if sign < 0:
        floors = [-f for f in floors]
    return floors, bonus


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
    """One pass over the records per stage of the plan, then the decisions of the final pass.

    Pass k runs segment k of the plan on every record and shares out the pools whose
    drivers it ends with. Returns the iterator of results (Decision or RecordError, one per
    row, in order) and a function giving the portfolio summary once that iterator is
    exhausted. With `keep_values` (the records are in memory anyway) each record's slots
    are kept between passes, so it is validated and computed once; without, each pass
    calls `source()` again and recomputes the segments before its own, and only the
    compact results of the portfolio figures are kept between passes.
    """
    policy = plan.policy
    specs = policy.allocations
    segments = plan.segments
    columns: List[Optional[_Column]] = [None] * len(specs)
    failed: Dict[int, str] = {}  # position → why a portfolio figure gives the record no share
    readers: Dict[int, list] = {}  # segment number → the columns whose amounts it reads, once shared out
    # with keep_values, per record: its row, its id, and its slots so far (or its RecordError)
    kept_rows: list = []
    kept_ids: list = []
    kept: list = []
    carried = _Carry(plan)  # without: what the later stage passes read, kept compact

    def run(position: int, row, record_id, slots: tuple, first: int, last: int):
        """Segments first..last-1 on one record's slots: its slots after them, or its RecordError."""
        if position in failed:
            return RecordError(failed[position], row=row, id=record_id)
        try:
            for segment in segments[first:last]:
                reading = readers[segment.number]
                slots = segment.function(slots, tuple([c.amount(position) for c in reading]) if reading else ())
        except ARITHMETIC_ERRORS as error:
            return arithmetic_error(plan, error, slots, row, record_id)
        return slots

    def states(last: int) -> Iterator[Tuple[int, Any, Any]]:
        """(row, id, slots after segment `last`, or the record's RecordError), record by record,
        in the caller's decimal context."""
        if kept:  # in memory: each record resumes where the last pass left it
            final = last == len(segments)
            for position, state in enumerate(kept):
                if state.__class__ is tuple:
                    state = run(position, kept_rows[position], kept_ids[position], state, last - 1, last)
                kept[position] = None if final else state
                yield kept_rows[position], kept_ids[position], state
            return
        if 1 < last < len(segments):  # a later stage pass, streamed: from what earlier passes carried
            yield from carried_states(segments[last - 1])
            return
        keep = keep_values and last < len(segments)
        carrying = not keep_values and last == 1 and len(segments) > 2  # later stage passes read the carry
        carry = carried.after(1)
        for position, (row, raw) in enumerate(source()):
            if isinstance(raw, RecordError):
                state, record_id = raw, raw.id
            else:
                try:
                    values, record_id = validate(raw, plan.fields, plan.key_column, policy.currency, row)
                except RecordError as error:
                    state, record_id = error, error.id
                else:
                    state = run(position, row, record_id, values, 0, last)
            if keep:
                kept_rows.append(row)
                kept_ids.append(record_id)
                kept.append(state)
            elif carrying:
                carried.put(carry, position, state if state.__class__ is tuple else None)
            yield row, record_id, state

    def carried_states(segment) -> Iterator[Tuple[None, None, Optional[tuple]]]:
        """Stage pass `segment.number` without reading the records again: each row's slots are
        rebuilt from the few that the segment and its share-outs read. A row in error is None;
        the deciding pass, which reads the records again, reports its error."""
        reading = readers[segment.number]
        function = segment.function
        carry = carried.after(segment.number)
        for position in range(carried.rows):
            slots = carried.slots(position, segment.start)
            if slots is not None and position not in failed:
                try:
                    slots = function(slots, tuple([c.amount(position) for c in reading]) if reading else ())
                except ARITHMETIC_ERRORS:
                    slots = None
            else:
                slots = None
            carried.put(carry, position, slots)
            yield None, None, slots

    contexts: Dict[str, AllocationContext] = {}
    referrals: Dict[str, Dict[str, Decimal]] = {}
    rows = 0
    with decimal.localcontext(CONTEXT):  # the stage passes run here, not in the caller's hands
        for segment in segments[:-1]:
            readers[segment.number] = [columns[i] for i in segment.reads]
            # During a pass only what its share-outs need is kept: per row a group and a driver,
            # or for a referral credit the ids and the values brought; taken a chunk at a time.
            gathers = {index: _Gather(plan, specs[index]) for index in segment.allocations}
            chunk: list = []
            rows = 0
            for row, record_id, state in states(segment.number):
                chunk.append(state if state.__class__ is tuple else None)
                if len(chunk) == _CHUNK:
                    for gather in gathers.values():
                        gather.take(chunk, rows)
                    rows += len(chunk)
                    chunk = []
            for gather in gathers.values():
                gather.take(chunk, rows)
            rows += len(chunk)
            for index, gather in gathers.items():
                spec = specs[index]
                if isinstance(spec, ReferralSpec):
                    columns[index], referrals[spec.name] = _credit_network(policy, spec, gather.weights, label)
                else:
                    columns[index], contexts[spec.name] = _share_out(policy, spec, gather.groups, gather.weights,
                                                                     gather.errors)
                failed.update(columns[index].errors)
    readers[segments[-1].number] = [columns[i] for i in segments[-1].reads]
    shares = _RunShares(specs, columns, label)
    summary: Dict[str, Any] = {}

    def results() -> Iterator:
        count = 0
        uses = {name: Decimal(0) for name, _ in plan.pool_uses}
        lost = []  # records in error after their shares were worked out
        final = states(len(segments))
        exact = CONTEXT.copy()  # this generator's own: it runs in one thread at a time
        while True:
            saved = decimal.getcontext()  # one record at a time in the engine's context: the caller runs between
            decimal.setcontext(exact)
            try:
                found = next(final, None)
                if found is None:
                    break
                row, record_id, state = found
                if state.__class__ is tuple:
                    for name, slot in plan.pool_uses:
                        volume = state[slot]
                        if isinstance(volume, Decimal):
                            uses[name] += volume
                    state = conclude(plan, state, record_id, row, shares, count)
                else:
                    lost.append(count)
            finally:
                decimal.setcontext(saved)
            count += 1
            yield state
        summary.update(records=count, uses=uses, lost=lost)

    def finish() -> PortfolioSummary:
        """Pools as shared out to the records that were decided (a record in error keeps no share)."""
        unshared: Dict[Tuple[str, Optional[str]], Decimal] = {}
        for position in summary.get("lost", ()):
            for spec, column in zip(specs, columns):
                share = column.shared(position) if not isinstance(spec, ReferralSpec) else None
                if share is not None:
                    key = (spec.name, share[0])
                    unshared[key] = unshared.get(key, Decimal(0)) + share[1]
        decided = {name: AllocationContext(name, a.driver, {
            group: attrs.evolve(g, allocated=g.allocated - unshared.get((name, group), 0))
            for group, g in a.groups.items()}) for name, a in contexts.items()}
        return PortfolioSummary(
            PortfolioContext(label, summary.get("records", rows), decided, referrals),
            tuple(_pool_use(pool, summary.get("uses", {}).get(pool.name, Decimal(0))) for pool in policy.pools))

    return results(), finish

class _Carry:
    """Between streamed stage passes: for every row, the few slots that later stage passes
    read (their segment's inputs and their share-outs' drivers, groups and ids), so that
    only the first pass and the deciding pass read the records."""

    def __init__(self, plan: Plan) -> None:
        stages = plan.stages
        needed = set()
        for segment in stages[1:]:
            reads = set(segment.uses).union(*(_Gather.reads(plan, plan.policy.allocations[i])
                                              for i in segment.allocations))
            needed |= {slot for slot in reads if slot < segment.start}
        self.stored: Dict[int, List[int]] = {  # pass → the slots stored after it
            segment.number: sorted(slot for slot in needed
                                   if (segment.number == 1 or segment.start <= slot) and slot < segment.end)
            for segment in stages}
        self.columns: Dict[int, _Values] = {slot: _Values() for slot in needed}
        self.bad = bytearray()  # 1: the row is in error
        self.rows = 0

    def after(self, number: int) -> List[Tuple[int, "_Values"]]:
        return [(slot, self.columns[slot]) for slot in self.stored.get(number, ())]

    def put(self, carry: List[Tuple[int, "_Values"]], position: int, slots: Optional[tuple]) -> None:
        """Store one row's slots after a pass (None: the row is in error), rows in order."""
        if position == len(self.bad):
            self.bad.append(0)
            self.rows += 1
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


class _Values:
    """One slot's value for every row, compact: a Decimal with the column's usual exponent as
    a whole number in an array, anything else (text, other exponents, None) as itself."""

    __slots__ = ("whole", "unit", "up", "others")

    def __init__(self) -> None:
        self.whole = array("q")
        self.unit: Optional[Decimal] = None  # 10^exponent
        self.up: Optional[Decimal] = None  # 10^-exponent
        self.others: Dict[int, Any] = {}

    def add(self, value) -> None:
        position = len(self.whole)
        if value.__class__ is Decimal and value.is_finite():
            if self.unit is None:
                exponent = value.as_tuple().exponent
                self.unit, self.up = Decimal(1).scaleb(exponent), Decimal(1).scaleb(-exponent)
            if value.same_quantum(self.unit):
                whole = int(value * self.up)  # exact: only the exponent changes
                if -_INT64 <= whole < _INT64:
                    self.whole.append(whole)
                    return
        self.whole.append(0)
        self.others[position] = value

    def get(self, position: int):
        if position in self.others:
            return self.others[position]
        return Decimal(self.whole[position]) * self.unit  # exact, with the exponent it had


_INT64 = 2 ** 63
_CHUNK = 256  # rows a stage pass takes at a time (their slots are held until taken)


class _Gather:
    """What a stage pass keeps of each row for one allocation: its group and its driver as an
    exact int weight (None for a record in error), or for a referral credit its entry."""

    def __init__(self, plan: Plan, spec) -> None:
        self.plan, self.spec = plan, spec
        self.within = plan.figure_slot[spec.within] if getattr(spec, "within", None) else None
        self.driver = plan.driver_slot[spec.name] if spec.driver is not None else None
        self.groups: Optional[list] = [] if self.within is not None else None  # None: one group
        self.weights: list = []
        self.errors: Dict[int, str] = {}
        self.known: Dict[str, str] = {}  # one string per group, not per row

    @staticmethod
    def reads(plan: Plan, spec) -> set:
        """The slots of each row that the share-out of `spec` reads."""
        slot, driver = plan.figure_slot, plan.driver_slot
        if isinstance(spec, ReferralSpec):
            names = [plan.policy.key, spec.via] + ([spec.anyway_flag] if spec.anyway_flag else [])
            anyway = [driver[spec.name + " anyway"]] if spec.anyway is not None else []
            return {slot[n] for n in names} | {driver[spec.name], *anyway}
        return ({slot[spec.within]} if spec.within else set()) | (
            {driver[spec.name]} if spec.driver is not None else set())

    def take(self, chunk: List[Optional[tuple]], start: int) -> None:
        """Rows start.. of the pass: each its slots, or None if the record is in error."""
        plan, spec, driver = self.plan, self.spec, self.driver
        if isinstance(spec, ReferralSpec):
            self.weights += [None if s is None else _referral_entry(plan, spec, s) for s in chunk]
            return
        if driver is None:
            weights = [None if s is None else 1 for s in chunk]
        else:
            weights = [None if s is None else _weight(s[driver]) for s in chunk]
        if self.within is not None:
            within, known = self.within, self.known
            groups = [None if s is None else s[within] for s in chunk]
            for offset, (slots, group) in enumerate(zip(chunk, groups)):
                if group is None and slots is not None:
                    self.errors[start + offset] = (f"{spec.within} is empty, so the record belongs to no "
                                                   f"group of the allocation '{spec.name}'")
                    weights[offset] = None
            self.groups += [known.setdefault(g, g) if g is not None else None for g in groups]
        self.weights += weights


@attrs.frozen
class PortfolioSummary:
    """What a portfolio run found: the context (pools, totals) and the capacity pools' use."""

    context: PortfolioContext
    pools: Tuple[PoolUse, ...]


def share_from_context(plan: Plan, context: PortfolioContext, index: int, slots: tuple):
    """One record's share of allocation `index` from stored totals, or why it has none
    (no remainder units: there is no portfolio to balance)."""
    spec = plan.policy.allocations[index]
    if isinstance(spec, ReferralSpec):
        key = slots[plan.figure_slot[plan.policy.key]]
        amount = context.referrals.get(spec.name, {}).get(key, Decimal("0.00"))
        return ReferralShare(spec.name, amount, (), False, (), context.label)
    group = slots[plan.figure_slot[spec.within]] if spec.within else None
    stored = context.allocations.get(spec.name)
    if stored is None:
        return (f"the stored context {context.label} has no allocation '{spec.name}': "
                "it was made with another policy")
    found = stored.groups.get(group)
    if found is None:
        where = f" for {spec.within} '{group}'" if spec.within else ""
        return f"no pool '{spec.name}'{where} in the stored context {context.label}"
    if spec.driver is not None and not found.total and not spec.fallback_equal:
        return (f"the drivers of '{spec.name}' added up to zero in the stored context "
                f"{context.label}; add `otherwise equally` to share it equally instead")
    basis = "driver" if spec.driver is not None and found.total else (
        "equal" if spec.driver is None else "fallback")
    if basis == "driver":
        driver, total = max(slots[plan.driver_slot[spec.name]], Decimal(0)), found.total
    else:
        driver, total = Decimal(1), Decimal(found.customers + 1)  # the new customer joins the group
    rounding = plan.policy.rounding
    amount = (found.pool * driver / total).quantize(rounding.quantum, rounding.rounding)
    return Share(spec.name, group, found.pool, total, amount, False, context.label, basis)


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


def _referral_entry(plan: Plan, spec, slots: tuple):
    """A referred customer: (id, referrer id, came anyway, value brought, value if it came anyway).
    Any other customer: just its id, which is all the network needs of it."""
    slot = plan.figure_slot
    own, link = slots[slot[plan.policy.key]], slots[slot[spec.via]]
    if link is None:
        return own
    flag = bool(slots[slot[spec.anyway_flag]]) if spec.anyway_flag else False
    anyway = slots[plan.driver_slot[spec.name + " anyway"]] if spec.anyway is not None else None
    return (own, link, flag, slots[plan.driver_slot[spec.name]], anyway)


def _credit_network(policy, spec, entries: List, label: str):
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
    column = _Column(spec.name, len(entries), policy.rounding.quantum)
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

    __slots__ = ("units", "quantum", "exponent", "bonus", "group", "infos", "errors", "details", "name")

    def __init__(self, name: str, size: int, quantum: Decimal) -> None:
        self.name = name
        self.units = array("q", bytes(8 * size))
        self.quantum = quantum
        self.exponent = quantum.as_tuple().exponent
        self.bonus = bytearray(size)  # got a remainder unit
        self.group = array("i", [-1]) * size  # index into infos; -1: no share
        self.infos: List[tuple] = []  # (group, pool, total, basis)
        self.errors: Dict[int, str] = {}
        self.details: Dict[int, "ReferralShare"] = {}

    def set(self, position: int, amount: Decimal) -> None:
        self.units[position] = int(amount.scaleb(-self.exponent))

    def amount(self, position: int) -> Decimal:
        return Decimal(self.units[position]) * self.quantum  # exact: a power of ten

    def shared(self, position: int) -> Optional[Tuple[Optional[str], Decimal]]:
        """(group, amount) of the row's share of an allocation, if it got one."""
        index = self.group[position]
        if index < 0 or position in self.errors:
            return None
        return self.infos[index][0], self.amount(position)

    def share(self, spec, position: int, label: str):
        """The Share or ReferralShare of a decided row."""
        if position in self.details:
            return self.details[position]
        amount = self.amount(position)
        if isinstance(spec, ReferralSpec):
            return ReferralShare(spec.name, amount, (), False, (), label)
        group, pool, total, basis = self.infos[self.group[position]]
        return Share(spec.name, group, pool, total, amount, bool(self.bonus[position]), label, basis)


class _RunShares:
    """A portfolio run's shares, made into Share objects only when a decision is asked for them."""

    __slots__ = ("specs", "columns", "label")

    def __init__(self, specs: tuple, columns: List[_Column], label: str) -> None:
        self.specs, self.columns, self.label = specs, columns, label

    def at(self, position: int) -> tuple:
        return tuple(column.share(spec, position, self.label) for spec, column in zip(self.specs, self.columns))


_SCALE = 6
_MILLION = Decimal("1E+6")


def _weight(driver: Decimal):
    """A driver kept for the share-out, exactly, as driver × 10^6: an int when it fits
    (28–32 bytes instead of a 104-byte Decimal, a million times over), else a Decimal.
    Negative drivers count as zero."""
    if driver <= 0:
        return 0
    scaled = driver * _MILLION  # exact: only the exponent changes
    whole = int(scaled)
    return whole if whole == scaled else scaled


def _whole(weights: List) -> Tuple[List[int], int]:
    """A group's weights as whole numbers, and how many more decimal places that took
    (when a driver had more than six)."""
    odd = [w for w in weights if w.__class__ is not int]
    if not odd:
        return weights, 0
    extra = max(-w.as_tuple().exponent for w in odd)
    return [w * 10 ** extra if w.__class__ is int else int(w.scaleb(extra)) for w in weights], extra


def _unscale(total: int, extra: int) -> Decimal:
    """A sum of weights back in the driver's own terms, without trailing zeros: 4, 6187243.66."""
    total = Decimal(total).scaleb(-_SCALE - extra)
    return total.quantize(Decimal(1)) if total == total.to_integral_value() else total.normalize()


def _share_out(policy, spec, row_groups: Optional[List], weights: List, errors: Dict[int, str]):
    """Every row's share of one allocation, or the text of the error that row will get."""
    quantum = policy.rounding.quantum
    column = _Column(spec.name, len(weights), quantum)
    column.errors.update(errors)
    groups: Dict[Optional[str], List[int]] = {}
    for position, weight in enumerate(weights):
        if weight is not None:
            groups.setdefault(row_groups[position] if row_groups is not None else None, []).append(position)
    context: Dict[Optional[str], GroupContext] = {}
    table = policy.tables.get(spec.table) if spec.table else None
    with decimal.localcontext(_WIDE):
        for group, positions in groups.items():
            if table is not None and group not in table:
                for position in positions:
                    column.errors[position] = (f"no pool for {spec.within} '{group}' in the table '{spec.table}' "
                                               f"of the allocation '{spec.name}'")
                continue
            pool = (table[group] if table is not None else spec.pool).quantize(quantum, decimal.ROUND_HALF_UP)
            group_weights, extra = _whole([weights[p] for p in positions])
            total = _unscale(sum(group_weights), extra)
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
            column.infos.append((group, pool, total if basis == "driver" else Decimal(len(positions)), basis))
            info = len(column.infos) - 1
            units, bonus = distribute(int(pool.scaleb(-column.exponent)), group_weights)
            for position, amount in zip(positions, units):
                column.units[position] = amount
                column.group[position] = info
            for index in bonus:
                column.bonus[positions[index]] = 1
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
