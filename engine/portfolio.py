"""Portfolio evaluation: pooled costs shared out over every customer, in explicit stages.

The plan is compiled in segments, one per pass. Pass k runs segment k on every record,
carrying on from where pass k-1 stopped, and ends with the drivers of the allocations
of stage k; then each of their pools is divided exactly. The last pass decides every
record with its shares known. Records in memory keep their slots between passes, so
nothing is computed twice; a file is read in the first and the last pass only, and in
between only what the stages need is kept (per record: groups, drivers, ids, shares,
and the few slots later stages read), never whole records, so a CSV still streams.

Exact shares: each share is the pool × driver / total, rounded down to the
smallest currency unit; the units left over go one each to the largest
remainders, ties to the earlier row. The shares always add up to the pool.
"""
from __future__ import annotations

import decimal
from array import array
from itertools import islice
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import attrs

from .checked import ReferralSpec
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
    drivers it ends with. The stage passes run now; returns the iterator of results
    (Decision or RecordError, one per row, in order) of the deciding pass, and a function
    giving the portfolio summary once that iterator is exhausted.

    With `keep_values` (the records are in memory anyway) `source()` is called once and
    each record's slots are kept between passes, so it is validated and computed once.
    Without, `source()` is called for the first pass and again for the deciding pass,
    which recomputes each record; in between, only the compact results of the portfolio
    figures and the few slots later stage passes read are kept.
    """
    run = _Run(plan, source, label, keep_values)
    with decimal.localcontext(CONTEXT):  # the stage passes run here, not in the caller's hands
        for segment in plan.stages:
            run.stage(segment)
    return run.results(), run.finish


class _Run:
    """One portfolio run: its passes, and what they keep between them."""

    def __init__(self, plan: Plan, source: Source, label: str, keep_values: bool) -> None:
        self.plan, self.source, self.label, self.keep_values = plan, source, label, keep_values
        self.specs = plan.policy.allocations
        self.segments = plan.segments
        self.columns: List[Optional[_Column]] = [None] * len(self.specs)
        self.failed: Dict[int, str] = {}  # position → why a portfolio figure gives the record no share
        self.steps: List[Tuple[Any, list]] = []  # (segment, the columns whose amounts it reads), so far
        # with keep_values, per record: its row, its id, and its slots so far (or its RecordError)
        self.kept_rows: list = []
        self.kept_ids: list = []
        self.kept: list = []
        self.carried = None if keep_values else _Carry(plan)  # what later stage passes read
        self.contexts: Dict[str, AllocationContext] = {}
        self.referrals: Dict[str, Dict[str, Decimal]] = {}
        self.rows = 0
        self.summary: Dict[str, Any] = {}

    # ---- one record --------------------------------------------------------------------

    def run(self, position: int, row, record_id, slots: tuple, first: int, last: int):
        """Segments first..last-1 on one record's slots: its slots after them, or its RecordError."""
        if position in self.failed:
            return RecordError(self.failed[position], row=row, id=record_id)
        try:
            for segment, reading in self.steps[first:last]:
                slots = segment.function(slots, tuple([c.amount(position) for c in reading]) if reading else ())
        except ARITHMETIC_ERRORS as error:
            return arithmetic_error(self.plan, error, slots, row, record_id)
        return slots

    def read(self, position: int, row, raw, last: int) -> Tuple[Any, Any]:
        """(id, slots after segment `last` or the RecordError) of a record as the source gives it."""
        if isinstance(raw, RecordError):
            return raw.id, raw
        plan = self.plan
        try:
            values, record_id = validate(raw, plan.fields, plan.key_column, plan.policy.currency, row)
        except RecordError as error:
            return error.id, error
        return record_id, self.run(position, row, record_id, values, 0, last)

    # ---- the stage passes --------------------------------------------------------------

    def stage(self, segment) -> None:
        """Pass `segment.number`: every record's drivers, then the pools shared out by them.
        During the pass only what the share-outs need is kept: per row a group and a driver,
        or for a referral credit the ids and the values brought; taken a chunk at a time."""
        self.steps.append((segment, [self.columns[i] for i in segment.reads]))
        gathers = {index: _Gather(self.plan, self.specs[index]) for index in segment.allocations}
        states = iter(self.kept_pass(segment.number) if self.keep_values else self.streamed_pass(segment.number))
        rows = 0
        while True:
            chunk = [s if s.__class__ is tuple else None for s in islice(states, _CHUNK)]
            if not chunk:
                break
            for gather in gathers.values():
                gather.take(chunk, rows)
            rows += len(chunk)
        self.rows = rows
        problems: Dict[int, str] = {}
        for gather in gathers.values():
            problems.update(gather.errors)
        for gather in gathers.values():  # a record in error takes no part in any pool of the pass
            gather.exclude(problems)
        policy = self.plan.policy
        for index, gather in gathers.items():
            spec = self.specs[index]
            if isinstance(spec, ReferralSpec):
                self.columns[index], self.referrals[spec.name] = _credit_network(policy, spec, gather.weights,
                                                                                 self.label)
                self.columns[index].errors.update(gather.errors)
            else:
                self.columns[index], self.contexts[spec.name] = gather.share_out(policy)
            self.failed.update(self.columns[index].errors)

    def kept_pass(self, number: int) -> list:
        """In memory: each record's slots after segment `number` (or its RecordError),
        resumed from where the last pass left them."""
        kept = self.kept
        if number == 1:
            for position, (row, raw) in enumerate(self.source()):
                record_id, state = self.read(position, row, raw, 1)
                self.kept_rows.append(row)
                self.kept_ids.append(record_id)
                kept.append(state)
            return kept
        rows, ids, run = self.kept_rows, self.kept_ids, self.run
        kept[:] = [run(position, rows[position], ids[position], state, number - 1, number)
                   if state.__class__ is tuple else state for position, state in enumerate(kept)]
        return kept

    def streamed_pass(self, number: int) -> Iterator[Any]:
        """Read again: the first pass reads the records; a later one runs from what the
        earlier passes carried, each row's slots rebuilt from the few that the segment and
        its share-outs read. A row in error is None (or its RecordError); the deciding
        pass, which reads the records again, reports its error."""
        carried = self.carried
        if number == 1:
            carrying = len(self.segments) > 2  # later stage passes read the carry
            carry = carried.after(1)
            for position, (row, raw) in enumerate(self.source()):
                _, state = self.read(position, row, raw, 1)
                if carrying:
                    carried.put(carry, position, state if state.__class__ is tuple else None)
                yield state
            return
        start, run = self.segments[number - 1].start, self.run
        carry = carried.after(number)
        for position in range(len(carried.bad)):
            slots = carried.slots(position, start)
            if slots is not None:
                slots = run(position, None, None, slots, number - 1, number)
                if slots.__class__ is not tuple:
                    slots = None
            carried.put(carry, position, slots)
            yield slots

    # ---- the deciding pass -------------------------------------------------------------

    def final_states(self) -> Iterator[Tuple[Any, Any, Any]]:
        """(row, id, every slot or the RecordError) of each record, in the caller's decimal context."""
        last = len(self.segments)
        if self.keep_values and last > 1:
            kept, rows, ids, run = self.kept, self.kept_rows, self.kept_ids, self.run
            for position, state in enumerate(kept):
                kept[position] = None  # the decision holds what it needs
                row, record_id = rows[position], ids[position]
                yield row, record_id, (run(position, row, record_id, state, last - 1, last)
                                       if state.__class__ is tuple else state)
            return
        for position, (row, raw) in enumerate(self.source()):
            yield (row, *self.read(position, row, raw, last))

    def results(self) -> Iterator:
        plan = self.plan
        self.steps.append((self.segments[-1], [self.columns[i] for i in self.segments[-1].reads]))
        shares = _RunShares(self.specs, self.columns, self.label)
        count = 0
        uses = {use.pool: [Decimal(0), Decimal(0)] for use in plan.pool_uses}  # volume used, amount charged
        lost = []  # records in error after their shares were worked out
        final = self.final_states()
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
                    for use in plan.pool_uses:
                        volume, charged = state[use.volume], state[use.charged]
                        if isinstance(volume, Decimal):
                            totals = uses[use.pool]
                            totals[0] += volume
                            totals[1] += charged
                    state = conclude(plan, state, record_id, row, shares, count)
                else:
                    lost.append(count)
            finally:
                decimal.setcontext(saved)
            count += 1
            yield state
        self.summary.update(records=count, uses=uses, lost=lost)

    def finish(self) -> "PortfolioSummary":
        """Pools as shared out to the records that were decided (a record in error keeps no share)."""
        summary = self.summary
        unshared: Dict[Tuple[str, Optional[str]], Decimal] = {}
        with decimal.localcontext(CONTEXT):
            for position in summary.get("lost", ()):
                for spec, column in zip(self.specs, self.columns):
                    share = column.shared(position) if not isinstance(spec, ReferralSpec) else None
                    if share is not None:
                        key = (spec.name, share[0])
                        unshared[key] = unshared.get(key, Decimal(0)) + share[1]
            decided = {name: AllocationContext(name, a.driver, {
                group: attrs.evolve(g, allocated=g.allocated - unshared.get((name, group), 0))
                for group, g in a.groups.items()}) for name, a in self.contexts.items()}
        return PortfolioSummary(
            PortfolioContext(self.label, summary.get("records", self.rows), decided, self.referrals),
            tuple(_pool_use(pool, *summary.get("uses", {}).get(pool.name, (Decimal(0), Decimal(0))))
                  for pool in self.plan.policy.pools),
            self.referral_leaders(set(summary.get("lost", ()))))

    def referral_leaders(self, lost: set) -> Tuple[ReferralLeader, ...]:
        """Every decided customer with a referral credit, most credit first (ties by id)."""
        leaders = []
        for spec, column in zip(self.specs, self.columns):
            if not isinstance(spec, ReferralSpec) or column is None or column.network is None:
                continue
            network = column.network
            for own, children in network.children.items():
                position = network.position(own)
                if position in lost or position in column.errors:
                    continue
                credit = column.amount(position)
                if credit:
                    leaders.append(ReferralLeader(own, len(children), credit, spec.name))
        leaders.sort(key=lambda leader: (-leader.credit, leader.id, leader.allocation))
        return tuple(leaders)

