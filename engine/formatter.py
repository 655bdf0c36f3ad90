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
    """As an analyst writes it: 180,000 and 1,234.50 grouped, smaller numbers plain."""
    return format(value, ",f" if abs(value) >= 10000 else "f")


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
    if isinstance(node, ast.Allocate):
        text = f"allocate {f(node.pool, leaf, _SUM)}"
        text += f" by {f(node.driver, leaf, _CONDITIONAL)}" if node.driver is not None else " equally"
        if node.within:
            text += f" within {node.within}"
        if node.fallback_equal:
            text += " otherwise equally"
        return _CONDITIONAL, text
    if isinstance(node, ast.Referral):
        text = f"referred {f(node.value, leaf, _OR)} via {node.via}"
        if node.levels != 1:
            text += f" levels {node.levels}"
        if node.decay != 100:
            text += f" decay {number(node.decay)}%"
        if node.cap is not None:
            text += f" cap {f(node.cap, leaf, _OR)}"
        if node.anyway_flag is not None:
            text += f" anyway {node.anyway_flag} {f(node.anyway, leaf, _OR)}"
        if node.strict:
            text += " strict"
        return _CONDITIONAL, text
    raise TypeError(node)


# ---- whole policies --------------------------------------------------------------

_INDENT = "  "


def format_policy(policy: ast.Policy) -> str:
    """The whole policy as canonical text: one statement per line, sections separated
    by a blank line, names aligned. Comments are not part of the AST and are not kept.

    `parse(format_policy(p)) == p` for every policy the parser can produce.
    """
    # Runs of headers, and runs of definitions of one kind, share a block.
    groups: list = []
    for statement in policy.statements:
        kind = _group_kind(statement)
        if kind is not None and groups and groups[-1][0] == kind:
            groups[-1][1].append(statement)
        else:
            groups.append((kind, [statement]))
    blocks = [_format_group(kind, statements) for kind, statements in groups]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _group_kind(statement) -> Optional[str]:
    if isinstance(statement, (ast.Header, ast.Rounding)):
        return "header"
    if isinstance(statement, ast.Definition):
        return statement.kind
    if isinstance(statement, ast.Pool):
        return "pool"
    return None


def _format_group(kind: Optional[str], statements: list) -> str:
    if kind == "header":
        return "\n".join(_format_header(s) for s in statements)
    if kind == "pool":
        width = max(len(s.name) for s in statements)
        return "\n".join(f"pool {s.name.ljust(width)} = {format_expr(s.amount)} over {format_expr(s.volume)} {s.unit}"
                         for s in statements)
    if kind is not None:  # definitions
        if kind == "rate":
            raise ValueError("a rate is written inside a `rates` or `parameters` block")
        width = max(len(s.name) for s in statements)
        return "\n".join(f"{kind} {s.name.ljust(width)} = {format_expr(s.expr)}" for s in statements)
    (statement,) = statements
    if isinstance(statement, ast.Record):
        return _format_record(statement)
    if isinstance(statement, ast.Constants):
        width = max((len(item.name) for item in statement.items), default=0)
        lines = [statement.keyword]
        for item in statement.items:
            if item.kind != "rate":
                raise ValueError(f"a {item.kind} cannot stand in a `{statement.keyword}` block")
            lines.append(f"{_INDENT}{item.name.ljust(width)} = {format_expr(item.expr)}")
        return "\n".join(lines)
    if isinstance(statement, ast.Table):
        lines = [f"table {statement.name}"]
        width = max((len(group) for group, _ in statement.rows), default=0) + 2
        lines += [f'{_INDENT}{(chr(34) + group + chr(34)).ljust(width)} = {format_expr(amount)}'
                  for group, amount in statement.rows]
        return "\n".join(lines)
    if isinstance(statement, ast.Classification):
        return _format_classification(statement)
    raise TypeError(statement)


def _format_header(statement) -> str:
    if isinstance(statement, ast.Rounding):
        return f"rounding {statement.mode} to {statement.unit} {statement.scope}"
    if statement.key == "currency":
        return f"currency {statement.value}"
    return f'{statement.key} "{statement.value}"'


def _format_record(record: ast.Record) -> str:
    name_width = max((len(f.name) for f in record.fields), default=0)
    type_width = max((len(f.type) for f in record.fields), default=0)
    lines = [f"record {record.name}"]
    for field in record.fields:
        options = []
        if field.key:
            options.append("key")
        if field.optional:
            options.append("optional")
        if field.default is not None:
            options.append("default " + format_literal(field.default))
        if field.column is not None:
            options.append(f'column "{field.column}"')
        if field.description is not None:
            options.append(f'"{field.description}"')
        parts = [field.name.ljust(name_width), field.type.ljust(type_width) if options else field.type]
        lines.append((_INDENT + " ".join(parts + options)).rstrip())
    return "\n".join(lines)


def _format_classification(classification: ast.Classification) -> str:
    width = max((len(rule.label) for rule in classification.rules), default=0)
    lines = [f"classify {classification.name}"]
    for rule in classification.rules:
        head = f"{_INDENT}{rule.label.ljust(width)} "
        if rule.condition is None:
            lines.append(head + "otherwise")
        else:
            lines.append(head + "when " + format_expr(rule.condition))
        # `action` and `reason` at the start of a line continue the rule above.
        for word in ("action", "reason"):
            text = getattr(rule, word)
            if text is not None:
                lines.append(" " * len(head) + f'{word} "{text}"')
    return "\n".join(lines)
