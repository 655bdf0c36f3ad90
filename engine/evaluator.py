"""Records → decisions, by running the compiled plan.

A decision keeps the tuple of every value the plan computed; its figures, its
outcome and its explanation are all read from that one tuple.
"""
from __future__ import annotations

import decimal
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Tuple, Union

import attrs

from .compiler import ARITHMETIC_ERRORS, Outcome, Plan, WarningOutcome, record_error_owner
from .display import json_value
from .explain import Explanation, explain
from .money import CONTEXT
from .records import RecordError, validate


@attrs.frozen(eq=False)
class Decision:
    """The classification of one record, with every figure behind it."""

    id: Optional[str]
    row: Optional[int]
    outcomes: Tuple[Outcome, ...]
    plan: Plan = attrs.field(repr=False)
    slots: tuple = attrs.field(repr=False)
    # its share of each pooled cost: a tuple, or a portfolio run's shares, made only when asked for
    _shares: Any = attrs.field(default=(), repr=False)
    _position: int = attrs.field(default=0, repr=False)
    # for a period of a history: each earlier period of the customer with its values, oldest first
    earlier: tuple = attrs.field(default=(), repr=False)

    @property
    def classification(self) -> str:
        """The label given by the policy's first classification."""
        return self.outcomes[0].label

    @property
    def action(self) -> Optional[str]:
        return self.outcomes[0].action

    @property
    def rule(self) -> Outcome:
        return self.outcomes[0]

    @property
    def classes(self) -> dict:
        """Every classification's label, by classification name."""
        return {o.classification: o.label for o in self.outcomes}

    @property
    def period(self) -> Optional[str]:
        """The period decided, for a policy of histories (a `Period`, written as `2025Q3`); else None."""
        history = self.plan.policy.history
        return None if history is None else self.slots[self.plan.figure_slot[history.field]]

    @property
    def warnings(self) -> Tuple[WarningOutcome, ...]:
        """Every warning rule that fired on this decision, in the policy's order."""
        return self.plan.warnings_of(self.slots)

    @property
    def figures(self) -> dict:
        """Every named cost, credit, total, measure and threshold (name → Decimal)."""
        slots = self.slots
        return {name: slots[slot] for name, slot in self.plan.reported}

    def share(self, name: str) -> Any:
        """Its share of the portfolio figure (pooled cost, referral credit) `name`."""
        index = self.plan.portfolio_figures.get(name)
        if index is None:
            known = ", ".join(self.plan.portfolio_figures) or "none in this policy"
            raise KeyError(f"'{name}' is not a pooled cost or referral credit of this policy ({known})")
        return self.shares[index]

    @property
    def shares(self) -> tuple:
        """Its Share (or ReferralShare) of each of the policy's allocations; () if it has none."""
        shares = self._shares
        return shares if shares.__class__ is tuple else shares.at(self._position)

    def value(self, name: str) -> Any:
        """The value of one field, figure or classification of this decision, by name."""
        try:
            return self.plan.figure_value(name, self.slots)
        except KeyError:
            known = ", ".join([*self.plan.figure_slot][:12])
            raise KeyError(f"'{name}' is not a field, rate, figure or classification of this policy (e.g. {known})") from None

    def as_dict(self) -> Dict[str, Any]:
        """The JSON form of a decision (as `profit run --format json` writes it): figures as
        exact decimal strings, dates as ISO text."""
        rule = self.rule
        history = self.plan.policy.history
        return {
            "id": self.id,
            "row": self.row,
            **({"period": str(self.period)} if history is not None else {}),
            "class": self.classification,
            "action": self.action,
            "rule": {"classification": rule.classification, "number": rule.rule, "label": rule.label,
                     "line": rule.line},
            "classes": self.classes,
            "figures": {name: json_value(value) for name, value in self.figures.items()},
            **({"warnings": [{"name": w.name, "message": w.message, "line": w.line} for w in self.warnings]}
               if self.plan.warning_tables else {}),
        }

    def explain(self) -> Explanation:
        """The step-by-step explanation, built from this decision's own values."""
        return explain(self)


Result = Union[Decision, RecordError]
ShareOf = Callable[[int, tuple], Any]  # (allocation index, slots so far) -> its Share, or why there is none