class _Carry:
    """Between streamed stage passes: for every row, the few slots that later stage passes
    read (their segment's inputs and their share-outs' drivers, groups and ids), so that
    only the first pass and the deciding pass read the records."""

    def __init__(self, plan: Plan) -> None:
        stages = plan.stages
        needed = set()
        for segment in stages[1:]:
            reads = set(segment.uses).union(*(_Gather(plan, plan.policy.allocations[i]).reads()
                                              for i in segment.allocations))
            needed |= {slot for slot in reads if slot < segment.start}
        self.stored: Dict[int, List[int]] = {  # pass → the slots stored after it
            segment.number: sorted(slot for slot in needed
                                   if (segment.number == 1 or segment.start <= slot) and slot < segment.end)
            for segment in stages}
        self.columns: Dict[int, _Values] = {slot: _Values() for slot in needed}
        self.bad = bytearray()  # per row of the first pass, 1 if the row is in error

    def after(self, number: int) -> List[Tuple[int, "_Values"]]:
        return [(slot, self.columns[slot]) for slot in self.stored.get(number, ())]

    def put(self, carry: List[Tuple[int, "_Values"]], position: int, slots: Optional[tuple]) -> None:
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
    exact whole-number weight (-1 for a record in error), or for a referral credit its entry.
    Weights and groups go in arrays (a list only if a weight will not fit in 64 bits)."""

    def __init__(self, plan: Plan, spec) -> None:
        self.spec = spec
        slot = plan.figure_slot
        self.within = slot[spec.within] if getattr(spec, "within", None) else None
        self.driver = plan.driver_slot[spec.name] if spec.driver is not None else None  # or the value brought
        if isinstance(spec, ReferralSpec):
            self.key, self.via = slot[plan.policy.key], slot[spec.via]
            self.flag = slot[spec.anyway_flag] if spec.anyway_flag else None
            self.anyway = plan.driver_slot[spec.name + " anyway"] if spec.anyway is not None else None
        self.groups: Optional[array] = array("i") if self.within is not None else None  # None: one group
        self.index: Dict[str, int] = {}  # group → its number, in order of first appearance
        self.weights: Any = [] if isinstance(spec, ReferralSpec) else array("q")
        self.errors: Dict[int, str] = {}

    def reads(self) -> set:
        """The slots of each row that the share-out reads."""
        found = {self.within, self.driver}
        if isinstance(self.spec, ReferralSpec):
            found |= {self.key, self.via, self.flag, self.anyway}
        return found - {None}

    def entry(self, slots: tuple) -> tuple:
        """A referred customer's entry in the referral network: (id, referrer id, came anyway,
        value brought, value if it came anyway). Any other customer's is just its id."""
        flag = bool(slots[self.flag]) if self.flag is not None else False
        return (slots[self.key], slots[self.via], flag, slots[self.driver],
                slots[self.anyway] if self.anyway is not None else None)

    def take(self, chunk: List[Optional[tuple]], start: int) -> None:
        """Rows start.. of the pass: each its slots, or None if the record is in error."""
        spec, driver = self.spec, self.driver
        if isinstance(spec, ReferralSpec):
            key, via, entry = self.key, self.via, self.entry
            entries = [None if s is None else s[key] if s[via] is None else entry(s) for s in chunk]
            for offset, entry in enumerate(entries):
                if entry.__class__ is not tuple:
                    continue
                brought = entry[4] if entry[2] and spec.anyway is not None else entry[3]
                if brought is None:
                    self.errors[start + offset] = (f"the value this record brings its referrer for "
                                                   f"'{spec.name}' is empty; give the fields it uses a default")
            self.weights += entries
            return
        if driver is None:
            weights = [-1 if s is None else 1 for s in chunk]
        else:
            weights = [-1 if s is None else _weight(s[driver]) for s in chunk]
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
            self.groups += array("i", [-1 if g is None else index.setdefault(g, len(index)) for g in found])
        if self.weights.__class__ is array:
            try:
                self.weights += array("q", weights)
                return
            except (OverflowError, TypeError):  # a driver too large for 64 bits, or finer than 10^-6
                self.weights = list(self.weights)
        self.weights += weights

    def exclude(self, positions: Iterable[int]) -> None:
        """Leave these rows out: they are in error."""
        weights = self.weights
        for position in positions:
            if isinstance(self.spec, ReferralSpec):
                entry = weights[position]
                weights[position] = entry[0] if entry.__class__ is tuple else entry  # brings nothing
            else:
                weights[position] = -1

    def share_out(self, policy):
        """The allocation's column and context, once every row is taken."""
        groups = None if self.groups is None else (self.groups, list(self.index))
        return _share_out(policy, self.spec, groups, self.weights, self.errors)


