"""Exact decimal arithmetic settings and how figures are written for people and machines."""
from __future__ import annotations

import decimal
from decimal import Decimal

# Every evaluation runs in this context (per thread, via decimal.localcontext):
# 28 significant digits, and any invalid operation or division by zero raises
# instead of quietly producing NaN or Infinity.
CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

HUNDRED = Decimal(100)


def plain(value: Decimal) -> str:
    """The exact value as a decimal string without exponent: "1234.50", "0.0525"."""
    text = format(value, "f")
    if text.startswith("-") and not text.strip("-0."):
        return text[1:]  # no "-0.00"
    return text


def grouped(value: Decimal, places: int = 2) -> str:
    """Thousands-grouped with at least `places` decimals: 12,400.00; more if the value is finer."""
    exponent = value.normalize().as_tuple().exponent
    shown = max(places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    shown = min(shown, 6)
    text = f"{value:,.{shown}f}"
    return text[1:] if text.startswith("-") and set(text[1:]) <= set("0.,") else text


def quantity(value: Decimal) -> str:
    """A count or other quantity, grouped, without trailing zeros: 1,250 or 3.5."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{value:,.{min(places, 6)}f}"


def percent(value: Decimal) -> str:
    """A fraction as a percentage: 0.05 → 5%."""
    return quantity(value * HUNDRED) + "%"
