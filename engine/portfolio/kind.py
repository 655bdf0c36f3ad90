"""The interface of a kind of portfolio figure: a figure each record gets from the whole
portfolio (a pooled cost shared out, a referral credit). The pass runner, the stored
context, the explanations and the report know kinds only through this interface, so a new
kind is one new module beside allocation.py and referral.py, listed in kinds.py.

A stage pass runs in four steps for each figure of the stage:
1. `gather`: what the pass keeps of each row (its driver, its group, its id...), taken a
   chunk of rows at a time (so partial results combine as the chunks come);
2. `share_out`: once every row is taken, every row's result in a `Column` and the part of
   the portfolio context the figure stores;
3. `share`: when a decision is explained, its share with everything its explanation needs
   (the share's own `explain(decision)` writes it);
4. `decided` and `leaders`: what the run's summary says once the records in error are out.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterable, List, Optional, Set, Tuple, Union

from ..checked import CheckedPolicy

if TYPE_CHECKING:
    from ..compiler import Plan
    from .storage import Column


class Gather(ABC):
    """What a stage pass keeps of each row for one portfolio figure."""

    def __init__(self) -> None:
        self.errors: Dict[int, str] = {}  # position → why the row can take no part (its record error)

    @abstractmethod
    def reads(self) -> Set[int]:
        """The slots of each row that the share-out reads (carried between streamed passes)."""

    @abstractmethod
    def take(self, chunk: List[Optional[tuple]], start: int) -> None:
        """Rows start.. of the pass: each its slots, or None if the record is in error."""

    @abstractmethod
    def exclude(self, positions: Iterable[int]) -> None:
        """Leave these rows out: they are in error in another figure of the pass."""


class Share(ABC):
    """One record's result for one portfolio figure; `amount` is what the figure is worth."""

    allocation: str
    amount: Any

    @abstractmethod
    def explain(self, decision: Any) -> str:
        """How the explanation of `decision` shows where this amount came from."""


class Kind(ABC):
    """A kind of portfolio figure."""

    spec: ClassVar[type]  # the checked spec of its figures (checked.AllocationSpec, ...)
    section: ClassVar[str]  # its part of a stored portfolio context
    gatherer: ClassVar[type]  # its Gather, made with (plan, spec)

    def gather(self, plan: "Plan", spec: Any) -> Gather:
        """A fresh gatherer for one stage pass."""
        return self.gatherer(plan, spec)

    @abstractmethod
    def share_out(self, policy: CheckedPolicy, spec: Any, gather: Gather, label: str) -> Tuple["Column", Any]:
        """Every row's result, and what this figure stores in the portfolio context."""

    @abstractmethod
    def share(self, spec: Any, column: "Column", position: int, label: str) -> Share:
        """The share of a decided row."""

    @abstractmethod
    def from_context(self, plan: "Plan", spec: Any, stored: Any, slots: tuple, label: str) -> Union[Share, str]:
        """One new record's share from the stored context (`stored` is None when the context
        has none for this figure), or why it has none."""

    def decided(self, spec: Any, column: "Column", stored: Any, lost: Set[int]) -> Any:
        """What the context says once the records in error (`lost`) gave back their shares."""
        return stored

    def leaders(self, spec: Any, column: "Column", lost: Set[int]) -> Tuple[Any, ...]:
        """What the run's summary lists of this figure's best customers (referral leaders)."""
        return ()

    @abstractmethod
    def dump(self, stored: Any) -> Any:
        """The stored context part as JSON data."""

    @abstractmethod
    def load(self, name: str, data: Any) -> Any:
        """The stored context part from JSON data, read by its schema (schema.py); raises schema.Invalid."""
