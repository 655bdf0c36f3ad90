"""Policy text → AST. The one module where Lark and its exceptions live.

Lark parses with LALR (linear time, also a safety property for untrusted text);
the AST is built in a separate pass so every node keeps its source position.
Syntax errors are translated into diagnostics in words an analyst knows, and
parsing resumes after a bad line so that every syntax error is reported at once.
"""
from __future__ import annotations

import threading
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, List, Optional

import lark
from lark import Token, Tree

from . import ast
from .diagnostics import Diagnostic, PolicyError

MAX_SOURCE_BYTES = 1_000_000
MAX_DEPTH = 100
MAX_SYNTAX_ERRORS = 25

# A line ending with one of these continues on the next line...
_CONTINUES_AFTER = frozenset(
    "PLUS MINUS STAR SLASH OF AND OR NOT WHEN ELSE EQ COMPARE COMMA LPAR IS BETWEEN PER ALLOCATE BY WITHIN OVER "
    "REFERRED VIA LEVELS DECAY CAP ANYWAY".split()
)
# ...and so does a line whose next line starts with one of these (no statement can).
_CONTINUES_BEFORE = frozenset(
    "PLUS MINUS STAR SLASH OF AND OR WHEN ELSE ACTION REASON EQ COMPARE RPAR BY WITHIN OVER OTHERWISE EQUALLY "
    "VIA LEVELS DECAY CAP ANYWAY STRICT".split()
)

# Tokens that only ever start a statement: an unclosed parenthesis ends before them.
_STATEMENT_STARTS = frozenset(
    "POLICY VERSION CURRENCY_KW ROUNDING RANK RECORD RATES PARAMETERS COST CREDIT MEASURE THRESHOLD CLASSIFY TABLE POOL"
    .split()
)

_TOKEN_WORDS = {
    "_NL": "the end of the line",
    "$END": "the end of the file",
    "NAME": "a name",
    "CURRENCY_KW": "'currency'",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "CURRENCY": "a currency code such as EUR",
    "STRING": 'text in double quotes',
    "COMPARE": "a comparison (>, >=, <, <=, !=)",
    "EQ": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
}
_STATEMENT_WORDS = (
    "policy version currency rounding rank record rates parameters cost credit measure threshold classify table pool"
).split()


class _LineJoiner:
    """Postlexer: drops line ends inside parentheses and before or after an operator,
    so a long formula can be written over several lines; collapses blank lines."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        open_parens: List[Token] = []
        previous: Optional[Token] = None
        pending: Optional[Token] = None
        soft: Optional[Token] = None  # a line end after an operator: joined unless a statement follows
        for token in stream:
            if token.type == "_NL":
                if not open_parens and previous is not None and previous.type not in _CONTINUES_AFTER:
                    pending = pending or token
                elif not open_parens and previous is not None:
                    soft = soft or token
                continue
            if soft is not None and token.type in _STATEMENT_STARTS and pending is None:
                pending = soft  # the formula above ends too early; say so there, not here
            soft = None
            if token.type in _STATEMENT_STARTS and open_parens:
                # An unclosed parenthesis: end the statement here, pointing at the '('.
                pending = Token.new_borrow_pos("_NL", "(", open_parens[0])
                open_parens.clear()
            if pending is not None:
                if token.type not in _CONTINUES_BEFORE:
                    yield pending
                pending = None
            if token.type == "LPAR":
                open_parens.append(token)
            elif token.type == "RPAR" and open_parens:
                open_parens.pop()
            previous = token
            yield token
        if open_parens:
            yield Token.new_borrow_pos("_NL", "(", open_parens[0])
        elif previous is not None:
            yield Token.new_borrow_pos("_NL", "\n", pending or previous)


_parser_lock = threading.Lock()
_parser: Optional[lark.Lark] = None


def _grammar_text() -> str:
    packaged = resources.files("engine") / "grammar" / "policy.lark"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    # Running from a checkout: the grammar lives at the top of the repository.
    return (Path(__file__).resolve().parent.parent / "grammar" / "policy.lark").read_text(encoding="utf-8")


def lark_parser() -> lark.Lark:
    """The shared LALR parser, built once on first use (thread-safe)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = lark.Lark(
                _grammar_text(),
                parser="lalr",
                lexer="basic",
                postlex=_LineJoiner(),
                propagate_positions=True,
                maybe_placeholders=False,
            )
        return _parser


