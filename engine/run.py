"""A run: a policy's results over a batch of records, and what the run found.

    run = policy.run(records)
    for result in run:              # a Decision or a RecordError per record, in input order
        ...
    run.summary.line()              # "800 records in = 800 decisions + 0 errors out"

The results stream: they are read once, as they come, and only the summary is kept
(counts and bottom-line totals per class, the record errors, and for a portfolio the
pools as shared, the capacity pools' use and the referral leaders), with the set of ids
seen so far, to name the ids on more than one record (one entry per distinct id, about
100 bytes each, 100 MB for a million: the only part of a run's memory that grows with
the records).

`first_ids_only(rows, key)` makes every record whose id an earlier record already had a
RecordError before it is evaluated (`profit run --unique-ids`).
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

import attrs

from .evaluator import Decision
from .history_run import HistoryRun
from .money import CONTEXT, grouped, quantity
from .portfolio import PoolUse, PortfolioContext, PortfolioSummary, ReferralLeader
from .records import RecordError, record_id
from .units import singular

if TYPE_CHECKING:
    from .policy import Policy

Result = Union[Decision, RecordError]
Progress = Callable[[int, int], None]  # (records so far, errors so far)
PROGRESS_EVERY = 256
DUPLICATES_LISTED = 20  # the ids a summary names; `duplicates` counts them all
_ZERO = Decimal(0)


def plural(count: int, word: str, many: Optional[str] = None) -> str:
    """`1 record`, `2 records`, `1,000 customers`."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


@attrs.frozen
class RunSummary:
    """What a run found once every record was read: records in = decisions + errors out."""

    records: int
    decisions: int
    errors: Tuple[RecordError, ...]
    currency: str
    classification: str  # the policy's first classification, which `counts` and `totals` are of
    counts: Tuple[Tuple[str, int], ...]  # (label, decisions), in rule order; labels nobody got left out
    bottom_line: Optional[str]  # the money figure `totals` adds up
    totals: Tuple[Tuple[str, Decimal], ...]  # (label, its decisions' bottom line added up)
    portfolio: Optional[PortfolioSummary] = None  # pools as shared, capacity use, referral leaders
    # ids on more than one record (decided or not), in the order they were first repeated: at most
    # DUPLICATES_LISTED of them; `duplicates` counts them all, `repeated` the records after the first
    duplicate_ids: Tuple[str, ...] = ()
    duplicates: int = 0
    repeated: int = 0
    # a run of histories: the rows read and the customers they hold; `records` counts the
    # customers when only each customer's latest period is decided, else the rows
    rows: Optional[int] = None
    customers: Optional[int] = None
    every_period: bool = False  # a run of histories deciding every period, not only the latest

    @property
    def context(self) -> Optional[PortfolioContext]:
        """The portfolio totals, to store and decide single records against later."""
        return self.portfolio.context if self.portfolio is not None else None

    @property
    def pools(self) -> Tuple[PoolUse, ...]:
        return self.portfolio.pools if self.portfolio is not None else ()

    @property
    def referral_leaders(self) -> Tuple[ReferralLeader, ...]:
        return self.portfolio.referral_leaders if self.portfolio is not None else ()

    def line(self) -> str:
        """`800 records in = 798 decisions + 2 errors out`; for histories, `600 customers (4,800
        records) in = ...` when the latest periods are decided, `4,800 records (600 customers) in = ...`
        when every period is."""
        head = plural(self.records, "record")
        if self.rows is not None and self.customers is not None:
            head = (f"{plural(self.rows, 'record')} ({plural(self.customers, 'customer')})"
                    if self.every_period else f"{plural(self.customers, 'customer')} ({plural(self.rows, 'record')})")
        return f"{head} in = {plural(self.decisions, 'decision')} + {plural(len(self.errors), 'error')} out"

    def duplicate_line(self) -> Optional[str]:
        """`2 duplicate ids (3 records after the first with their id): C-1, C-7`; None without."""
        if not self.duplicates:
            return None
        names = ", ".join(self.duplicate_ids)
        if self.duplicates > len(self.duplicate_ids):
            names += f" and {self.duplicates - len(self.duplicate_ids):,} more"
        return (f"{plural(self.duplicates, 'duplicate id')} ({plural(self.repeated, 'record')} after the first "
                f"with {'its' if self.duplicates == 1 else 'their'} id): {names}")

    def pool_lines(self) -> List[str]:
        """How each pooled cost was shared, and each capacity pool's use, in words."""
        if self.portfolio is None:
            return []
        currency = self.currency
        lines = []
        for allocation in self.portfolio.context.allocations.values():
            for group, share in allocation.groups.items():
                where = f" [{group}]" if group is not None else ""
                basis = f"by {allocation.driver} (total {quantity(share.total)})" if allocation.driver else "equally"
                lines.append(f"pool {allocation.name}{where}: {grouped(share.pool)} {currency} shared {basis} "
                             f"over {plural(share.customers, 'customer')}; allocated {grouped(share.allocated)} {currency}")
        for pool in self.portfolio.pools:
            lines.append(f"capacity {pool.name}: {grouped(pool.amount)} {currency} over {quantity(pool.volume)} "
                         f"{pool.unit} = {grouped(pool.rate)} {currency} per {singular(pool.unit)}; used {quantity(pool.used)} "
                         f"{pool.unit}, charged {grouped(pool.charged)} {currency}, unused capacity "
                         f"{grouped(pool.unused)} {currency}")
        return lines


