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
from typing import Iterator, List, Optional

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
    "POLICY VERSION CURRENCY_KW ROUNDING RECORD RATES PARAMETERS COST CREDIT MEASURE THRESHOLD CLASSIFY TABLE POOL".split()
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
    "policy version currency rounding record rates parameters cost credit measure threshold classify table pool"
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
    packaged = resources.files("engine").joinpath("grammar", "policy.lark")
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
    statements = tuple(builder.statement(child) for child in tree.children)
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


def _syntax_diagnostic(error: Exception, text: str, filename: str) -> Diagnostic:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
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


def _span_of(item) -> ast.Span:
    if isinstance(item, Token):
        return ast.Span(item.line, item.column, item.end_line, item.end_column)
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
        return getattr(self, "s_" + tree.data)(tree, _span_of(tree))

    def s_policy_name(self, tree, span):
        return ast.Header("policy", _string(tree.children[1]), span=span)

    def s_policy_version(self, tree, span):
        return ast.Header("version", _string(tree.children[1]), span=span)

    def s_policy_currency(self, tree, span):
        return ast.Header("currency", tree.children[1].value, span=span)

    def s_policy_rounding(self, tree, span):
        _, mode, _, unit, scope = tree.children
        return ast.Rounding(
            self.label(mode), self.label(unit), " ".join(t.value for t in scope.children), span=span)

    def s_record(self, tree, span):
        name, *fields = tree.children[1:]
        return ast.Record(name.value, tuple(self.field(f) for f in fields), span=span)

    def field(self, tree: Tree) -> ast.Field:
        name, type_tree, *options = tree.children
        values: dict = {}
        for option in options:
            kind = option.data
            if kind in values:
                self.error("duplicate-option", f"'{kind}' is given twice for field '{name.value}'",
                           _span_of(option), "keep one")
            if kind == "description":
                values[kind] = _string(option.children[0])
            elif kind in ("key", "optional"):
                values[kind] = True
            elif kind == "default":
                values[kind] = self.literal(option.children[1])
            elif kind == "column":
                values[kind] = _string(option.children[1])
        type_name = "".join(t.value for t in type_tree.children)
        return ast.Field(name.value, type_name, span=_span_of(tree), **values)

    def literal(self, tree: Tree):
        parts = tree.children
        span = _span_of(tree)
        first = parts[0]
        if isinstance(first, Tree):  # signed_number, maybe with a currency
            value = _number(first.children[-1])
            if len(first.children) == 2:
                value = -value
            if len(parts) == 2:
                return ast.Money(value, parts[1].value, span=span)
            return ast.Number(value, span=span)
        if first.type == "PERCENT":
            return ast.Percent(_number(first), span=span)
        if first.type == "STRING":
            return ast.Text(_string(first), span=span)
        return ast.YesNo(first.type == "YES", span=span)

    def s_constants(self, tree, span):
        keyword, *items = tree.children
        return ast.Constants(keyword.value, tuple(
            ast.Definition("rate", item.children[0].value, self.expr(item.children[2]), span=_span_of(item))
            for item in items), span=span)

    def s_definition(self, tree, span):
        kind, name, _, expr = tree.children
        return ast.Definition(kind.value, name.value, self.expr(expr), span=span)

    def s_allocation_definition(self, tree, span):
        kind, name, _, allocation = tree.children
        return ast.Definition(kind.value, name.value, self.allocation(allocation), span=span)

    def allocation(self, tree: Tree) -> ast.Allocate:
        tokens = [c for c in tree.children if isinstance(c, Token)]
        exprs = [c for c in tree.children if isinstance(c, Tree)]
        types = [t.type for t in tokens]
        within = tokens[types.index("WITHIN") + 1].value if "WITHIN" in types else None
        driver = self.expr(exprs[1]) if "BY" in types else None
        return ast.Allocate(self.expr(exprs[0]), driver, within, "EQUALLY" in types and driver is not None,
                            span=_span_of(tree))

    def s_referral_definition(self, tree, span):
        _, name, _, referral = tree.children
        _, value, _, via, *options = referral.children
        found: dict = {}
        for option in options:
            if option.data in found:
                self.error("duplicate-option", f"'{option.data}' is given twice", _span_of(option), "keep one")
            found[option.data] = option.children
        anyway = found.get("anyway")
        if "levels" in found and "." in found["levels"][1].value:
            self.error("referral-levels", "levels is a whole number of steps down the referral chain",
                       _span_of(found["levels"][1]), "write e.g. `levels 2`")
        return ast.Definition("credit", name.value, ast.Referral(
            self.expr(value), via.value,
            levels=int(_number(found["levels"][1])) if "levels" in found else 1,
            decay=_number(found["decay"][1]) if "decay" in found else Decimal(100),
            cap=self.expr(found["cap"][1]) if "cap" in found else None,
            anyway_flag=anyway[1].value if anyway else None,
            anyway=self.expr(anyway[2]) if anyway else None,
            strict="strict" in found,
            span=_span_of(referral)), span=span)

    def s_table(self, tree, span):
        _, name, *rows = tree.children
        return ast.Table(name.value, tuple((_string(r.children[0]), self.expr(r.children[2])) for r in rows), span=span)

    def s_pool(self, tree, span):
        _, name, _, amount, _, volume, unit = tree.children
        return ast.Pool(name.value, self.expr(amount), ast.Number(_number(volume), span=_span_of(volume)),
                        unit.value, span=span)

    def s_classify(self, tree, span):
        _, name, *rules = tree.children
        return ast.Classification(name.value, tuple(self.rule(r) for r in rules), span=span)

    def rule(self, tree: Tree) -> ast.Rule:
        label = self.label(tree.children[0])
        if tree.data == "when_rule":
            condition = self.expr(tree.children[2])
            texts = tree.children[3:]
        else:
            condition = None
            texts = tree.children[2:]
        values: dict = {}
        for text in texts:
            if text.data in values:
                self.error("duplicate-option", f"this rule has two '{text.data}' texts", _span_of(text),
                           "keep one; write a longer text instead")
            values[text.data] = _string(text.children[1])
        return ast.Rule(label, condition, span=_span_of(tree), **values)

    def label(self, tree: Tree) -> str:
        """A label may contain hyphens (`break-even`, `half-up`), written without spaces."""
        tokens = tree.children
        for before, after in zip(tokens, tokens[1:]):
            if before.end_pos != after.start_pos:
                self.error("label-space", "a hyphenated label is written without spaces",
                           _span_of(tree), f"write '{''.join(t.value for t in tokens)}'")
                break
        return "".join(t.value for t in tokens)

    # expressions

    def expr(self, item) -> ast.Expr:
        span = _span_of(item)
        if isinstance(item, Token):  # a lone NAME/NUMBER promoted through ?rules
            raise AssertionError(f"unexpected bare token {item.type}")
        return getattr(self, "e_" + item.data)(item.children, span)

    def e_number(self, c, span):
        return ast.Number(_number(c[0]), span=span)

    def e_percent(self, c, span):
        return ast.Percent(_number(c[0]), span=span)

    def e_money(self, c, span):
        return ast.Money(_number(c[0]), c[1].value, span=span)

    def e_money_rate(self, c, span):
        quantity = ast.Money(_number(c[0]), c[1].value, span=ast.Span.covering(_span_of(c[0]), _span_of(c[1])))
        return ast.Rate(quantity, c[3].value, span=span)

    def e_percent_rate(self, c, span):
        return ast.Rate(ast.Percent(_number(c[0]), span=_span_of(c[0])), c[2].value, span=span)

    def e_number_rate(self, c, span):
        return ast.Rate(ast.Number(_number(c[0]), span=_span_of(c[0])), c[2].value, span=span)

    def e_text(self, c, span):
        return ast.Text(_string(c[0]), span=span)

    def e_yes(self, c, span):
        return ast.YesNo(True, span=span)

    def e_no(self, c, span):
        return ast.YesNo(False, span=span)

    def e_name(self, c, span):
        return ast.Name(c[0].value, span=span)

    def e_call(self, c, span):
        args = tuple(self.expr(a) for a in c[2:-1] if not (isinstance(a, Token) and a.type == "COMMA"))
        return ast.Call(c[0].value, args, span=span)

    def e_group(self, c, span):
        return self.expr(c[1])

    def e_negate(self, c, span):
        return ast.Negate(self.expr(c[1]), span=span)

    def e_binary(self, c, span):
        return ast.Binary(c[1].value, self.expr(c[0]), self.expr(c[2]), span=span)

    def e_percent_of(self, c, span):
        return ast.Binary("of", self.expr(c[0]), self.expr(c[2]), span=span)

    def e_compare(self, c, span):
        return ast.Compare(c[1].value, self.expr(c[0]), self.expr(c[2]), span=span)

    def e_between(self, c, span):
        return ast.Between(self.expr(c[0]), self.expr(c[3]), self.expr(c[5]), False, span=span)

    def e_not_between(self, c, span):
        return ast.Between(self.expr(c[0]), self.expr(c[4]), self.expr(c[6]), True, span=span)

    def e_is_missing(self, c, span):
        return ast.IsMissing(self.expr(c[0]), False, span=span)

    def e_is_present(self, c, span):
        return ast.IsMissing(self.expr(c[0]), True, span=span)

    def e_and_(self, c, span):
        return ast.Logical("and", self.expr(c[0]), self.expr(c[2]), span=span)

    def e_or_(self, c, span):
        return ast.Logical("or", self.expr(c[0]), self.expr(c[2]), span=span)

    def e_not_(self, c, span):
        return ast.Not(self.expr(c[1]), span=span)

    def e_conditional(self, c, span):
        return ast.Conditional(self.expr(c[0]), self.expr(c[2]), self.expr(c[4]), span=span)
