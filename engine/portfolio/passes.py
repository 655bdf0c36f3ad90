"""The passes of a portfolio run: pooled figures worked out over every record, in stages.

The plan is compiled in segments, one per pass. Pass k runs segment k on every record,
carrying on from where pass k-1 stopped, and ends with the drivers of the portfolio
figures of stage k; then each figure's kind shares them out (kind.Kind). The last pass
decides every record with its shares known. Records in memory keep their slots between
passes, so nothing is computed twice; a file is read in the first and the last pass only,
and in between only what the stages need is kept (storage.Carry), so a CSV still streams.
"""
from __future__ import annotations

import decimal
from decimal import Decimal
from itertools import islice
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import attrs

from ..checked import PoolSpec
from ..compiler import ARITHMETIC_ERRORS, Plan, Segment
from ..evaluator import arithmetic_error, conclude
from ..money import CONTEXT
from ..records import RecordError, validate
from .context import PortfolioContext
from .kinds import KINDS, kind_of
from .referral import ReferralLeader
from .storage import CHUNK, Carry, Column


@attrs.frozen
class PoolUse:
    """A capacity pool: what it cost, what customers used at its rate, what their cost lines
    charged for it (as rounded), and the capacity left unused."""

    name: str
    amount: Decimal
    volume: Decimal
    unit: str
    rate: Decimal
    used: Decimal
    charged: Decimal
    unused: Decimal


@attrs.frozen
class PortfolioSummary:
    """What a portfolio run found: the context (pools, totals), the capacity pools' use and
    the customers who earned referral credit (most credit first)."""

    context: PortfolioContext
    pools: Tuple[PoolUse, ...]
    referral_leaders: Tuple[ReferralLeader, ...] = ()


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
        self.columns: List[Optional[Column]] = [None] * len(self.specs)
        self.failed: Dict[int, str] = {}  # position → why a portfolio figure gives the record no share
        self.steps: List[Tuple[Any, list]] = []  # (segment, the columns whose amounts it reads), so far
        # with keep_values, per record: its row, its id, and its slots so far (or its RecordError)
        self.kept_rows: list = []
        self.kept_ids: list = []
        self.kept: list = []
        self.carried = None if keep_values else Carry(plan, {  # what later stage passes read
            segment.number: set().union(*(kind_of(self.specs[i]).gather(plan, self.specs[i]).reads()
                                          for i in segment.allocations)) for segment in plan.stages})
        self.stored: Dict[str, Any] = {}  # figure name → what it stores in the portfolio context
        self.rows = 0
        self.summary: Dict[str, Any] = {}

    # ---- one record --------------------------------------------------------------------

    def run(self, position: int, row: Optional[int], record_id: Optional[str], slots: tuple, first: int,
            last: int) -> Any:
        """Segments first..last-1 on one record's slots: its slots after them, or its RecordError."""
        if position in self.failed:
            return RecordError(self.failed[position], row=row, id=record_id)
        try:
            for segment, reading in self.steps[first:last]:
                slots = segment.function(slots, tuple([c.amount(position) for c in reading]) if reading else ())
        except ARITHMETIC_ERRORS as error:
            return arithmetic_error(self.plan, error, slots, row, record_id)
        return slots

    def read(self, position: int, row: int, raw: Any, last: int) -> Tuple[Any, Any]:
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

    def stage(self, segment: Segment) -> None:
        """Pass `segment.number`: every record's drivers, then the pools shared out by them.
        During the pass only what the share-outs need is kept: per row a group and a driver,
        or for a referral credit the ids and the values brought; taken a chunk at a time."""
        self.steps.append((segment, [self.columns[i] for i in segment.reads]))
        gathers = {index: kind_of(self.specs[index]).gather(self.plan, self.specs[index])
                   for index in segment.allocations}
        states = iter(self.kept_pass(segment.number) if self.keep_values else self.streamed_pass(segment.number))
        rows = 0
        while True:
            chunk = [s if s.__class__ is tuple else None for s in islice(states, CHUNK)]
            if not chunk:
                break
            for gather in gathers.values():
                gather.take(chunk, rows)
            rows += len(chunk)
        self.rows = rows
        problems: Dict[int, str] = {}
        for gather in gathers.values():
            problems.update(gather.errors)
        policy = self.plan.policy
        while True:  # a record in error takes no part in any pool of the pass
            for gather in gathers.values():
                gather.exclude(problems)
            shared = {index: kind_of(self.specs[index]).share_out(policy, self.specs[index], gather, self.label)
                      for index, gather in gathers.items()}
            failing = {position: message for column, _ in shared.values()
                       for position, message in column.errors.items() if position not in problems}
            if not failing:
                break
            problems.update(failing)  # failed in one share-out (no pool for its group...): share again without it
        for index, (column, stored) in shared.items():
            self.columns[index], self.stored[self.specs[index].name] = column, stored
            self.failed.update(column.errors)
        self.failed.update(problems)

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
        assert carried is not None  # streamed: what later passes read is carried
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
        lost = set(summary.get("lost", ()))
        parts: Dict[str, Dict[str, Any]] = {kind.section: {} for kind in KINDS}
        leaders: List[ReferralLeader] = []
        with decimal.localcontext(CONTEXT):
            for spec, column in zip(self.specs, self.columns):
                kind = kind_of(spec)
                assert column is not None
                parts[kind.section][spec.name] = kind.decided(spec, column, self.stored[spec.name], lost)
                leaders += kind.leaders(spec, column, lost)
        leaders.sort(key=lambda leader: (-leader.credit, leader.id, leader.allocation))
        uses = summary.get("uses", {})
        return PortfolioSummary(
            PortfolioContext(self.label, summary.get("records", self.rows), parts),
            tuple(pool_use(pool, *uses.get(pool.name, (Decimal(0), Decimal(0)))) for pool in self.plan.policy.pools),
            tuple(leaders))


class _RunShares:
    """A portfolio run's shares, made into Share objects only when a decision is asked for them."""

    __slots__ = ("specs", "columns", "label")

    def __init__(self, specs: tuple, columns: List[Optional[Column]], label: str) -> None:
        self.specs, self.columns, self.label = specs, columns, label

    def at(self, position: int) -> tuple:
        return tuple(kind_of(spec).share(spec, column, position, self.label)  # type: ignore[arg-type]
                     for spec, column in zip(self.specs, self.columns))  # every column is shared out by now


def pool_use(pool: PoolSpec, used: Decimal, charged: Decimal) -> PoolUse:
    """What customers were charged is what their cost lines say, as rounded, not rate × use."""
    with decimal.localcontext(CONTEXT):
        return PoolUse(pool.name, pool.amount, pool.volume, pool.unit, pool.amount / pool.volume, used, charged,
                       pool.amount - charged)