@attrs.frozen
class ReferralLeader:
    """A customer whose referrals earn it credit: how many it brought in directly, and the credit."""

    id: str
    referred: int
    credit: Decimal
    allocation: str  # the referral credit it earned


@attrs.frozen
class PortfolioSummary:
    """What a portfolio run found: the context (pools, totals), the capacity pools' use and
    the customers who earned referral credit (most credit first)."""

    context: PortfolioContext
    pools: Tuple[PoolUse, ...]
    referral_leaders: Tuple[ReferralLeader, ...] = ()


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


class _Network:
    """One referral credit's network: who brought whom in, walked level by level. Kept with
    the run, so a decision's contributions are listed only when it is explained, by the same
    walk that worked out its credit."""

    def __init__(self, spec, entries: List) -> None:
        self.spec, self.entries = spec, entries
        self.by_id: Dict[str, int] = {}
        by_id = self.by_id
        for position, entry in enumerate(entries):
            own = entry if entry.__class__ is not tuple else entry[0]
            if own is not None:
                by_id.setdefault(own, position)
        self.notes: Dict[int, List[str]] = {}  # self-referrals and unknown referrers
        self.children: Dict[str, List[int]] = {}
        for position, entry in enumerate(entries):
            if entry.__class__ is not tuple:
                continue
            own, link = entry[0], entry[1]
            if link == own:
                self.notes.setdefault(position, []).append(f"{spec.via} names the customer itself: "
                                                           "no one is credited")
            elif link not in by_id:
                self.notes.setdefault(position, []).append(f"{spec.via} '{link}' is not a customer of this "
                                                           "portfolio: no one is credited")
            else:
                self.children.setdefault(link, []).append(position)

    def position(self, own: str) -> int:
        """The first row of the customer with this id."""
        return self.by_id[own]

    def own(self, position: int) -> Optional[str]:
        entry = self.entries[position]
        return entry if entry.__class__ is not tuple else entry[0]

    def involved(self, position: int) -> bool:
        """Whether the customer brought anyone in, or has a note."""
        return self.own(position) in self.children or position in self.notes

    def walk(self, position: int) -> Tuple[List[tuple], List[str]]:
        """(contributions as (level, id, value brought, weight, came anyway), notes); never loops.
        Runs in the engine's decimal context, as credit() does."""
        spec, entries, children = self.spec, self.entries, self.children
        own = self.own(position)
        notes = list(self.notes.get(position, ()))
        seen = {own}
        frontier, found, weight = list(children.get(own, ())), [], Decimal(1)
        factor = spec.decay / 100
        for level in range(1, spec.levels + 1):
            following = []
            for child in frontier:
                child_id, _, came_anyway, value, anyway_value = entries[child]
                if child_id in seen:
                    notes.append(f"the referrals loop back to '{child_id}'; each customer is credited once")
                    continue
                seen.add(child_id)
                brought = anyway_value if came_anyway and spec.anyway is not None else value
                found.append((level, child_id, brought, weight, came_anyway))
                following.extend(children.get(child_id, ()))
            frontier, weight = following, weight * factor
        return found, notes

    def credit(self, found: List[tuple], rounding) -> Tuple[Decimal, bool]:
        """The credit for the contributions found, rounded, and whether the cap cut it."""
        total = sum((value * weight for _, _, value, weight, _ in found), Decimal(0))
        capped = self.spec.cap is not None and total > self.spec.cap
        return (self.spec.cap if capped else total).quantize(rounding.quantum, rounding.rounding), capped

    def share(self, position: int, rounding, label: str) -> "ReferralShare":
        """One customer's credit with its contributions, by the walk and arithmetic of the run."""
        with decimal.localcontext(CONTEXT):
            found, notes = self.walk(position)
            amount, capped = self.credit(found, rounding)
        return ReferralShare(self.spec.name, amount, tuple(Contribution(*c) for c in found), capped,
                             tuple(notes), label)


