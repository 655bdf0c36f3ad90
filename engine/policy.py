"""The library's front door: load a policy once, evaluate records many times."""
from __future__ import annotations

import decimal
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Tuple, Union

from .checked import CheckedPolicy
from .checker import check
from .compiler import Plan, compile_policy
from .diagnostics import Diagnostic
from .money import CONTEXT
from .evaluator import Decision, ShareOf, evaluate, evaluate_rows
from .parser import collector_paused, parse, read_policy
from .portfolio import PortfolioContext, evaluate_portfolio, share_from_context
from .records import RecordSource
from .history_run import HistoryRun
from .run import KeptRun, Progress, Run, first_ids_only


class Policy:
    """A checked, compiled policy. Immutable and safe to share between threads."""

    __slots__ = ("_plan",)

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_plan"):
            raise AttributeError("a Policy is immutable")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Policy is immutable")

    @property
    def name(self) -> str:
        return self._plan.policy.name

    @property
    def version(self) -> Optional[str]:
        return self._plan.policy.version

    @property
    def currency(self) -> str:
        return self._plan.policy.currency

    @property
    def filename(self) -> str:
        return self._plan.policy.filename

    @property
    def checked(self) -> CheckedPolicy:
        return self._plan.policy

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def warnings(self) -> Tuple[Diagnostic, ...]:
        return self._plan.policy.warnings

    @property
    def field_names(self) -> Tuple[str, ...]:
        return tuple(f.name for f in self._plan.fields)

    @property
    def figure_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self._plan.reported)

    @property
    def is_portfolio(self) -> bool:
        """Whether decisions need the whole portfolio (the policy shares pooled costs)."""
        return self._plan.policy.is_portfolio

    @property
    def bottom_line(self) -> Optional[str]:
        """The money figure that ranks customers (`rank by`, else the measure `profit`, else the
        last money measure); None when the policy has no money measure."""
        return self._plan.policy.bottom_line

    @property
    def classification_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self._plan.policy.classifications)

    @property
    def passes(self) -> Tuple[Tuple[str, ...], ...]:
        """For a portfolio policy, the pooled figures each stage pass shares out, in order."""
        return self._plan.policy.passes

    def evaluate(self, record: Mapping[str, Any], context: Optional[PortfolioContext] = None) -> Decision:
        """Decide one record. Raises RecordError for a bad record.

        A policy that shares pooled costs needs `context`: the totals of a portfolio run
        (`policy.run(records).summary.context`); the explanation names the context it used.
        """
        if context is None:
            return evaluate(self._plan, record)
        return evaluate(self._plan, record, share_of=self._share_of(context))

    def run(self, records: Union[Iterable[Mapping[str, Any]], RecordSource], *,
            context: Optional[PortfolioContext] = None, progress: Optional[Progress] = None,
            unique_ids: bool = False) -> Run:
        """Decide a batch: a Decision or a RecordError per record, in input order, then the summary.

        Picks the strategy itself: record by record; for a portfolio policy, every record
        first, sharing pools out exactly over all of them (a RecordSource, such as a file, is
        read again instead of being held in memory); with `context`, each record against those
        stored portfolio totals. `progress(records, errors)` is called every 256 records. With
        `unique_ids`, a record whose id an earlier record had is a record error before anything
        is evaluated (in a portfolio it takes no part in any pool or referral network). A policy
        of histories groups its rows into customers instead (see engine/history_run.py): a
        customer's rows share its id by design, a period given twice is its error, and
        `unique_ids` does not apply.
        """
        plan = self._plan
        if isinstance(records, RecordSource):  # the file's header against the record schema, before any row
            records.check(plan.fields, plan.key_column)

        def rows() -> Iterator[Tuple[int, Any]]:
            found = _rows(records)
            return first_ids_only(found, plan.key_column) if unique_ids else found

        if plan.policy.history is not None:  # a customer is its rows, one per period: ids repeat by design
            return Run(self, HistoryRun(plan, _rows(records)), progress=progress)
        if context is not None:
            results = evaluate_rows(plan, rows(), share_of=self._share_of(context))
            return Run(self, results, progress=progress)
        if plan.stages or plan.policy.pools:  # capacity pools report their use over the run
            if isinstance(records, RecordSource):
                label = "this run" if records.name is None else f"the run over {records.name}"
                records.rereadable()
                results, finish = evaluate_portfolio(plan, rows, label)
            else:
                kept = rows()  # read once: the records are kept in memory between passes
                results, finish = evaluate_portfolio(plan, lambda: kept, keep_values=True)
            return Run(self, results, finish, progress)
        return Run(self, evaluate_rows(plan, rows()), progress=progress)

    def evaluate_many(self, records: Iterable[Mapping[str, Any]]) -> Run:
        """Decide records as they come; yields a Decision or a RecordError for each, in order.
        The same as `run(records)`: its `summary` is ready once every result is read."""
        return self.run(records)

    def evaluate_portfolio(self, records: Iterable[Mapping[str, Any]]) -> KeptRun:
        """Decide every record and keep every result (`results`), with the run's summary."""
        return self.run(records).kept()

    def _share_of(self, context: PortfolioContext) -> ShareOf:
        plan = self._plan
        return lambda index, slots: share_from_context(plan, context, index, slots)

    def __repr__(self) -> str:
        return f"<Policy {self.name!r} from {self.filename}>"


def _rows(records: Union[Iterable[Mapping[str, Any]], RecordSource]) -> Iterator[Tuple[int, Any]]:
    if isinstance(records, RecordSource):
        return records.rows()
    return enumerate(records, start=1)


def load_policy(source: Union[str, "os.PathLike[str]"], *, filename: Optional[str] = None) -> Policy:
    """Load a policy from a path, or from policy text (any string containing a line break).

    Raises PolicyError with every diagnostic when the policy is not valid.
    """
    # the caller's decimal settings never reach a policy; the collector: see engine/parser.py
    with decimal.localcontext(CONTEXT), collector_paused():
        return Policy(compile_policy(check_policy(source, filename=filename)))


def check_policy(source: Union[str, "os.PathLike[str]"], *, filename: Optional[str] = None) -> CheckedPolicy:
    """Check a policy without compiling it, as `profit check` does: read as `load_policy`
    reads, the same PolicyError, and on success the checked policy (its `warnings`, `passes`,
    `digest`), which cannot decide records."""
    if isinstance(source, os.PathLike) or "\n" not in source:
        name = filename or str(source)
        text = read_policy(Path(source), name)  # UTF-8 with or without a BOM; else a PolicyError
    else:
        text, name = source, filename or "<string>"  # a leading BOM is read as in a file (parse)
    with decimal.localcontext(CONTEXT), collector_paused():
        return check(parse(text, name))
