"""Values as text for people: a figure in a formula, a figure with its currency, a value in JSON.

Shared by explanations and by the portfolio figures' explanations of their shares, so a
value reads the same wherever it is shown.
"""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from .money import grouped, percent, plain, quantity
from .units import Unit


def short(value: Any, unit: Unit) -> str:
    """A value inside a formula: no currency, a unit only where it helps (31 h)."""
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, datetime.date):
        return value.isoformat()
    if unit.kind == "percent":
        return percent(value)
    if unit.kind == "money":
        return grouped(value)
    if unit.kind == "hours" and not unit.per:
        return quantity(value) + " h"
    if unit.kind == "days" and not unit.per:
        return quantity(value) + " days"
    return quantity(value)


def shown(value: Any, unit: Unit, currency: str) -> str:
    """A figure in the figures column: money with its currency, rates with what they are per."""
    text = short(value, unit)
    if unit.kind == "money" and value is not None:
        text += f" {currency}"
    if unit.per:
        text += f" per {unit.per}"
    return text


def json_value(value: Any) -> Any:
    """A figure as JSON carries it: exact decimal strings, ISO dates."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def truth(held: Any) -> str:
    return "true" if held else "false"