def evaluate(plan: Plan, record: Mapping[str, Any], row: Optional[int] = None,
             share_of: Optional[ShareOf] = None) -> Decision:
    """Decide one record; raise RecordError if it is invalid or its arithmetic fails.

    A policy with allocations needs `share_of`: the record's share of each pool (from a
    stored portfolio context), given what the plan has computed so far.
    """
    with decimal.localcontext(CONTEXT):
        values, record_id = validate(record, plan.fields, plan.key_column, plan.policy.currency, row)
        return decide(plan, values, record_id, row, share_of)


def decide(plan: Plan, values: tuple, record_id: Optional[str], row: Optional[int],
           share_of: Optional[ShareOf] = None, earlier: tuple = ()) -> Decision:
    """Decide a record whose values are already validated (in the engine's decimal context)."""
    segments = plan.segments
    if len(segments) > 1 and share_of is None:
        raise RecordError("this policy shares pooled costs over the portfolio: evaluate the whole "
                          "portfolio, or give a stored portfolio context", row=row, id=record_id)
    shares: list = [None] * len(plan.policy.allocations)
    amounts: list = [None] * len(shares)
    slots = values
    try:
        for segment in segments:
            slots = segment.function(slots, tuple([amounts[i] for i in segment.reads]), earlier)
            for index in segment.allocations:
                assert share_of is not None  # checked above: a portfolio policy needs it
                share = share_of(index, slots)
                if isinstance(share, str):
                    raise RecordError(share, row=row, id=record_id)
                shares[index], amounts[index] = share, share.amount
    except ARITHMETIC_ERRORS as error:
        raise arithmetic_error(plan, error, slots, row, record_id) from None
    return conclude(plan, slots, record_id, row, tuple(shares) if len(segments) > 1 else (), earlier=earlier)


def conclude(plan: Plan, slots: tuple, record_id: Optional[str], row: Optional[int],
             shares: Any = (), position: int = 0, earlier: tuple = ()) -> Decision:
    """The decision read from a record's finished slots."""
    return Decision(record_id, row, tuple([table[slots[slot]] for slot, table in plan.outcome_tables]),
                    plan, slots, shares, position, earlier)


def evaluate_rows(plan: Plan, rows: Iterable[Tuple[int, Any]],
                  share_of: Optional[ShareOf] = None) -> Iterator[Result]:
    """One result per input row, in order: a Decision, or the RecordError that row raised."""
    for row, record in rows:
        if isinstance(record, RecordError):
            yield record
            continue
        try:
            yield evaluate(plan, record, row, share_of)
        except RecordError as error:
            yield error


def _signals(error: Exception, signal: type) -> bool:
    """The C decimal module raises 0/0 as InvalidOperation listing DivisionUndefined."""
    return isinstance(error, signal) or any(
        isinstance(arg, list) and signal in arg for arg in getattr(error, "args", ()))


def arithmetic_error(plan: Plan, error: Exception, values: tuple, row: Optional[int],
                     record_id: Optional[str]) -> RecordError:
    """The RecordError for a failure in the generated code: what failed, on which policy line, and how to fix it.

    A TypeError or AttributeError is the data's fault only when the failing line read an empty
    value (an optional field left empty); anything else is a fault of the engine, said as such."""
    owner, empty_read = record_error_owner(plan, error.__traceback__)
    where = f" in {owner.what}, line {owner.span.line}" if owner else ""
    kind = None
    if isinstance(error, (TypeError, AttributeError)):
        if empty_read:
            read = list(dict.fromkeys(plan.fields[slot].name for slot in empty_read if slot < len(plan.fields)))
            empty = read or [spec.name for spec, value in zip(plan.fields, values) if value is None]
            problem = ("uses an optional field that this record leaves empty"
                       + (f" ({', '.join(empty)})" if empty else ""))
            hint = "; give the field a default, or test it with `is missing`"
        else:
            problem = f"the engine failed ({type(error).__name__}: {error})"
            hint = "; this is a fault of the engine, not of the record: please report it with the policy"
            kind = "engine"
    elif isinstance(error, decimal.DivisionByZero) or _signals(error, decimal.DivisionUndefined):
        problem, hint = "division by zero", "; guard the formula, e.g. `x / orders when orders > 0 else 0`"
    elif isinstance(error, decimal.Overflow) or isinstance(error, decimal.InvalidOperation):
        problem, hint = "a value is too large to compute exactly", ""
    else:  # pragma: no cover - ARITHMETIC_ERRORS lists the cases above
        problem, hint = str(error), ""
    return RecordError(f"{problem}{where}{hint}", row=row, id=record_id,
                       line=owner.span.line if owner else None, kind=kind)