def _credit_network(policy, spec, entries: List, label: str):
    """Every customer's credit for the customers it brought in, level by level."""
    network = _Network(spec, entries)
    column = _Column(spec.name, len(entries), policy.rounding)
    column.network = network
    credits: Dict[str, Decimal] = {}
    for position in range(len(entries)):
        if not network.involved(position):
            continue  # brought no one in: a credit of zero, already in the column
        found, notes = network.walk(position)
        amount, _ = network.credit(found, policy.rounding)
        column.set(position, amount)
        if spec.strict and notes:
            column.errors[position] = f"referral network problem for '{spec.name}': " + "; ".join(notes)
        if amount:
            credits[network.own(position)] = amount
    return column, credits


class _Column:
    """One portfolio figure's result for every row, kept small: whole smallest units in an array,
    the group as an index, and errors and referral details only for the rows that have them."""

    __slots__ = ("units", "quantum", "exponent", "bonus", "group", "infos", "errors", "network", "rounding", "name")

    def __init__(self, name: str, size: int, rounding) -> None:
        quantum = rounding.quantum
        self.name, self.rounding = name, rounding
        self.units = array("q", bytes(8 * size))
        self.quantum = quantum
        self.exponent = quantum.as_tuple().exponent
        self.bonus = bytearray(size)  # got a remainder unit
        self.group = array("i", [-1]) * size  # index into infos; -1: no share
        self.infos: List[tuple] = []  # (group, pool, total, basis)
        self.errors: Dict[int, str] = {}
        self.network: Optional[_Network] = None  # a referral credit's, for its explanations

    def set(self, position: int, amount: Decimal) -> None:
        self.units[position] = int(amount.scaleb(-self.exponent))

    def amount(self, position: int) -> Decimal:
        return CONTEXT.multiply(Decimal(self.units[position]), self.quantum)  # exact, whatever the caller's context

    def shared(self, position: int) -> Optional[Tuple[Optional[str], Decimal]]:
        """(group, amount) of the row's share of an allocation, if it got one."""
        index = self.group[position]
        if index < 0 or position in self.errors:
            return None
        return self.infos[index][0], self.amount(position)

    def share(self, spec, position: int, label: str):
        """The Share or ReferralShare of a decided row."""
        if isinstance(spec, ReferralSpec):
            if self.network.involved(position):
                return self.network.share(position, self.rounding, label)
            return ReferralShare(spec.name, self.amount(position), (), False, (), label)
        amount = self.amount(position)
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
_ZERO = Decimal(0)