def parse(source: str, filename: str = "<policy>") -> ast.Policy:
    """Parse policy text into an AST, or raise PolicyError with every syntax error."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise PolicyError([Diagnostic(
            "too-large", f"the policy is larger than {MAX_SOURCE_BYTES:,} bytes",
            ast.Span(1, 1, 1, 1), "split it, or move data out of the policy into the records",
            filename=filename)], source)
    parser = lark_parser()
    diagnostics: List[Diagnostic] = []
    text = source
    while True:
        try:
            tree = parser.parse(text)
            break
        except lark.exceptions.UnexpectedInput as error:
            diagnostic = _syntax_diagnostic(error, text, filename)
            diagnostics.append(diagnostic)
            line = diagnostic.span.line
            if isinstance(error, lark.exceptions.UnexpectedEOF) or len(diagnostics) >= MAX_SYNTAX_ERRORS:
                break
            text = _blank_statement(text, line, until_statement=diagnostic.code == "unclosed")
    if diagnostics:
        raise PolicyError(diagnostics, source)
    too_deep = _too_deep(tree, filename)
    if too_deep:
        raise PolicyError([too_deep], source)
    builder = _Builder(filename)
    statements = tuple(builder.statement(child) for child in tree.children if isinstance(child, Tree))
    if builder.diagnostics:
        raise PolicyError(builder.diagnostics, source)
    return ast.Policy(statements, filename=filename, source=source)


# ---- syntax errors ------------------------------------------------------------------


def _blank_statement(text: str, line: int, until_statement: bool = False) -> str:
    """Blank the bad line (and the lines it continues onto) so parsing can resume after it."""
    lines = text.split("\n")
    index = line - 1
    if index >= len(lines):
        return text
    lines[index] = " " * len(lines[index])
    # A statement continued on the following lines would now start mid-formula.
    while index + 1 < len(lines) and (
        _is_continuation(lines[index + 1])
        or until_statement and lines[index + 1].split()[:1] and lines[index + 1].split()[0] not in _STATEMENT_WORDS
    ):
        index += 1
        lines[index] = " " * len(lines[index])
    return "\n".join(lines)


_CONTINUATION_WORDS = frozenset(name.lower() for name in _CONTINUES_BEFORE) - {
    "plus", "minus", "star", "slash", "eq", "compare", "rpar"}


def _is_continuation(line: str) -> bool:
    """Text-level twin of the postlexer's rule, for blanking a bad statement's continued lines."""
    stripped = line.strip()
    return bool(stripped) and (stripped[0] in "+-*/=<>!)" or stripped.split()[0] in _CONTINUATION_WORDS)


def _words(expected) -> str:
    names = sorted(set(expected) - {"COMMENT"})
    words = [_TOKEN_WORDS.get(n, f"'{n.lower()}'") for n in names]
    if len(words) > 6:
        words = words[:6] + ["..."]
    return ", ".join(words)


def _describe(token: Token) -> str:
    if token.type == "_NL":
        return "the end of the line"
    if token.type == "$END":
        return "the end of the file"
    return f"'{token.value}'"


def _stopped_after(error: Exception, *types: str) -> Optional[List[Token]]:
    """The last tokens the parser had read when it stopped, if they are of these types in
    this order: where in a statement the error came (`RANK BY` is right after `rank by`)."""
    # Lark keeps the tokens read but not yet reduced on the parser state's value stack; if
    # a future Lark hides it, the message falls back to the general one.
    state = getattr(getattr(error, "interactive_parser", None), "parser_state", None)
    read = list(getattr(state, "value_stack", ()))[-len(types):]
    if len(read) == len(types) and all(isinstance(t, Token) and t.type == k for t, k in zip(read, types)):
        return read
    return None


def _syntax_diagnostic(error: Exception, text: str, filename: str) -> Diagnostic:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        position = error.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        span = ast.Span(error.line, error.column, error.line, error.column + 1)
        help_text = {
            "%": "write a percentage without a space, as in `5%`",
            "€": "write amounts with a currency code, as in `100 EUR`",
            "$": "write amounts with a currency code, as in `100 USD`",
            "'": 'put text in double quotes, as in "Keep and grow"',
            '"': "text must close its double quote on the same line",
            ":": "definitions use `=`, as in `cost service = support_hours * support_hour`",
        }.get(char, "remove it, or put it inside double quotes if it is text")
        return Diagnostic("syntax", f"unexpected character '{char}'", span, help_text, filename=filename)

    if isinstance(error, lark.exceptions.UnexpectedEOF):
        lines = text.rstrip().split("\n")
        span = ast.Span(len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        return Diagnostic("syntax", "the policy ends in the middle of a statement", span,
                          f"expected {_words(error.expected)}", filename=filename)

    assert isinstance(error, lark.exceptions.UnexpectedToken)
    token = error.token
    expected = set(getattr(error, "accepts", None) or error.expected)
    line, column = token.line or 1, token.column or 1
    width = max(len(token.value), 1) if token.type not in ("_NL", "$END") else 1
    span = ast.Span(line, column, line, column + width)
    message = f"unexpected {_describe(token)}"
    help_text = f"expected {_words(expected)}"

    if token.type == "_NL" and token.value == "(":
        return Diagnostic("unclosed", "this '(' is never closed", span, "add the missing ')'", filename=filename)
    if token.type == "$END":
        message = "the policy ends in the middle of a statement"
    elif token.type == "_NL":
        message = "this line ends too early"
    if token.type in ("ALLOCATE", "REFERRED") and "ALLOCATE" not in expected and "REFERRED" not in expected:
        message = f"`{token.value}` can only define a whole cost or credit"
        help_text = ("write it as its own line, e.g. `cost call_centre = allocate 180,000 EUR by support_calls`"
                     if token.type == "ALLOCATE" else
                     "write it as its own line, e.g. `credit word_of_mouth = referred 5% of revenue via referred_by`")
    elif (token.type in _CONTINUES_BEFORE and token.value.isidentifier()
          and not text.split("\n")[line - 1][: column - 1].strip()):
        message = f"'{token.value}' is a reserved word"
        help_text = (f"a line starting with '{token.value}' continues the line above; "
                     f"if this is a name, choose another, e.g. '{token.value}_'")
    elif token.type not in ("NAME", "CURRENCY") and token.value.isidentifier() and "NAME" in expected:
        message = f"'{token.value}' is a reserved word"
        help_text = "choose another name, e.g. " + f"'{token.value}_'"
    elif {"WHEN", "OTHERWISE"} <= expected and token.type != "MINUS":
        message = f"a rule needs `when` or `otherwise` after its label, not {_describe(token)}"
        help_text = 'write e.g. `profitable when profit > 0 EUR` or `unprofitable otherwise`'
    elif token.type in ("NAME", "NUMBER", "PERCENT", "STRING", "LPAR") and "STAR" in expected:
        message = f"unexpected {_describe(token)} after a complete value"
        help_text = "is an operator (+, -, *, /, of) missing before it?"
    elif expected == {"EQ"}:
        message = f"expected '=' here, not {_describe(token)}"
        help_text = "a definition reads `cost NAME = formula`"
    elif _stopped_after(error, "RANK"):
        message = f"expected 'by' here, not {_describe(token)}"
        help_text = "the figure that ranks customers is written `rank by profit`; 'rank' is a reserved word"
    elif _stopped_after(error, "RANK", "BY"):
        help_text = ("write the figure's name without quotes, as in `rank by profit`" if token.type == "STRING" else
                     "name the figure that ranks customers, as in `rank by profit`")
    elif (figure := _stopped_after(error, "RANK", "BY", "NAME")) and token.type not in ("_NL", "$END"):
        message = f"unexpected {_describe(token)} after `rank by {figure[-1].value}`"
        help_text = "customers are ranked by one figure; for a formula, define a measure and rank by that"
    elif token.type == "RPAR" and "RPAR" not in expected:
        message = "this ')' closes no '('"
        help_text = "remove it, or add the '(' it closes"
    elif token.type == "NAME" and token.value in _STATEMENT_WORDS:
        help_text = f"'{token.value}' starts a new statement on its own line"
    return Diagnostic("syntax", message, span, help_text, filename=filename)


def _too_deep(tree: Tree, filename: str) -> Optional[Diagnostic]:
    """Find nesting past MAX_DEPTH without recursion, before any recursive pass runs."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            return Diagnostic(
                "too-deep", f"this formula is too long or nested too deeply (over {MAX_DEPTH} levels)",
                ast.Span(meta.line, meta.column, meta.line, meta.column + 1),
                "split it into named measures", filename=filename)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


