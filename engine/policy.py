"""The library's front door: load a policy once, evaluate records many times."""
from __future__ import annotations

import decimal
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Tuple, Union

import attrs

from .checker import CheckedPolicy, check
from .compiler import Plan, compile_policy
from .diagnostics import Diagnostic
from .money import CONTEXT
from .evaluator import Decision, Result, evaluate, evaluate_rows
from .parser import parse
from .portfolio import PortfolioContext, PortfolioSummary, evaluate_portfolio, share_from_context


class Policy:
    """A checked, compiled policy. Immutable and safe to share between threads."""

    __slots__ = ("_plan",)

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __setattr__(self, name, value):
        if hasattr(self, "_plan"):
            raise AttributeError("a Policy is immutable")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError("a Policy is immutable")

    @property
    def name(self) -> str:
        return self._plan.policy.name

    @property
    def version(self):
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
        return bool(self._plan.stages)

    def evaluate(self, record: Mapping[str, Any], context: Optional[PortfolioContext] = None) -> Decision:
        """Decide one record. Raises RecordError for a bad record.

        A policy that shares pooled costs needs `context`: the totals of a portfolio run
        (`evaluate_portfolio(...).context`); the explanation names the context it used.
        """
        if context is None:
            return evaluate(self._plan, record)
        plan = self._plan
        return evaluate(plan, record, share_of=lambda index, slots: share_from_context(plan, context, index, slots))

    def evaluate_portfolio(self, records: Iterable[Mapping[str, Any]]) -> "PortfolioRun":
        """Decide every record of a portfolio, sharing pooled costs exactly over all of them."""
        rows = enumerate(records, start=1)  # read once: the records are kept in memory between passes
        return run_portfolio(self._plan, lambda: rows, keep_values=True)

    def evaluate_many(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Result]:
        """Decide records as they come; yields a Decision or a RecordError for each, in order.

        A policy that shares pooled costs reads every record first and shares its pools out
        over them; evaluate_portfolio also gives the run's summary and context.
        """
        if self._plan.stages:  # the stage passes run now; each decision is made as it is asked for
            rows = enumerate(records, start=1)  # read once: the records are kept in memory between passes
            return evaluate_portfolio(self._plan, lambda: rows, keep_values=True)[0]
        return evaluate_rows(self._plan, enumerate(records, start=1))

    def __repr__(self) -> str:
        return f"<Policy {self.name!r} from {self.filename}>"


@attrs.frozen
class PortfolioRun:
    """Decisions (or record errors) in input order, and what the portfolio run found."""

    results: tuple
    summary: PortfolioSummary

    @property
    def context(self) -> PortfolioContext:
        return self.summary.context


def run_portfolio(plan: Plan, source, keep_values: bool = False) -> PortfolioRun:
    results, finish = evaluate_portfolio(plan, source, keep_values=keep_values)
    collected = tuple(results)
    return PortfolioRun(collected, finish())


def load_policy(source: Union[str, "os.PathLike[str]"], *, filename: str = None) -> Policy:
    """Load a policy from a path, or from policy text (any string containing a line break).

    Raises PolicyError with every diagnostic when the policy is not valid.
    """
    if isinstance(source, os.PathLike) or "\n" not in source:
        path = Path(source)
        text = path.read_text(encoding="utf-8-sig")
        name = filename or str(source)
    else:
        text, name = source, filename or "<string>"
    with decimal.localcontext(CONTEXT):  # the caller's decimal settings never reach a policy
        return Policy(compile_policy(check(parse(text, name))))
