"""A batch of histories: rows grouped into customers, each customer's periods decided in order.

With `input sorted` the rows of a customer come together, so a customer is decided as soon
as the next one starts, and memory holds one customer's history; the check that the
customers really come one after another needs no memory either (`_Order`). With `input
unsorted` every row is held until the end (memory grows with the rows; customers are then
decided in the order they first appeared). A row that cannot be read, a period out of
order, duplicated or of the wrong granularity, or a missing period where missing periods
are errors, is that customer's error, and the batch goes on.

Records in = results out: deciding every period, each row gives a decision or (its
customer failing) an error; deciding the latest period, each customer gives one.
"""
from __future__ import annotations

import decimal
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import attrs

from .evaluator import Decision, decide
from .compiler import Plan
from .history import HistorySpec, Period, natural_key
from .money import CONTEXT
from .records import RecordError, record_id, validate

HELD = "held"  # the kind of a row's error that is its customer's error found on another row
MAX_PERIODS = 1200  # periods of one customer: a hundred years of months
Result = Union[Decision, RecordError]
Row = Tuple[int, Any]  # (row number, the raw record or the reader's RecordError)


class HistoryRun:
    """Iterates the results of a batch of histories; counts the rows and customers it read."""

    def __init__(self, plan: Plan, rows: Iterable[Row]) -> None:
        history = plan.policy.history
        assert history is not None  # a history policy's plan
        self.plan, self.history = plan, history
        self.rows = 0
        self.customers = 0
        self._results = self._decide(rows)

    def __iter__(self) -> Iterator[Result]:
        return self._results

    def _decide(self, rows: Iterable[Row]) -> Iterator[Result]:
        groups = self._sorted(rows) if self.history.sorted else self._held(rows)
        for customer, group, refused in groups:
            self.customers += refused is None  # a customer's rows that come back are not another customer
            with decimal.localcontext(CONTEXT):
                yield from self._customer(customer, group, refused)

    # ---- customers out of rows -----------------------------------------------------

    def _id(self, record: Any) -> Optional[str]:
        return record.id if isinstance(record, RecordError) else record_id(record, self.plan.key_column)

    def _sorted(self, rows: Iterable[Row]) -> Iterator[Tuple[str, List[Row], Optional[str]]]:
        current: Optional[str] = None
        group: List[Row] = []
        refused: Optional[str] = None
        order = _Order()
        for row, record in rows:
            self.rows += 1
            customer = self._id(record)
            if customer is None:  # no customer to give it to: its own error
                yield "", [(row, record)], None
                continue
            if customer != current:
                if current is not None:
                    yield current, group, refused
                before = current
                current, group = customer, []
                refused = None if order.follows(customer) else (
                    f"customer '{customer}' (row {row}) comes after '{before}', but with `input sorted` customers "
                    "come in the order of their ids (as text, or C-2 before C-10), each with all its rows; if "
                    f"'{customer}' had rows before, they were decided as its whole history: sort the input by "
                    "customer, or write `input unsorted` in the history block")
            group.append((row, record))
        if current is not None:
            yield current, group, refused

    def _held(self, rows: Iterable[Row]) -> Iterator[Tuple[str, List[Row], Optional[str]]]:
        groups: Dict[str, List[Row]] = {}
        lone: List[Row] = []
        for row, record in rows:
            self.rows += 1
            customer = self._id(record)
            if customer is None:
                lone.append((row, record))
            else:
                groups.setdefault(customer, []).append((row, record))
        for row, record in lone:
            yield "", [(row, record)], None
        for customer, group in groups.items():
            yield customer, group, None

    # ---- one customer ---------------------------------------------------------------

    def _customer(self, customer: str, group: List[Row], refused: Optional[str]) -> Iterator[Result]:
        plan, history = self.plan, self.history
        every = history.every
        failure: Optional[RecordError] = None
        if refused is not None:
            failure = RecordError(refused, row=group[0][0], id=customer)
        elif len(group) > MAX_PERIODS:
            failure = RecordError(f"customer '{customer}' has {len(group):,} rows; a history holds at most "
                                  f"{MAX_PERIODS:,} periods", row=group[0][0], id=customer)
        periods: List[Tuple[Period, int, tuple]] = []
        if failure is None:
            field = plan.figure_slot[history.field]
            for row, record in group:
                try:
                    if isinstance(record, RecordError):
                        raise record
                    values, _ = validate(record, plan.fields, plan.key_column, plan.policy.currency, row)
                except RecordError as error:
                    failure = error
                    break
                periods.append((values[field], row, values))
            else:
                failure = self._order(customer, periods)
        decisions: List[Decision] = []
        if failure is None:
            earlier: Tuple[Tuple[Period, tuple], ...] = ()
            for period, row, values in periods:
                try:
                    decision = decide(plan, values, customer, row, earlier=earlier)
                except RecordError as error:
                    failure = error
                    break
                decisions.append(decision)
                earlier = earlier + ((period, decision.slots),)
        if failure is not None:
            yield from self._failed(customer, group, failure)
        elif every:
            yield from decisions
        else:
            yield decisions[-1]

    def _order(self, customer: str, periods: List[Tuple[Period, int, tuple]]) -> Optional[RecordError]:
        """Why the customer's periods cannot be read as one history; None when they can.
        Sorted input must already be in order; otherwise the periods are put in order here."""
        history = self.history
        if not history.sorted:
            periods.sort(key=lambda p: p[0].ordinal)
        for (before, before_row, _), (period, row, _) in zip(periods, periods[1:]):
            if period.ordinal == before.ordinal:
                return RecordError(f"period {period} appears twice (rows {before_row} and {row}); a customer has one "
                                   "row per period", row=row, id=customer, field=history.field, value=str(period))
            if period.ordinal < before.ordinal:
                return RecordError(f"period {period} (row {row}) comes after {before} (row {before_row}), but the "
                                   "policy says `input sorted`; sort each customer's rows by period, or write "
                                   "`input unsorted`", row=row, id=customer, field=history.field, value=str(period))
            if history.missing == "error" and period.ordinal > before.ordinal + 1:
                gap = period.ordinal - before.ordinal - 1
                return RecordError(f"{gap} period{'s' * (gap > 1)} missing between {before} (row {before_row}) and "
                                   f"{period} (row {row}); give each period a row, or write `missing periods are "
                                   "zero` (or `skipped`) in the history block", row=row, id=customer,
                                   field=history.field, value=str(period))
        return None

    def _failed(self, customer: str, group: List[Row], failure: RecordError) -> Iterator[RecordError]:
        """The customer's error: once when deciding its latest period, else once for each of its rows."""
        if not customer or len(group) == 1:
            yield failure
            return
        first = attrs.evolve(failure, id=customer, message=f"{failure.message}; so none of the {len(group):,} rows "
                             f"of customer '{customer}' is decided")
        if not self.history.every:
            yield first
            return
        for row, _ in group:
            yield first if row == failure.row else RecordError(
                f"not decided: row {failure.row} of customer '{customer}' has an error ({failure.message})",
                row=row, id=customer, kind=HELD)


class _Order:
    """Whether customers come one after another, with no memory of the customers seen: sorted
    input has its ids strictly increasing in text order or in natural order (`C-2` before
    `C-10`); a customer whose rows come back after others' breaks both, as no order can have
    an id both before and after another."""

    def __init__(self) -> None:
        self.last: Optional[str] = None
        self.text = self.natural = True

    def follows(self, customer: str) -> bool:
        last = self.last
        if last is not None:
            text = self.text and customer > last
            natural = self.natural and natural_key(customer) > natural_key(last)
            if not (text or natural):
                return False  # the orders still possible stay as they were
            self.text, self.natural = text, natural
        self.last = customer
        return True
