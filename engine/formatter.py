"""AST → policy text. Writes formulas back the way an analyst would (minimal parentheses).

`format_expr` takes an optional `leaf` callback, so the explanation can print the
same formula with each name replaced by the value it had.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable, Optional, Tuple

from . import ast

# Binding strength, loosest first; mirrors the grammar's precedence ladder.
_CONDITIONAL, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(9)
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "of": _PRODUCT}

Leaf = Callable[[ast.Expr], Optional[str]]


def number(value: Decimal) -> str:
    """As an analyst writes it: 180,000 and 1,234.50 grouped, smaller numbers plain."""
    return format(value, ",f" if abs(value) >= 10000 else "f")


class _LiteralText(ast.Visitor[str]):
    """A literal as it is written: `180,000`, `5%`, `38.00 EUR per hour`, `"text"`, `yes`."""

    def visit_Number(self, node: ast.Number) -> str:
        return number(node.value)

    def visit_Percent(self, node: ast.Percent) -> str:
        return number(node.value) + "%"

    def visit_Money(self, node: ast.Money) -> str:
        return f"{number(node.amount)} {node.currency}"

    def visit_Rate(self, node: ast.Rate) -> str:
        return f"{self.visit(node.quantity)} per {node.per}"

    def visit_Text(self, node: ast.Text) -> str:
        return f'"{node.value}"'

    def visit_YesNo(self, node: ast.YesNo) -> str:
        return "yes" if node.value else "no"

    def generic_visit(self, node, *args) -> str:
        raise TypeError(node)


_LITERAL = _LiteralText()


def format_literal(node) -> str:
    return _LITERAL.visit(node)


def format_expr(node, leaf: Optional[Leaf] = None) -> str:
    """The expression as policy text; `leaf` may replace a name or a sub-expression."""
    return (_PLAIN if leaf is None else _Writer(leaf)).write(node, _CONDITIONAL)


class _Writer(ast.Visitor[Tuple[int, str]]):
    """Each `visit_<Node>` gives how tightly the node's text binds (the grammar's
    precedence ladder) and the text; `write` puts it in parentheses where it stands in
    a place that needs a tighter binding (`context`)."""

    def __init__(self, leaf: Optional[Leaf] = None) -> None:
        self.leaf = leaf

    def write(self, node, context: int) -> str:
        if self.leaf is not None:
            replaced = self.leaf(node)
            if replaced is not None:
                return replaced
        strength, text = self.visit(node)
        return f"({text})" if strength < context else text

    def generic_visit(self, node, *args) -> Tuple[int, str]:
        raise TypeError(node)

    def visit_Name(self, node: ast.Name) -> Tuple[int, str]:
        return _ATOM, node.name

    # A negative number or amount is written with its sign, which binds like a unary minus.

    def visit_Number(self, node: ast.Number) -> Tuple[int, str]:
        return (_UNARY if node.value < 0 else _ATOM), format_literal(node)

    def visit_Money(self, node: ast.Money) -> Tuple[int, str]:
        return (_UNARY if node.amount < 0 else _ATOM), format_literal(node)

    def _literal(self, node) -> Tuple[int, str]:
        return _ATOM, format_literal(node)

    visit_Percent = visit_Rate = visit_Text = visit_YesNo = _literal

    def visit_Call(self, node: ast.Call) -> Tuple[int, str]:
        return _ATOM, f"{node.function}({', '.join(self.write(a, _CONDITIONAL) for a in node.args)})"

    def visit_Negate(self, node: ast.Negate) -> Tuple[int, str]:
        return _UNARY, "-" + self.write(node.operand, _UNARY)

    def visit_Binary(self, node: ast.Binary) -> Tuple[int, str]:
        strength = _BINARY[node.op]
        # Left-associative: the right side binds one step tighter.
        return strength, f"{self.write(node.left, strength)} {node.op} {self.write(node.right, strength + 1)}"

    def visit_Compare(self, node: ast.Compare) -> Tuple[int, str]:
        return _COMPARE, f"{self.write(node.left, _SUM)} {node.op} {self.write(node.right, _SUM)}"

    def visit_Between(self, node: ast.Between) -> Tuple[int, str]:
        word = "is not between" if node.negated else "is between"
        return _COMPARE, (f"{self.write(node.value, _SUM)} {word} {self.write(node.low, _SUM)} "
                          f"and {self.write(node.high, _SUM)}")

    def visit_IsMissing(self, node: ast.IsMissing) -> Tuple[int, str]:
        return _COMPARE, f"{self.write(node.value, _SUM)} is {'not ' if node.negated else ''}missing"

    def visit_Logical(self, node: ast.Logical) -> Tuple[int, str]:
        strength = _OR if node.op == "or" else _AND
        return strength, f"{self.write(node.left, strength)} {node.op} {self.write(node.right, strength + 1)}"

    def visit_Not(self, node: ast.Not) -> Tuple[int, str]:
        return _NOT, "not " + self.write(node.operand, _NOT)

    def visit_Conditional(self, node: ast.Conditional) -> Tuple[int, str]:
        return _CONDITIONAL, (f"{self.write(node.then, _OR)} when {self.write(node.condition, _OR)} "
                              f"else {self.write(node.otherwise, _CONDITIONAL)}")

    def visit_Allocate(self, node: ast.Allocate) -> Tuple[int, str]:
        text = f"allocate {self.write(node.pool, _SUM)}"
        text += f" by {self.write(node.driver, _CONDITIONAL)}" if node.driver is not None else " equally"
        if node.within:
            text += f" within {node.within}"
        if node.fallback_equal:
            text += " otherwise equally"
        return _CONDITIONAL, text

    def visit_Referral(self, node: ast.Referral) -> Tuple[int, str]:
        text = f"referred {self.write(node.value, _OR)} via {node.via}"
        if node.levels != 1:
            text += f" levels {node.levels}"
        if node.decay != 100:
            text += f" decay {number(node.decay)}%"
        if node.cap is not None:
            text += f" cap {self.write(node.cap, _OR)}"
        if node.anyway_flag is not None:
            text += f" anyway {node.anyway_flag} {self.write(node.anyway, _OR)}"
        if node.strict:
            text += " strict"
        return _CONDITIONAL, text


_PLAIN = _Writer()  # no leaf: shared, as a visitor keeps only the methods it has looked up


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
    if isinstance(statement, ast.WarningRule):
        return "warn"
    return None


def _format_group(kind: Optional[str], statements: list) -> str:
    if kind == "header":
        return "\n".join(_format_header(s) for s in statements)
    if kind == "pool":
        width = max(len(s.name) for s in statements)
        return "\n".join(f"pool {s.name.ljust(width)} = {format_expr(s.amount)} over {format_expr(s.volume)} {s.unit}"
                         for s in statements)
    if kind == "warn":
        width = max(len(s.name) for s in statements)
        lines = []
        for rule in statements:  # `message` at the start of a line continues the warning above
            lines.append(f"warn {rule.name.ljust(width)} when {format_expr(rule.condition)}")
            if rule.message is not None:
                lines.append(" " * (width + 6) + f'message "{rule.message}"')
        return "\n".join(lines)
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
    if isinstance(statement, ast.History):
        return "\n".join(["history"] + [_INDENT + " ".join(option.words) for option in statement.options])
    raise TypeError(statement)


def _format_header(statement) -> str:
    if isinstance(statement, ast.Rounding):
        return f"rounding {statement.mode} to {statement.unit} {statement.scope}"
    if statement.key == "currency":
        return f"currency {statement.value}"
    if statement.key == "rank":
        return f"rank by {statement.value}"
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