# ---- parse tree → AST --------------------------------------------------------------
# Keywords and punctuation never reach the tree (see grammar/policy.lark): a rule's
# children are the parts that carry meaning, in source order, and an alternative a
# keyword tells apart arrives under its own name (`cost`, `allocate_equally`...).


def _span_of(item) -> ast.Span:
    if isinstance(item, Token):
        return ast.Span(item.line or 0, item.column or 0, item.end_line or 0, item.end_column or 0)
    meta = item.meta
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _number(token: Token) -> Decimal:
    return Decimal(token.value.rstrip("%").replace(",", ""))


def _string(token: Token) -> str:
    return token.value[1:-1]


class _Builder:
    """Turns Lark's tree into AST nodes; nothing of Lark leaves this class."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.diagnostics: List[Diagnostic] = []

    def error(self, code: str, message: str, span: ast.Span, help_text: str) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, help_text, filename=self.filename))

    # statements

    def statement(self, tree: Tree):
        return getattr(self, "s_" + tree.data)(*tree.children, span=_span_of(tree))

    def s_policy_name(self, name, *, span):
        return ast.Header("policy", _string(name), span=span)

    def s_policy_version(self, version, *, span):
        return ast.Header("version", _string(version), span=span)

    def s_policy_currency(self, currency, *, span):
        return ast.Header("currency", currency.value, span=span)

    def s_policy_rank(self, figure, *, span):
        return ast.Header("rank", figure.value, span=span)

    def s_policy_rounding(self, mode, unit, scope, *, span):
        if scope.data == "rounding_per":
            (per,) = scope.children
            when = f"per {per.value}"
        else:
            when = " ".join(word.value for word in scope.children)
        return ast.Rounding(self.label(mode), self.label(unit), when, span=span)

    def s_record(self, name, *fields, span):
        return ast.Record(name.value, tuple(self.field(f) for f in fields), span=span)

    def field(self, tree: Any) -> ast.Field:
        name, type_tree, *options = tree.children
        values: dict = {}
        for option in options:
            kind = option.data
            if kind in values:
                self.error("duplicate-option", f"'{kind}' is given twice for field '{name.value}'",
                           _span_of(option), "keep one")
            if kind in ("key", "optional"):
                values[kind] = True
            elif kind == "default":
                (literal,) = option.children
                values[kind] = self.literal(literal)
            else:  # description, column
                (text,) = option.children
                values[kind] = _string(text)
        type_name = "yes/no" if type_tree.data == "yes_no_type" else type_tree.children[0].value
        return ast.Field(name.value, type_name, span=_span_of(tree), **values)

    def literal(self, tree: Any):
        span = _span_of(tree)
        kind = tree.data
        if kind == "number_literal":
            (number,) = tree.children
            return ast.Number(self.signed(number), span=span)
        if kind == "money_literal":
            amount, currency = tree.children
            return ast.Money(self.signed(amount), currency.value, span=span)
        if kind == "percent_literal":
            (percent,) = tree.children
            return ast.Percent(_number(percent), span=span)
        if kind == "text_literal":
            (text,) = tree.children
            return ast.Text(_string(text), span=span)
        return ast.YesNo(kind == "yes_literal", span=span)

    @staticmethod
    def signed(tree: Any) -> Decimal:
        (digits,) = tree.children
        value = _number(digits)
        return -value if tree.data == "negative_number" else value

    def s_rates(self, *items, span):
        return self.constants("rates", items, span)

    def s_parameters(self, *items, span):
        return self.constants("parameters", items, span)

    def constants(self, keyword: str, items, span: ast.Span) -> ast.Constants:
        definitions = []
        for item in items:
            name, value = item.children
            definitions.append(ast.Definition("rate", name.value, self.expr(value), span=_span_of(item)))
        return ast.Constants(keyword, tuple(definitions), span=span)

    # `cost`, `credit`, `measure` and `threshold`: a formula, an allocation or a referral.

    def definition(self, kind: str, name: Token, value: Tree, span: ast.Span) -> ast.Definition:
        return ast.Definition(kind, name.value, self.expr(value), span=span)

    def s_cost(self, name, value, *, span):
        return self.definition("cost", name, value, span)

    def s_credit(self, name, value, *, span):
        return self.definition("credit", name, value, span)

    def s_measure(self, name, value, *, span):
        return self.definition("measure", name, value, span)

    def s_threshold(self, name, value, *, span):
        return self.definition("threshold", name, value, span)

    def s_table(self, name, *rows, span):
        entries = []
        for row in rows:
            group, amount = row.children
            entries.append((_string(group), self.expr(amount)))
        return ast.Table(name.value, tuple(entries), span=span)

    def s_pool(self, name, amount, volume, unit, *, span):
        return ast.Pool(name.value, self.expr(amount), ast.Number(_number(volume), span=_span_of(volume)),
                        unit.value, span=span)

    def s_classify(self, name, *rules, span):
        return ast.Classification(name.value, tuple(self.rule(r) for r in rules), span=span)

    def rule(self, tree: Any) -> ast.Rule:
        if tree.data == "when_rule":
            label, condition, *texts = tree.children
        else:
            label, *texts = tree.children
            condition = None
        label_text = self.label(label)
        values: dict = {}
        for text in texts:
            if text.data in values:
                self.error("duplicate-option", f"this rule has two '{text.data}' texts", _span_of(text),
                           "keep one; write a longer text instead")
            (words,) = text.children
            values[text.data] = _string(words)
        return ast.Rule(label_text, self.expr(condition) if condition is not None else None,
                        span=_span_of(tree), **values)

    def label(self, tree: Any) -> str:
        """A label may contain hyphens (`break-even`, `half-up`), written without spaces."""
        words = tree.children  # the names; the hyphens between them are not in the tree
        text = "-".join(word.value for word in words)
        # Written tight, each name ends right before the hyphen that the next one follows.
        if any(after.start_pos != before.end_pos + 1 for before, after in zip(words, words[1:])):
            self.error("label-space", "a hyphenated label is written without spaces",
                       _span_of(tree), f"write '{text}'")
        return text

    # expressions

    def expr(self, item) -> ast.Expr:
        if isinstance(item, Token):  # a lone NAME/NUMBER promoted through ?rules
            raise AssertionError(f"unexpected bare token {item.type}")
        return getattr(self, "e_" + item.data)(*item.children, span=_span_of(item))

    def e_number(self, number, *, span):
        return ast.Number(_number(number), span=span)

    def e_percent(self, percent, *, span):
        return ast.Percent(_number(percent), span=span)

    def e_money(self, amount, currency, *, span):
        return ast.Money(_number(amount), currency.value, span=span)

    def e_money_rate(self, amount, currency, unit, *, span):
        quantity = ast.Money(_number(amount), currency.value, span=ast.Span.covering(_span_of(amount), _span_of(currency)))
        return ast.Rate(quantity, unit.value, span=span)

    def e_percent_rate(self, percent, unit, *, span):
        return ast.Rate(ast.Percent(_number(percent), span=_span_of(percent)), unit.value, span=span)

    def e_number_rate(self, number, unit, *, span):
        return ast.Rate(ast.Number(_number(number), span=_span_of(number)), unit.value, span=span)

    def e_text(self, text, *, span):
        return ast.Text(_string(text), span=span)

    def e_yes(self, *, span):
        return ast.YesNo(True, span=span)

    def e_no(self, *, span):
        return ast.YesNo(False, span=span)

    def e_name(self, name, *, span):
        return ast.Name(name.value, span=span)

    def e_call(self, function, *args, span):
        return ast.Call(function.value, tuple(self.expr(a) for a in args), span=span)

    def e_group(self, inner, *, span):
        return self.expr(inner)  # the span is the inside's: parentheses are not part of a value

    def e_negate(self, operand, *, span):
        return ast.Negate(self.expr(operand), span=span)

    def e_binary(self, left, op, right, *, span):
        return ast.Binary(op.value, self.expr(left), self.expr(right), span=span)

    def e_percent_of(self, share, whole, *, span):
        return ast.Binary("of", self.expr(share), self.expr(whole), span=span)

    def e_compare(self, left, op, right, *, span):
        return ast.Compare(op.value, self.expr(left), self.expr(right), span=span)

    def e_between(self, value, low, high, *, span):
        return ast.Between(self.expr(value), self.expr(low), self.expr(high), False, span=span)

    def e_not_between(self, value, low, high, *, span):
        return ast.Between(self.expr(value), self.expr(low), self.expr(high), True, span=span)

    def e_is_missing(self, value, *, span):
        return ast.IsMissing(self.expr(value), False, span=span)

    def e_is_present(self, value, *, span):
        return ast.IsMissing(self.expr(value), True, span=span)

    def e_and_(self, left, right, *, span):
        return ast.Logical("and", self.expr(left), self.expr(right), span=span)

    def e_or_(self, left, right, *, span):
        return ast.Logical("or", self.expr(left), self.expr(right), span=span)

    def e_not_(self, operand, *, span):
        return ast.Not(self.expr(operand), span=span)

    def e_conditional(self, then, condition, otherwise, *, span):
        return ast.Conditional(self.expr(then), self.expr(condition), self.expr(otherwise), span=span)

    # the two expressions that stand only as a whole cost or credit

    def e_allocate_by(self, pool, driver, *within, span):
        return self.allocate(pool, driver, within, fallback_equal=False, span=span)

    def e_allocate_by_or_equally(self, pool, driver, *within, span):
        return self.allocate(pool, driver, within, fallback_equal=True, span=span)

    def e_allocate_equally(self, pool, *within, span):
        return self.allocate(pool, None, within, fallback_equal=False, span=span)

    def allocate(self, pool: Tree, driver: Optional[Tree], within: tuple, fallback_equal: bool,
                 span: ast.Span) -> ast.Allocate:
        (group,) = within or (None,)
        return ast.Allocate(self.expr(pool), self.expr(driver) if driver is not None else None,
                            group.value if group is not None else None, fallback_equal, span=span)

    def e_referral(self, value, via, *options, span):
        found: dict = {}
        for option in options:
            if option.data in found:
                self.error("duplicate-option", f"'{option.data}' is given twice", _span_of(option), "keep one")
            found[option.data] = option.children
        levels = decay = cap = anyway = None
        if "levels" in found:
            (levels,) = found["levels"]
            if "." in levels.value:
                self.error("referral-levels", "levels is a whole number of steps down the referral chain",
                           _span_of(levels), "write e.g. `levels 2`")
        if "decay" in found:
            (decay,) = found["decay"]
        if "cap" in found:
            (cap,) = found["cap"]
        if "anyway" in found:
            anyway = found["anyway"]  # the flag, and what such a customer brings instead
        return ast.Referral(
            self.expr(value), via.value,
            levels=int(_number(levels)) if levels is not None else 1,
            decay=_number(decay) if decay is not None else Decimal(100),
            cap=self.expr(cap) if cap is not None else None,
            anyway_flag=anyway[0].value if anyway else None,
            anyway=self.expr(anyway[1]) if anyway else None,
            strict="strict" in found,
            span=span)
