"""The built-in functions, each declared once: its name, how many values it takes, the
unit of its result, what computes it, and how an explanation shows it. The checker, the
compiler and the explanation all read this table (as Cedar's extension functions are
declared): adding a function is one entry here and a line in docs/language.md.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import attrs

from . import ast, history_functions, units
from .checked import RoundingRule
from .history import MAX_WINDOW
from .units import COUNT, MONEY, PERCENT, Unit, UnitError

MAX_PLACES = 10


class ArgumentError(Exception):
    """A value a function cannot take: reported as diagnostic `code` at argument `index`."""

    def __init__(self, code: str, message: str, help: str, index: int) -> None:
        super().__init__(message)
        self.code, self.message, self.help, self.index = code, message, help, index


def _same_unit(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    """min and max: every value in one unit (a bare number adapts to the others)."""
    unit = found[0]
    for index, other in enumerate(found[1:], start=1):
        try:
            unit = units.add(unit, other, "combine")
        except UnitError as error:
            raise ArgumentError("unit", error.message, error.help, index) from None
    return unit


def _numeric(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    """abs and round: the unit of the value, which must be a number."""
    if not found[0].is_numeric:
        raise ArgumentError("unit", f"this needs a number, but it is {found[0].describe()}", "", 0)
    return found[0]


def _round_unit(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    if len(args) == 2:
        places = args[1]
        if not (isinstance(places, ast.Number) and places.value == places.value.to_integral_value()
                and 0 <= places.value <= MAX_PLACES):
            raise ArgumentError("round-places", f"round() takes a whole number of decimal places from 0 to {MAX_PLACES}",
                                "write e.g. `round(margin, 2)`", 1)
    return _numeric(args, found)


def _round_constants(args: Sequence[ast.Expr], found: Sequence[Unit], rounding: RoundingRule) -> Tuple[Any, ...]:
    """round(x, places) to that many places; round(money) to the policy's unit (cents or
    whole units); round(number) to a whole number; always in the policy's rounding mode."""
    if len(args) == 2:
        places = args[1]
        assert isinstance(places, ast.Number)  # the unit rule made sure
        quantum = Decimal(1).scaleb(-int(places.value))
    elif found[0] == MONEY:
        quantum = rounding.quantum
    else:
        quantum = Decimal(1)
    return (quantum, rounding.rounding)


def _window_args(args: Sequence[ast.Expr], found: Sequence[Unit], numeric: bool = True) -> Unit:
    """A history function reads a named field or figure (whose past values it takes) over a
    whole number of periods from 1 to MAX_WINDOW."""
    if not isinstance(args[0], ast.Name):
        raise ArgumentError("history-argument", "a history function reads the past values of a named field or figure",
                            "name it, e.g. `trend(profit, 4)`; define a measure for a formula first", 0)
    if numeric and not found[0].is_numeric:
        raise ArgumentError("unit", f"this needs a number, but it is {found[0].describe()}", "", 0)
    if len(args) > 1:
        periods = args[1]
        if not (isinstance(periods, ast.Number) and periods.value == periods.value.to_integral_value()
                and 1 <= periods.value <= MAX_WINDOW):
            raise ArgumentError("history-periods", f"the number of periods is a whole number from 1 to {MAX_WINDOW}, "
                                "written in the formula", "e.g. 4 for the last four quarters", 1)
    return found[0]


def _count_of(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    _window_args(args, found)
    return COUNT


def _percent_of(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    _window_args(args, found)
    return PERCENT


def _trend_unit(args: Sequence[ast.Expr], found: Sequence[Unit]) -> Unit:
    if len(args) == 3:
        _round_unit((args[0], args[2]), (found[0], found[2]))
    return _window_args(args, found)


def _trend_constants(args: Sequence[ast.Expr], found: Sequence[Unit], rounding: RoundingRule) -> Tuple[Any, ...]:
    """The slope rounded to the given places, else money to the policy's unit and other
    numbers to 4 places; in the policy's rounding mode."""
    if len(args) == 3:
        return _round_constants((args[0], args[2]), (found[0], found[2]), rounding)
    if found[0] == MONEY:
        return (rounding.quantum, rounding.rounding)
    return (Decimal("0.0001"), rounding.rounding)


@attrs.frozen
class Function:
    """One built-in function.

    `implementation` is called by the compiled plan with the values of the arguments
    that `values` keeps (by default all of them), then the constants from `constants`.
    """

    name: str
    low: int  # fewest values it takes
    high: int  # most values it takes
    summary: str
    unit: Callable[[Sequence[ast.Expr], Sequence[Unit]], Unit]  # raises ArgumentError
    implementation: Callable[..., Any]
    values: Optional[int] = None  # how many of the arguments are computed values (None: all)
    constants: Callable[[Sequence[ast.Expr], Sequence[Unit], RoundingRule], Tuple[Any, ...]] = lambda a, u, r: ()
    # a history function: called with (earlier periods, slot of the named figure, its value now,
    # this period, whether missing periods are zero, the number of periods or None, constants...)
    history: bool = False
    before: int = 0  # periods it reads before the last N (1 for `previous`: N periods ago is N + 1 back)

    def arity(self) -> str:
        return f"{self.low}" if self.low == self.high else f"{self.low} to {self.high}"

    def show(self, args: Sequence[str]) -> str:
        """How an explanation writes a call, given each argument as it shows it."""
        return f"{self.name}({', '.join(args)})"


FUNCTIONS: Mapping[str, Function] = {f.name: f for f in (
    Function("min", 2, 20, "the smallest of the values, all in one unit", _same_unit, min),
    Function("max", 2, 20, "the largest of the values, all in one unit", _same_unit, max),
    Function("abs", 1, 1, "the value without its sign", _numeric, abs),
    Function("round", 1, 2, "the value rounded in the policy's rounding mode: to the given places, "
             "else money to the policy's unit and other numbers to a whole number",
             _round_unit, Decimal.quantize, values=1, constants=_round_constants),
    Function("previous", 2, 2, "the figure's value the given number of periods ago (the first period's, when the "
             "history does not reach back so far)",
             _window_args, history_functions.previous, history=True, before=1),
    Function("change", 2, 2, "the figure now less its value the given number of periods ago (as `previous`)",
             _window_args, history_functions.change, history=True, before=1),
    Function("change_percent", 2, 2, "that change as a percentage of the earlier value (which must not be 0)",
             _percent_of, history_functions.change_percent,
             history=True, before=1),
    Function("sum_last", 2, 2, "the figure added up over the last periods (this one included)", _window_args,
             history_functions.sum_last, history=True),
    Function("average_last", 2, 2, "the figure's average over the last periods (this one included)", _window_args,
             history_functions.average_last, history=True),
    Function("min_last", 2, 2, "the figure's smallest value over the last periods", _window_args,
             history_functions.min_last, history=True),
    Function("max_last", 2, 2, "the figure's largest value over the last periods", _window_args,
             history_functions.max_last, history=True),
    Function("trend", 2, 3, "the least-squares slope of the figure per period over the last periods, exact, then "
             "rounded in the policy's mode: to the given places, else money to the policy's unit and other "
             "numbers to 4 places", _trend_unit, history_functions.trend, values=2, constants=_trend_constants,
             history=True),
    Function("periods_negative", 2, 2, "how many of the last periods the figure was negative or zero", _count_of,
             history_functions.periods_negative, history=True),
    Function("periods_since_positive", 1, 1, "how many periods ago the figure was last positive: 0 when it is now, "
             "every period of the history when it never was", _count_of, history_functions.periods_since_positive,
             history=True),
)}
