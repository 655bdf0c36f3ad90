"""AST → policy text. Writes formulas back the way an analyst would (minimal parentheses).

`format_expr` takes an optional `leaf` callback, so the explanation can print the
same formula with each name replaced by the value it had.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable, Optional

from . import ast

# Binding strength, loosest first; mirrors the grammar's precedence ladder.
_CONDITIONAL, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(9)
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "of": _PRODUCT}

Leaf = Callable[[ast.Expr], Optional[str]]


def number(value: Decimal) -> str:
    return format(value, "f")


def format_literal(node) -> str:
    if isinstance(node, ast.Number):
        return number(node.value)
    if isinstance(node, ast.Percent):
        return number(node.value) + "%"
    if isinstance(node, ast.Money):
        return f"{number(node.amount)} {node.currency}"
    if isinstance(node, ast.Rate):
        return f"{format_literal(node.quantity)} per {node.per}"
    if isinstance(node, ast.Text):
        return f'"{node.value}"'
    if isinstance(node, ast.YesNo):
        return "yes" if node.value else "no"
    raise TypeError(node)


def format_expr(node, leaf: Optional[Leaf] = None) -> str:
    """The expression as policy text; `leaf` may replace a name or a sub-expression."""
    return _format(node, leaf, _CONDITIONAL)


def _format(node, leaf: Optional[Leaf], context: int) -> str:
    if leaf is not None:
        replaced = leaf(node)
        if replaced is not None:
            return replaced
    strength, text = _render(node, leaf)
    return f"({text})" if strength < context else text


def _render(node, leaf):
    f = _format
    if isinstance(node, ast.Name):
        return _ATOM, node.name
    if isinstance(node, (ast.Number, ast.Percent, ast.Money, ast.Rate, ast.Text, ast.YesNo)):
        negative = isinstance(node, (ast.Number, ast.Money)) and (getattr(node, "value", None) or getattr(node, "amount", 0)) < 0
        return (_UNARY if negative else _ATOM), format_literal(node)
    if isinstance(node, ast.Call):
        return _ATOM, f"{node.function}({', '.join(f(a, leaf, _CONDITIONAL) for a in node.args)})"
    if isinstance(node, ast.Negate):
        return _UNARY, "-" + f(node.operand, leaf, _UNARY)
    if isinstance(node, ast.Binary):
        strength = _BINARY[node.op]
        # Left-associative: the right side binds one step tighter.
        return strength, f"{f(node.left, leaf, strength)} {node.op} {f(node.right, leaf, strength + 1)}"
    if isinstance(node, ast.Compare):
        return _COMPARE, f"{f(node.left, leaf, _SUM)} {node.op} {f(node.right, leaf, _SUM)}"
    if isinstance(node, ast.Between):
        word = "is not between" if node.negated else "is between"
        return _COMPARE, (f"{f(node.value, leaf, _SUM)} {word} {f(node.low, leaf, _SUM)} "
                          f"and {f(node.high, leaf, _SUM)}")
    if isinstance(node, ast.IsMissing):
        return _COMPARE, f"{f(node.value, leaf, _SUM)} is {'not ' if node.negated else ''}missing"
    if isinstance(node, ast.Logical):
        strength = _OR if node.op == "or" else _AND
        return strength, f"{f(node.left, leaf, strength)} {node.op} {f(node.right, leaf, strength + 1)}"
    if isinstance(node, ast.Not):
        return _NOT, "not " + f(node.operand, leaf, _NOT)
    if isinstance(node, ast.Conditional):
        return _CONDITIONAL, (f"{f(node.then, leaf, _OR)} when {f(node.condition, leaf, _OR)} "
                              f"else {f(node.otherwise, leaf, _CONDITIONAL)}")
    raise TypeError(node)