def _weight(driver: Decimal):
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


def _share_out(policy, spec, row_groups: Optional[Tuple[array, List[str]]], weights: Sequence,
               errors: Dict[int, str]):
    """Every row's share of one allocation, or the text of the error that row will get.
    `row_groups` is each row's group as an index into the group names; a weight of -1
    marks a row in error."""
    quantum = policy.rounding.quantum
    column = _Column(spec.name, len(weights), policy.rounding)
    column.errors.update(errors)
    groups: Dict[Optional[str], array] = {}
    if row_groups is None:
        groups[None] = array("q", (p for p, w in enumerate(weights) if w >= 0))
    else:
        indexes, names = row_groups
        by_index = [array("q") for _ in names]
        for position, (weight, index) in enumerate(zip(weights, indexes)):
            if weight >= 0:
                by_index[index].append(position)
        groups = {name: positions for name, positions in zip(names, by_index) if positions}
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
            if len(positions) == len(weights):  # every row, in order
                column.units = array("q", units)
                column.group = array("i", [info]) * len(positions)
            else:
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


def _pool_use(pool, used: Decimal, charged: Decimal) -> PoolUse:
    """What customers were charged is what their cost lines say, as rounded, not rate × use."""
    with decimal.localcontext(CONTEXT):
        return PoolUse(pool.name, pool.amount, pool.volume, pool.unit, pool.amount / pool.volume, used, charged,
                       pool.amount - charged)