class Run:
    """The results of one policy over one batch, in input order: iterate once.

    `summary` is ready once every result has been read (asking for it reads the rest).
    """

    def __init__(self, policy: "Policy", results: Iterable[Result], portfolio: Optional[Callable[[], Optional[PortfolioSummary]]] = None,
                 progress: Optional[Progress] = None) -> None:
        checked = policy.checked
        # a history run counts its rows and customers; its ids repeat, one row per period, by design
        self._history = results if isinstance(results, HistoryRun) else None
        self._policy = policy
        self._results = iter(results)
        self._portfolio = portfolio
        self._progress = progress
        self._currency = checked.currency
        self._classification = checked.classifications[0].name
        self._labels = list(dict.fromkeys(rule.label for rule in checked.classifications[0].rules))
        self._bottom_line = checked.bottom_line
        self._slot = policy.plan.figure_slot[checked.bottom_line] if checked.bottom_line else None
        self._counts: Dict[str, int] = {}
        self._totals: Dict[str, Decimal] = {}
        self._errors: List[RecordError] = []
        self._records = 0
        self._repeats: Dict[str, int] = {}  # id → records with it after the first, in order first repeated
        self._summary: Optional[RunSummary] = None
        self._reader = self._read()

    def __iter__(self) -> Iterator[Result]:
        return self._reader

    def __next__(self) -> Result:
        return next(self._reader)

    def _read(self) -> Iterator[Result]:
        """Each result as it comes, counted into the summary (locals, as this runs per record)."""
        counts, totals, errors, slot, progress = self._counts, self._totals, self._errors, self._slot, self._progress
        history = self._history
        add = CONTEXT.add  # exact whatever the caller's decimal context: the run adds in the engine's
        records = 0
        seen: Set[str] = set()
        see, repeats = seen.add, self._repeats
        for result in self._results:
            records += 1
            record_id = result.id
            if record_id is not None and history is None:
                if record_id in seen:
                    repeats[record_id] = repeats.get(record_id, 0) + 1
                else:
                    see(record_id)
            if result.__class__ is RecordError:
                errors.append(result)
            else:
                label = result.outcomes[0].label  # type: ignore[union-attr]
                counts[label] = counts.get(label, 0) + 1
                if slot is not None:
                    value = result.slots[slot]  # type: ignore[union-attr]
                    if value.__class__ is Decimal:
                        totals[label] = add(totals.get(label, _ZERO), value)
            if progress is not None and not records % PROGRESS_EVERY:
                progress(records, len(errors))
            yield result
        self._records = records
        self._finish()

    def _finish(self) -> None:
        if self._summary is not None:
            return
        self._summary = RunSummary(
            records=self._records, decisions=self._records - len(self._errors), errors=tuple(self._errors),
            currency=self._currency, classification=self._classification,
            counts=tuple((label, self._counts[label]) for label in self._labels if label in self._counts),
            bottom_line=self._bottom_line,
            totals=tuple((label, self._totals[label]) for label in self._labels if label in self._totals),
            portfolio=self._portfolio() if self._portfolio is not None else None,
            duplicate_ids=tuple(list(self._repeats)[:DUPLICATES_LISTED]), duplicates=len(self._repeats),
            repeated=sum(self._repeats.values()),
            rows=self._history.rows if self._history is not None else None,
            customers=self._history.customers if self._history is not None else None,
            every_period=self._history is not None and self._history.history.every)

    @property
    def summary(self) -> RunSummary:
        """The run's summary; reads (and drops) any results not read yet."""
        for _ in self._reader:
            pass
        assert self._summary is not None
        return self._summary

    @property
    def context(self) -> Optional[PortfolioContext]:
        return self.summary.context

    def kept(self) -> "KeptRun":
        """This run with every result kept in `results` (read now)."""
        return KeptRun(self._policy, self._history if self._history is not None else self._results, self._portfolio)


class KeptRun(Run):
    """A run whose results are all kept, in input order (`results`)."""

    def __init__(self, policy: "Policy", results: Iterable[Result],
                 portfolio: Optional[Callable[[], Optional[PortfolioSummary]]] = None) -> None:
        super().__init__(policy, results, portfolio)
        self.results: Tuple[Result, ...] = tuple(self._reader)  # one pass: kept as the summary counts them

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)


def first_ids_only(rows: Iterable[Tuple[int, Any]], key: str) -> Iterator[Tuple[int, Any]]:
    """(row, record) pairs as given, except that a record whose id an earlier record already had
    becomes a RecordError: the first record with an id keeps it, and records in = decisions +
    errors still holds. Made before any evaluation, so a portfolio run leaves the later records
    out of every pool and referral network, as it does any record in error."""
    first: Dict[str, int] = {}
    for row, record in rows:
        if record.__class__ is not RecordError:
            found = record_id(record, key)
            if found is not None:
                earlier = first.setdefault(found, row)
                if earlier != row:
                    record = RecordError(f"duplicate id '{found}': row {earlier} has it already, and only the "
                                         "first record with an id is decided", row=row, id=found, field=key,
                                         value=found)
        elif record.id is not None:
            first.setdefault(record.id, row)
        yield row, record
