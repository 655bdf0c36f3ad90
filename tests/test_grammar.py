"""The grammar itself: LALR without conflicts, precedence, and how lines continue."""
from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import lark
import pytest

from engine import ast
from engine import parser as parser_module
from engine.parser import lark_parser, parse

GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "policy.lark"


def _build_logging(grammar_text: str) -> list:
    """Build an LALR parser with lark's debug log captured; return the messages."""
    messages: list = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Capture(level=logging.DEBUG)
    old_level = lark.logger.level
    lark.logger.addHandler(handler)
    lark.logger.setLevel(logging.DEBUG)
    try:
        lark.Lark(grammar_text, parser="lalr", lexer="basic", debug=True)
    finally:
        lark.logger.removeHandler(handler)
        lark.logger.setLevel(old_level)
    return messages


def test_grammar_has_no_lalr_conflicts():
    messages = _build_logging(GRAMMAR.read_text(encoding="utf-8"))
    conflicts = [m for m in messages if "conflict" in m.lower() or "collision" in m.lower()]
    assert conflicts == []


def test_conflict_detection_would_notice_a_conflict():
    # The check above is only worth something if a conflict is reported where we listen.
    ambiguous = GRAMMAR.read_text(encoding="utf-8").replace(
        "?sum: product\n", "?sum: product\n    | sum sum -> juxtaposed\n")
    assert ambiguous != GRAMMAR.read_text(encoding="utf-8")
    try:
        messages = _build_logging(ambiguous)
    except lark.exceptions.GrammarError:
        return  # a reduce/reduce collision is refused outright, which is just as visible
    assert any("Shift/Reduce conflict" in m for m in messages)


def test_engine_parser_builds_once():
    parser = lark_parser()
    assert parser.options.parser == "lalr"
    assert lark_parser() is parser


# ---- precedence, seen through the AST ---------------------------------------------------

def expr(text: str):
    (definition,) = parse(f"measure x = {text}\n").statements
    return definition.expr


a, b, c, d, y, z = (ast.Name(n) for n in "abcdyz")


def num(value) -> ast.Number:
    return ast.Number(Decimal(value))


@pytest.mark.parametrize("text, tree", [
    ("a and b or c", ast.Logical("or", ast.Logical("and", a, b), c)),
    ("a or b and c", ast.Logical("or", a, ast.Logical("and", b, c))),
    ("not a and b", ast.Logical("and", ast.Not(a), b)),
    ("not a > b", ast.Not(ast.Compare(">", a, b))),
    ("a + b * c", ast.Binary("+", a, ast.Binary("*", b, c))),
    ("a * b + c", ast.Binary("+", ast.Binary("*", a, b), c)),
    ("a - b - c", ast.Binary("-", ast.Binary("-", a, b), c)),
    ("a / b / c", ast.Binary("/", ast.Binary("/", a, b), c)),
    ("(a + b) * c", ast.Binary("*", ast.Binary("+", a, b), c)),
    ("a + b > c * d", ast.Compare(">", ast.Binary("+", a, b), ast.Binary("*", c, d))),
    ("a > b and c < d", ast.Logical("and", ast.Compare(">", a, b), ast.Compare("<", c, d))),
    ("a = b or c != d", ast.Logical("or", ast.Compare("=", a, b), ast.Compare("!=", c, d))),
    ("x when c else y when d else z",
     ast.Conditional(ast.Name("x"), c, ast.Conditional(y, d, z))),
    ("a + b when c or d else z",
     ast.Conditional(ast.Binary("+", a, b), ast.Logical("or", c, d), z)),
    ("5% of revenue + 1",
     ast.Binary("+", ast.Binary("of", ast.Percent(Decimal(5)), ast.Name("revenue")), num(1))),
    ("a * 5% of b", ast.Binary("of", ast.Binary("*", a, ast.Percent(Decimal(5))), b)),
    ("-a * b", ast.Binary("*", ast.Negate(a), b)),
    ("-a - -b", ast.Binary("-", ast.Negate(a), ast.Negate(b))),
    ("--a", ast.Negate(ast.Negate(a))),
    ("a * -b", ast.Binary("*", a, ast.Negate(b))),
    ("-(a + b)", ast.Negate(ast.Binary("+", a, b))),
    ("a + b is between c and d", ast.Between(ast.Binary("+", a, b), c, d)),
    ("a is between b and c and d", ast.Logical("and", ast.Between(a, b, c), d)),
    ("a is missing or b", ast.Logical("or", ast.IsMissing(a), b)),
])
def test_precedence(text, tree):
    assert expr(text) == tree


# ---- line continuation ----------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "measure x = a\n  + b\n",                 # next line starts with an operator
    "measure x = a +\n  b\n",                 # line ends with an operator
    "measure x = a\n\n  + b\n",               # a blank line between does not matter
    "measure x = a  # the first part\n  + b  # the second\n",
    "measure x = (\n  a\n  +\n  b\n)\n",      # newlines inside parentheses
], ids=["leading-plus", "trailing-plus", "blank-line", "comments", "parentheses"])
def test_formula_over_several_lines(source):
    (definition,) = parse(source).statements
    assert definition.expr == ast.Binary("+", a, b)


def test_paren_call_over_lines_is_exact():
    (definition,) = parse("measure x = max(\n  a,\n  b\n)\n").statements
    assert definition.expr == ast.Call("max", (a, b))


def test_condition_continues_with_and_or():
    source = "classify k\n  good when a > 1\n    and b > 2\n    or c\n  bad otherwise\n"
    (classify,) = parse(source).statements
    assert classify.rules[0].condition == ast.Logical(
        "or", ast.Logical("and", ast.Compare(">", a, num(1)), ast.Compare(">", b, num(2))), c)
    assert classify.rules[1] == ast.Rule("bad", None)


def test_action_and_reason_continue_the_rule():
    source = ('classify k\n  good when a\n       action "Keep"\n       reason "Good"\n'
              '  bad otherwise\n    action "Drop"\n')
    (classify,) = parse(source).statements
    assert classify.rules == (ast.Rule("good", a, action="Keep", reason="Good"),
                              ast.Rule("bad", None, action="Drop"))


def test_when_else_continue_the_formula():
    (definition,) = parse("measure x = a\n  when c\n  else b\n").statements
    assert definition.expr == ast.Conditional(a, c, b)


def test_a_new_line_without_operator_is_a_new_statement():
    first, second = parse("measure x = a\nmeasure y = b\n").statements
    assert (first.name, second.name) == ("x", "y")


def test_lines_end_with_crlf():
    policy = parse("measure x = a\r\n  + b\r\nmeasure y = b\r\n")
    assert [s.expr for s in policy.statements] == [ast.Binary("+", a, b), b]


# ---- keywords stay out of the tree, and keep the names the parser module uses -----------------

# What a parse tree may still hold: the parts that carry meaning, and the operators the AST keeps.
MEANINGFUL = {"NAME", "NUMBER", "PERCENT", "CURRENCY", "STRING"}
KEPT_OPERATORS = {"binary": {"PLUS", "MINUS", "STAR", "SLASH"}, "compare": {"COMPARE", "EQ"}}

EVERYTHING = (
    'policy "P"\nversion "1"\ncurrency EUR\nrounding half-up to cents per line\nrounding floor to units at end\n'
    "rank by profit\n"
    'record customer\n  id text key "Customer number"\n  a money optional default -1 EUR column "A"\n'
    '  b yes/no default yes\n  c percent default 5%\n  d number default 2\n  e text default "x"\n  f yes/no default no\n'
    "rates\n  r = 2 EUR per call\n  s = 2% per month\n  t = 3 per order\nparameters\n  p = 1\n"
    "cost c = a * r - b / 2 + (a)\ncredit d = 5% of a\nmeasure m = -a when b = yes else max(a, 1)\n"
    "threshold t = a is between 1 and 2 or a is not between 3 and 4 and not a is missing or a is not missing\n"
    "measure n = a >= 1\n"
    "cost e = allocate 1 EUR by a within region otherwise equally\ncost f = allocate 1 EUR equally within region\n"
    "credit g = allocate p by a\n"
    "credit h = referred 5% of a via referred_by levels 2 decay 50% cap 1 EUR anyway came 0 EUR strict\n"
    'table pools\n  "north" = 1 EUR\npool centre = 1 EUR over 700 minutes\n'
    'classify k\n  break-even when a > 0 action "A" reason "R"\n  loss otherwise reason "R"\n'
)


def _tokens_with_parents(tree):
    for node in tree.iter_subtrees():
        for child in node.children:
            if isinstance(child, lark.Token):
                yield node.data, child


def test_keywords_and_punctuation_are_left_out_of_the_tree():
    tree = lark_parser().parse(EVERYTHING)
    seen = set()
    for parent, token in _tokens_with_parents(tree):
        seen.add(token.type)
        assert token.type in MEANINGFUL | KEPT_OPERATORS.get(parent, set()), (parent, token)
    # The example really does use every kind of meaningful token and operator.
    assert seen == MEANINGFUL | {t for kept in KEPT_OPERATORS.values() for t in kept}
    assert parse(EVERYTHING).statements  # and the builder reads it all


def test_no_anonymous_token_names():
    # A keyword written inline gets its text as its name ("policy" is POLICY); one whose
    # name is taken falls back to __ANON_n, which the postlexer and the messages cannot use.
    for terminal in lark_parser().terminals:
        assert not terminal.name.startswith("__ANON"), terminal
        if terminal.pattern.type == "str" and terminal.pattern.value.isalpha():
            expected = "CURRENCY_KW" if terminal.pattern.value == "currency" else terminal.pattern.value.upper()
            assert terminal.name == expected


def test_the_parser_module_names_only_tokens_of_the_grammar():
    # A renamed token would silently switch off line joining or a message, so check the names.
    names = {t.name for t in lark_parser().terminals} | {"$END"}
    used = (parser_module._CONTINUES_AFTER | parser_module._CONTINUES_BEFORE | parser_module._STATEMENT_STARTS
            | set(parser_module._TOKEN_WORDS))
    assert used - names == set()


def test_statement_starts_are_exactly_the_first_words_of_statements():
    starts = set(lark_parser().parse_interactive("").accepts()) - {"$END"}
    assert starts == parser_module._STATEMENT_STARTS
    words = {t.pattern.value for t in lark_parser().terminals if t.name in starts}
    assert words == set(parser_module._STATEMENT_WORDS)
