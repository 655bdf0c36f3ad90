"""Policy text → AST. The one module where Lark and its exceptions live.

Lark reads grammar/policy.lark and builds its LALR tables (linear time, also a safety
property for untrusted text). The tables are run here by a loop of our own
(`_Runtime`), not by Lark's parser: Lark's loop builds a tree with positions through
several layers of wrappers per reduction, which made a valid 1 MB policy take seconds,
and it cannot resume after an error. The loop lexes with Lark's own terminals, joins
lines (`_LineJoiner`, the same rules Lark's postlexer applies for `lark_parser()`), and
builds the same tree Lark builds (`_Node`, with the positions Lark's
`propagate_positions` gives), which tests/test_hostile.py checks against Lark itself.

Syntax errors are translated into diagnostics in words an analyst knows, and parsing
resumes after a bad line so that every syntax error is reported at once. Resuming does
not re-read the file: the parser's state (a persistent stack) is kept at the start of
every line, and after an error it goes on from the last line before the bad one, with
the bad lines blanked, exactly as if the blanked text had been parsed from its start.
"""
from __future__ import annotations

import codecs
import contextlib
import gc
import os
import re
import threading
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple

import lark
from lark import Token

from . import ast
from .diagnostics import Diagnostic, PolicyError, snippet

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
    "PLUS MINUS STAR SLASH OF AND OR WHEN ELSE ACTION REASON MESSAGE EQ COMPARE RPAR BY WITHIN OVER OTHERWISE "
    "EQUALLY VIA LEVELS DECAY CAP ANYWAY STRICT".split()
)

# Tokens that only ever start a statement: an unclosed parenthesis ends before them.
_STATEMENT_STARTS = frozenset(
    "POLICY VERSION CURRENCY_KW ROUNDING RANK RECORD RATES PARAMETERS COST CREDIT MEASURE THRESHOLD CLASSIFY TABLE POOL "
    "HISTORY WARN".split()
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
    "policy version currency rounding rank record rates parameters cost credit measure threshold classify table pool "
    "history warn"
).split()


class _LineJoiner:
    """Postlexer: drops line ends inside parentheses and before or after an operator,
    so a long formula can be written over several lines; collapses blank lines.

    This is the postlexer of `lark_parser()`; `_Runtime.drive` applies the same rules
    inline (tests/test_hostile.py checks that both give the same tree)."""

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
_runtime: Optional["_Runtime"] = None


def _grammar_text() -> str:
    packaged = resources.files("engine") / "grammar" / "policy.lark"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    # Running from a checkout: the grammar lives at the top of the repository.
    return (Path(__file__).resolve().parent.parent / "grammar" / "policy.lark").read_text(encoding="utf-8")


def lark_parser() -> lark.Lark:
    """The shared LALR parser, built once on first use (thread-safe). `parse` runs its
    tables with `_Runtime`; `lark_parser().parse(text)` gives the same tree, as Lark's."""
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


def _the_runtime() -> "_Runtime":
    global _runtime
    parser = lark_parser()
    with _parser_lock:
        if _runtime is None:
            _runtime = _Runtime(parser)
        return _runtime


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a while. Reading a large policy makes a million small
    objects and no garbage; the collector would walk them all again and again (3/4 of the
    time of a 1 MB policy). No cycle is made meanwhile that would wait long for it. Left off
    if it was off; if other threads pause it too, it is on again once the first to pause
    it is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(source: str, filename: str = "<policy>") -> ast.Policy:
    """Parse policy text into an AST, or raise PolicyError with every syntax error."""
    with collector_paused():
        return _parse(source, filename)


def _parse(source: str, filename: str) -> ast.Policy:
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise PolicyError([Diagnostic(
            "too-large", f"the policy is larger than {MAX_SOURCE_BYTES:,} bytes",
            ast.Span(1, 1, 1, 1), "split it, or move data out of the policy into the records",
            filename=filename)], source)
    if source.startswith("\ufeff"):
        source = source[1:]  # a byte order mark, as an editor may write it: read as a file is read
    runtime = _the_runtime()
    diagnostics: List[Diagnostic] = []
    text = source
    lines = _Lines(text)
    snapshots = [runtime.start()]
    while True:
        try:
            tree = runtime.drive(text, snapshots)
            break
        except _Stopped as error:
            diagnostic = _syntax_diagnostic(error, lines, text, filename)
            diagnostics.append(diagnostic)
            if len(diagnostics) >= MAX_SYNTAX_ERRORS:
                break
            line = diagnostic.span.line
            text = _blank_statement(text, lines, line, until_statement=diagnostic.code == "unclosed")
            # Go on from the last line before the blanked ones: everything before them reads
            # as it did, so this is the same as parsing the blanked text from its start.
            while snapshots[-1].line >= line:
                snapshots.pop()
    if diagnostics:
        raise PolicyError(diagnostics, source)
    too_deep = _too_deep(tree, filename)
    if too_deep:
        raise PolicyError([too_deep], source)
    builder = _Builder(filename)
    statements = tuple(builder.statement(child) for child in tree.children if isinstance(child, _Node))
    if builder.diagnostics:
        raise PolicyError(builder.diagnostics, source)
    return ast.Policy(statements, filename=filename, source=source, nodes=builder.nodes)


def read_policy(path: "os.PathLike[str] | str", filename: str) -> str:
    """The text of a policy file: UTF-8, with or without a byte order mark. A file over the
    size limit is refused before it is read whole, and one that is not UTF-8 with the line
    and byte where decoding failed, both as a PolicyError (OSError if it cannot be read)."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_SOURCE_BYTES + len(codecs.BOM_UTF8) + 1)
    if data.startswith(codecs.BOM_UTF8):
        data, skipped = data[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
    else:
        skipped = 0
    if len(data) > MAX_SOURCE_BYTES:
        raise PolicyError([Diagnostic(
            "too-large", f"the policy is larger than {MAX_SOURCE_BYTES:,} bytes",
            ast.Span(1, 1, 1, 1), "split it, or move data out of the policy into the records",
            filename=filename)], data.decode("utf-8", "replace"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error, skipped, filename) from None


def _not_utf8(data: bytes, error: UnicodeDecodeError, skipped: int, filename: str) -> PolicyError:
    before = data[:error.start]
    line = before.count(b"\n") + 1
    line_start = before.rfind(b"\n") + 1
    column = len(data[line_start:error.start].decode("utf-8", "replace")) + 1
    bad = data[error.start:error.end]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        guess = "it is UTF-16 text: save it as UTF-8"
    else:
        try:
            data.decode("cp1252")
            guess = "it looks like Latin-1 or Windows-1252 text: save it as UTF-8"
        except UnicodeDecodeError:
            guess = "save it as UTF-8"
    message = (f"the policy is not UTF-8 text: byte {', '.join(f'0x{b:02x}' for b in bad)} at line {line}, "
               f"column {column} (byte {skipped + error.start:,} of the file) cannot be read")
    source = data.decode("utf-8", "replace")  # shown with U+FFFD where the byte was
    return PolicyError([Diagnostic("syntax", message, ast.Span(line, column, line, column + 1),
                                   guess + " (in most editors: Save as, then Encoding: UTF-8)",
                                   filename=filename)], source)


# ---- the parser's own loop over Lark's tables ----------------------------------------


class _Token:
    """A token: what Lark's Token holds, without being a string. Its end is worked out from
    its text: a token that ends on another line (or borrows another's place) is a _Placed."""

    __slots__ = ("type", "value", "start_pos", "line", "column")

    def __init__(self, type_: str, value: str, start_pos: int, line: int, column: int) -> None:
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column

    @property
    def end_line(self) -> int:
        return self.line

    @property
    def end_column(self) -> int:
        return self.column + len(self.value)

    @property
    def end_pos(self) -> int:
        return self.start_pos + len(self.value)

    def borrow(self, type_: str, value: str) -> "_Token":
        """A token of another type at this one's place (Lark's `Token.new_borrow_pos`)."""
        return _Placed(type_, value, self.start_pos, self.line, self.column, self.end_line, self.end_column,
                       self.end_pos)

    def __repr__(self) -> str:
        return f"_Token({self.type!r}, {snippet(self.value)!r}, {self.line}:{self.column})"


class _Placed(_Token):
    """A token whose end is given: a line end (it ends on the next line), or a borrowed place."""

    __slots__ = ("end_line", "end_column", "end_pos")

    def __init__(self, type_: str, value: str, start_pos: int, line: int, column: int,
                 end_line: int, end_column: int, end_pos: int) -> None:
        super().__init__(type_, value, start_pos, line, column)
        self.end_line = end_line  # type: ignore[misc]
        self.end_column = end_column  # type: ignore[misc]
        self.end_pos = end_pos  # type: ignore[misc]


class _Node:
    """A node of the parse tree: Lark's `Tree(data, children)`, with its first and last
    token in the text (keywords included) for what Lark's meta would say."""

    __slots__ = ("data", "children", "first", "last")

    def __init__(self, data: str, children: list, first: Optional[_Token], last: Optional[_Token]) -> None:
        self.data = data
        self.children = children
        self.first = first
        self.last = last

    def __repr__(self) -> str:
        return f"_Node({self.data!r}, {len(self.children)} children)"


class _Splice:
    """A rule Lark inlines into its parent (`_rule`, and the `__x_star` of `x*`): a
    persistent list, so a kept parser state never sees it grow."""

    __slots__ = ("prev", "items", "first", "last")

    def __init__(self, prev: Optional["_Splice"], items: tuple, first: Optional[_Token],
                 last: Optional[_Token]) -> None:
        self.prev = prev
        self.items = items
        self.first = first
        self.last = last

    def flat(self) -> list:
        chunks = []
        node: Optional[_Splice] = self
        while node is not None:
            chunks.append(node.items)
            node = node.prev
        out: list = []
        for chunk in reversed(chunks):
            out.extend(chunk)
        return out


class _Snapshot:
    """Everything the loop knows at the start of a line (before its first token)."""

    __slots__ = ("line", "pos", "line_start", "stack", "depth", "first_paren", "previous", "pending", "soft",
                 "last_out")

    def __init__(self, line, pos, line_start, stack, depth, first_paren, previous, pending, soft, last_out):
        self.line = line
        self.pos = pos
        self.line_start = line_start
        self.stack = stack
        self.depth = depth
        self.first_paren = first_paren
        self.previous = previous
        self.pending = pending
        self.soft = soft
        self.last_out = last_out


class _Stopped(Exception):
    """Parsing stopped at an unexpected token (`token`) or character (`char_pos`)."""

    def __init__(self, token: Optional[_Token] = None, stack: Optional[tuple] = None,
                 expected: FrozenSet[str] = frozenset(), accepts: Optional[Callable[[], FrozenSet[str]]] = None,
                 char_pos: int = 0, line: int = 0, column: int = 0) -> None:
        super().__init__()
        self.token = token
        self.stack = stack
        self.expected = expected
        self._accepts = accepts
        self.char_pos = char_pos
        self.line = line
        self.column = column

    @property
    def accepts(self) -> FrozenSet[str]:
        """The tokens that would have let the parser go on (Lark's `UnexpectedToken.accepts`)."""
        return self._accepts() if self._accepts is not None else frozenset()

    def read(self, count: int) -> list:
        """The last `count` values the parser had read and not yet reduced, oldest first."""
        values: list = []
        cell = self.stack
        while cell is not None and cell[2] is not None and len(values) < count:
            values.append(cell[1])
            cell = cell[2]
        return values[::-1]


def _first_of(children: list) -> Optional[_Token]:
    for child in children:
        first = child.first if child.__class__ is _Node or child.__class__ is _Splice else child
        if first is not None:
            return first
    return None


def _last_of(children: list) -> Optional[_Token]:
    for child in reversed(children):
        last = child.last if child.__class__ is _Node or child.__class__ is _Splice else child
        if last is not None:
            return last
    return None


def _builder(name: str, size: int, keep: List[Tuple[int, bool]], expand1: bool, splice: bool,
             ends: List[str]) -> Callable[[list], Any]:
    """What a reduction by one rule builds from the values it pops (`c`): a `_Node` named
    `name` with the children Lark would keep, the parts of inlined rules spliced in, and its
    first and last token; or a `_Splice`, or (`?rule`) its only child. Written out as code
    once per rule (as attrs writes its __init__), because it runs for nearly every token."""
    def end(index: int, attribute: str, fallback: str) -> str:
        return {"token": f"c[{index}]", "node": f"c[{index}].{attribute}", "any": f"{fallback}(c)"}[ends[index]]

    first = end(0, "first", "_first_of") if size else "None"
    last = end(size - 1, "last", "_last_of") if size else "None"
    lines = []
    left_splice = splice and bool(keep) and keep[0] == (0, True)
    parts = keep[1:] if left_splice else keep
    if not any(flag for _, flag in parts):
        kept = "c" if [i for i, _ in parts] == list(range(size)) else "[" + ", ".join(f"c[{i}]" for i, _ in parts) + "]"
    else:
        lines.append("kept = []")
        for i, flag in parts:
            lines.append(f"kept.extend(c[{i}].flat())" if flag else f"kept.append(c[{i}])")
        kept = "kept"
    if left_splice:
        lines.append(f"return _Splice(c[0], tuple({kept}), {first}, {last})")
    elif splice:
        lines.append(f"return _Splice(None, tuple({kept}), {first}, {last})")
    elif expand1:
        lines += [f"kept = {kept}", "if len(kept) == 1:", "    return kept[0]",
                  f"return _Node({name!r}, kept, {first}, {last})"]
    else:
        lines.append(f"return _Node({name!r}, {kept}, {first}, {last})")
    source = "def build(c):\n" + "".join(f"    {line}\n" for line in lines)
    namespace: Dict[str, Any] = {"_Node": _Node, "_Splice": _Splice, "_first_of": _first_of, "_last_of": _last_of}
    exec(compile(source, f"<reduction to {name}>", "exec"), namespace)
    return namespace["build"]


_REDUCE = 1
_UNIT = 2  # `?rule: one_child`: the child stands for the rule


class _Runtime:
    """Lark's LALR tables and terminals for the policy grammar, run by one loop.

    The stack is persistent: a cell is `(state, value, cell below)`, so the state at the
    start of each line is kept for nothing, and parsing can go on from it after an error."""

    def __init__(self, parser: lark.Lark) -> None:
        table = parser.parser.parser.parser.parse_table
        self.states: Dict[Any, Dict[str, Tuple[Any, Any]]] = table.states
        self.start_state = table.start_states["start"]
        self.end_state = table.end_states["start"]
        lexer = parser.parser.lexer.lexer  # the basic lexer under the postlexer
        scanner = lexer.scanner
        patterns = getattr(scanner, "_mres", None)
        if not patterns or len(patterns) != 1:
            raise RuntimeError("this version of Lark builds its lexer differently; see engine/parser.py")
        self.pattern: "re.Pattern[str]" = patterns[0]
        self.ignore = frozenset(str(name) for name in lexer.ignore_types)
        self.newline_types = frozenset(str(name) for name in lexer.newline_types)
        # A name that is a keyword becomes the keyword (Lark's UnlessCallback)
        self.keywords: Dict[str, Dict[str, str]] = {}
        for type_, callback in lexer.callback.items():
            words = {}
            for terminal in callback.scanner.terminals:
                if terminal.pattern.type != "str" or terminal.pattern.flags:
                    raise RuntimeError(f"keyword {terminal.name} is not a plain string; see engine/parser.py")
                words[str(terminal.pattern.value)] = str(terminal.name)
            self.keywords[str(type_)] = words
        # Spaces and tabs are skipped by the match of the token after them (Lark matches
        # them as a token of their own, which it then drops).
        self.skip_pattern = re.compile(r"[\t \f]*(?:%s)" % self.pattern.pattern, self.pattern.flags)
        self.rules = self._rules(parser)
        self.actions = self._actions()
        self.units: Dict[Tuple[Any, Any, str], Any] = {}

    # ---- the tables, as the loop reads them

    def _rules(self, parser: lark.Lark) -> Dict[Any, tuple]:
        """Per grammar rule, what a reduction by it does: as Lark's parse-tree builder would."""
        nullable: set = set()  # rules that can match nothing: their node may have no position
        while True:
            more = {r.origin.name for r in parser.rules
                    if all(not s.is_term and s.name in nullable for s in r.expansion)} - nullable
            if not more:
                break
            nullable |= more
        built: Dict[Any, tuple] = {}
        for rule in parser.rules:
            expansion = rule.expansion
            if rule.options.keep_all_tokens:
                raise RuntimeError("`!rule`s are not supported by engine/parser.py")
            keep = [(i, not s.is_term and s.name.startswith("_")) for i, s in enumerate(expansion)
                    if not (s.is_term and getattr(s, "filter_out", False))]
            expand1 = bool(rule.options.expand1) and not rule.alias
            size = len(expansion)
            if expand1 and size == 1 and len(keep) == 1 and not keep[0][1]:
                built[rule] = (_UNIT, size, str(rule.origin.name), None)
                continue
            if expand1 and len(keep) == 1 and size > 1:
                # Lark would inline the child but give it the outer rule's container position.
                raise RuntimeError(f"rule {rule} inlines a child with keywords around it; see engine/parser.py")
            ends = ["token" if s.is_term else "any" if s.name in nullable else "node" for s in expansion]
            build = _builder(str(rule.alias or rule.origin.name), size, keep, expand1,
                             splice=rule.origin.name.startswith("_"), ends=ends)
            built[rule] = (_REDUCE, size, str(rule.origin.name), build)
        return built

    def _actions(self) -> Dict[Any, Dict[str, Any]]:
        """Per state: a terminal → a state to shift to, or a reduction (kind, size, rule name,
        build); a rule name → the state to go to after reducing to it."""
        actions = {}
        for state, row in self.states.items():
            entries: Dict[str, Any] = {}
            for symbol, (action, arg) in row.items():
                # Lark's names may be its Tokens (str subclasses, slow to compare): plain strings here
                if action is lark.parsers.lalr_analysis.Shift:
                    entries[str(symbol)] = arg
                else:
                    entries[str(symbol)] = self.rules[arg]
            actions[state] = entries
        return actions

    # ---- running them

    def start(self) -> _Snapshot:
        bottom = (self.start_state, None, None)
        return _Snapshot(0, 0, 0, bottom, 0, None, None, None, None, None)

    def _stop(self, token: _Token, stack: tuple) -> _Stopped:
        row = self.states[stack[0]]
        expected = frozenset(symbol for symbol in row if symbol.isupper())
        return _Stopped(token, stack, expected, accepts=lambda: self._accepts(stack))

    def _accepts(self, stack: tuple) -> FrozenSet[str]:
        """What Lark's InteractiveParser.accepts() says: each terminal of the state that,
        after the reductions it causes, can be shifted (or, for $END, ends the file)."""
        found = set()
        states = self.states
        for symbol in states[stack[0]]:
            if not symbol.isupper():
                continue
            cell, pushed = stack, []  # type: Tuple[Any, ...], List[Any]  # the stack as a cell below and the states pushed on it
            while True:
                row = states[pushed[-1] if pushed else cell[0]]
                if symbol not in row:
                    break
                action, arg = row[symbol]
                if action is lark.parsers.lalr_analysis.Shift:
                    found.add(symbol)
                    break
                size = len(arg.expansion)
                while size and pushed:
                    pushed.pop()
                    size -= 1
                for _ in range(size):
                    cell = cell[2]
                pushed.append(states[pushed[-1] if pushed else cell[0]][arg.origin.name][1])
                if symbol == "$END" and pushed[-1] == self.end_state:  # Lark feeds $END as the end
                    found.add(symbol)
                    break
        return frozenset(found)

    def _feed(self, stack: tuple, token: _Token) -> tuple:
        """Shift one token, after the reductions it calls for; the new stack."""
        actions = self.actions
        kind = token.type
        while True:
            action = actions[stack[0]].get(kind)
            if action is None:
                raise self._stop(token, stack)
            if action.__class__ is int:
                return (action, token, stack)
            what, size, origin, build = action
            if what == _UNIT:
                # `expr` → `or_expr` → ... → `atom`: a chain of these leaves the value and the
                # cell below as they are, and ends in a state that depends on three things only.
                below = stack[2]
                key = (stack[0], below[0], kind)
                state = self.units.get(key)
                if state is None:
                    state = self.units[key] = self._unit_chain(stack[0], below[0], kind)
                stack = (state, stack[1], below)
                continue
            if size == 1:
                children = [stack[1]]
                stack = stack[2]
            elif size == 0:
                children = []
            else:
                children = [None] * size
                for i in range(size - 1, -1, -1):
                    children[i] = stack[1]
                    stack = stack[2]
            stack = (actions[stack[0]][origin], build(children), stack)

    def _unit_chain(self, state: Any, below: Any, kind: str) -> Any:
        """The state after every `?rule: one_child` reduction `kind` calls for in `state`."""
        actions = self.actions
        while True:
            action = actions[state].get(kind)
            if action is None or action.__class__ is int or action[0] != _UNIT:
                return state
            state = actions[below][action[2]]

    def _finish(self, stack: tuple, token: _Token) -> Any:
        """Feed the end of the file; the tree."""
        actions = self.actions
        end_state = self.end_state
        while True:
            action = actions[stack[0]].get("$END")
            if action is None or action.__class__ is not tuple:
                raise self._stop(token, stack)
            what, size, origin, build = action
            if what == _UNIT:
                below = stack[2]
                stack = (actions[below[0]][origin], stack[1], below)
            else:
                children = [None] * size
                for i in range(size - 1, -1, -1):
                    children[i] = stack[1]
                    stack = stack[2]
                stack = (actions[stack[0]][origin], build(children), stack)
            if stack[0] == end_state:
                return stack[1]

    def drive(self, text: str, snapshots: List[_Snapshot]) -> Any:
        """Parse `text` from the last snapshot on, adding one at each line start; the tree,
        or _Stopped. Lexer, line joining and parser in one loop (see `_LineJoiner`)."""
        at = snapshots[-1]
        pos, line, line_start, stack = at.pos, at.line or 1, at.line_start, at.stack
        depth, first_paren, previous, pending, soft = at.depth, at.first_paren, at.previous, at.pending, at.soft
        last_out = at.last_out
        match = self.skip_pattern.match
        ignore, newline_types, keywords = self.ignore, self.newline_types, self.keywords
        feed, actions = self._feed, self.actions
        continues_after, continues_before, statement_starts = _CONTINUES_AFTER, _CONTINUES_BEFORE, _STATEMENT_STARTS
        end = len(text)
        line_begins = False  # the next token is the first of its line (the one at `at` was kept already)
        while pos < end:
            found = match(text, pos)
            if found is None:
                while pos < end and text[pos] in "\t \f":  # the spaces before it are not the problem
                    pos += 1
                if pos == end:
                    break
                raise _Stopped(char_pos=pos, line=line, column=pos - line_start + 1)
            kind = found.lastgroup or ""
            after = found.end()
            if kind in ignore:
                if kind in newline_types:
                    value = found.group(kind)
                    breaks = value.count("\n")
                    if breaks:
                        line += breaks
                        line_start = after - len(value) + value.rindex("\n") + 1
                pos = after
                continue
            value = found.group(kind)
            pos = after - len(value)
            if kind in keywords:
                kind = keywords[kind].get(value, kind)
            if line_begins:
                snapshots.append(_Snapshot(line, pos, line_start, stack, depth, first_paren, previous, pending,
                                           soft, last_out))
            token: _Token
            if kind in newline_types:
                breaks = value.count("\n")
                if breaks:
                    token = _Placed(kind, value, pos, line, pos - line_start + 1, line + breaks,
                                    after - (pos + value.rindex("\n") + 1) + 1, after)
                    line += breaks
                    line_start = pos + value.rindex("\n") + 1
                else:
                    token = _Token(kind, value, pos, line, pos - line_start + 1)
            else:
                token = _Token(kind, value, pos, line, pos - line_start + 1)
            pos = after
            line_begins = kind == "_NL"
            # ---- line joining (the rules of _LineJoiner.process)
            if line_begins:
                if not depth and previous is not None:
                    if previous.type not in continues_after:
                        pending = pending or token
                    else:
                        soft = soft or token
                continue
            starts_statement = kind in statement_starts
            if soft is not None and starts_statement and pending is None:
                pending = soft
            soft = None
            if starts_statement and depth:
                pending = first_paren.borrow("_NL", "(")
                depth, first_paren = 0, None
            if pending is not None:
                if kind not in continues_before:
                    stack = feed(stack, pending)
                    last_out = pending
                pending = None
            if kind == "LPAR":
                if not depth:
                    first_paren = token
                depth += 1
            elif kind == "RPAR" and depth:
                depth -= 1
                if not depth:
                    first_paren = None
            previous = token
            action = actions[stack[0]].get(kind)
            stack = (action, token, stack) if action.__class__ is int else feed(stack, token)  # a shift at once
            last_out = token
        if depth:
            last_out = first_paren.borrow("_NL", "(")
            stack = feed(stack, last_out)
        elif previous is not None:
            last_out = (pending or previous).borrow("_NL", "\n")
            stack = feed(stack, last_out)
        end_token = last_out.borrow("$END", "") if last_out is not None else _Placed("$END", "", 0, 1, 1, 1, 1, 0)
        return self._finish(stack, end_token)


class _Lines:
    """Where each line of a text starts, as the parser counts lines (at "\\n" only).
    Blanking lines keeps every position, so one index serves every pass."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        self.starts.extend(found.end() for found in re.finditer("\n", text))

    def __len__(self) -> int:
        return len(self.starts)

    def bounds(self, index: int, text: str) -> Tuple[int, int]:
        """The 0-based line's start and end (before its "\\n")."""
        start = self.starts[index]
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(text)
        return start, end

    def text(self, index: int, text: str) -> str:
        start, end = self.bounds(index, text)
        return text[start:end]


# ---- syntax errors ------------------------------------------------------------------


def _blank_statement(text: str, lines: _Lines, line: int, until_statement: bool = False) -> str:
    """Blank the bad line (and the lines it continues onto) so parsing can resume after it."""
    index = line - 1
    if index >= len(lines):
        return text
    last = index
    # A statement continued on the following lines would now start mid-formula.
    while last + 1 < len(lines):
        following = lines.text(last + 1, text)
        if not (_is_continuation(following) or until_statement and _first_word(following) not in ("", *_STATEMENT_WORDS)):
            break
        last += 1
    start, _ = lines.bounds(index, text)
    _, end = lines.bounds(last, text)
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def _first_word(line: str) -> str:
    words = line.split(None, 1)
    return words[0] if words else ""


_CONTINUATION_WORDS = frozenset(name.lower() for name in _CONTINUES_BEFORE) - {
    "plus", "minus", "star", "slash", "eq", "compare", "rpar"}


def _is_continuation(line: str) -> bool:
    """Text-level twin of the postlexer's rule, for blanking a bad statement's continued lines."""
    stripped = line.strip()
    return bool(stripped) and (stripped[0] in "+-*/=<>!)" or _first_word(stripped) in _CONTINUATION_WORDS)


def _words(expected) -> str:
    names = sorted(set(expected) - {"COMMENT"})
    words = [_TOKEN_WORDS.get(n, f"'{n.lower()}'") for n in names]
    if len(words) > 6:
        words = words[:6] + ["..."]
    return ", ".join(words)


def _describe(token: _Token) -> str:
    if token.type == "_NL":
        return "the end of the line"
    if token.type == "$END":
        return "the end of the file"
    return f"'{snippet(token.value)}'"


def _stopped_after(error: _Stopped, *types: str) -> Optional[list]:
    """The last tokens the parser had read when it stopped, if they are of these types in
    this order: where in a statement the error came (`RANK BY` is right after `rank by`)."""
    read = error.read(len(types))
    if len(read) == len(types) and all(isinstance(t, _Token) and t.type == k for t, k in zip(read, types)):
        return read
    return None


def _syntax_diagnostic(error: _Stopped, lines: _Lines, text: str, filename: str) -> Diagnostic:
    token = error.token
    if token is None:  # a character no token starts with
        position = error.char_pos
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

    expected = set(error.accepts or error.expected)
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
    value = snippet(token.value)
    if token.type in ("ALLOCATE", "REFERRED") and "ALLOCATE" not in expected and "REFERRED" not in expected:
        message = f"`{value}` can only define a whole cost or credit"
        help_text = ("write it as its own line, e.g. `cost call_centre = allocate 180,000 EUR by support_calls`"
                     if token.type == "ALLOCATE" else
                     "write it as its own line, e.g. `credit word_of_mouth = referred 5% of revenue via referred_by`")
    elif (token.type in _CONTINUES_BEFORE and token.value.isidentifier()
          and 0 < line <= len(lines) and not lines.text(line - 1, text)[: column - 1].strip()):
        message = f"'{value}' is a reserved word"
        help_text = (f"a line starting with '{value}' continues the line above; "
                     f"if this is a name, choose another, e.g. '{value}_'")
    elif token.type not in ("NAME", "CURRENCY") and token.value.isidentifier() and "NAME" in expected:
        message = f"'{value}' is a reserved word"
        help_text = "choose another name, e.g. " + f"'{value}_'"
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
        message = f"unexpected {_describe(token)} after `rank by {snippet(figure[-1].value)}`"
        help_text = "customers are ranked by one figure; for a formula, define a measure and rank by that"
    elif token.type == "RPAR" and "RPAR" not in expected:
        message = "this ')' closes no '('"
        help_text = "remove it, or add the '(' it closes"
    elif token.type == "NAME" and token.value in _STATEMENT_WORDS:
        help_text = f"'{value}' starts a new statement on its own line"
    return Diagnostic("syntax", message, span, help_text, filename=filename)


def _too_deep(tree: _Node, filename: str) -> Optional[Diagnostic]:
    """Find nesting past MAX_DEPTH without recursion, before any recursive pass runs."""
    stack = [(tree, 0)]
    push = stack.append
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            first = node.first
            line, column = (first.line, first.column) if first is not None else (0, 0)
            return Diagnostic(
                "too-deep", f"this formula is too long or nested too deeply (over {MAX_DEPTH} levels)",
                ast.Span(line, column, line, column + 1),
                "split it into named measures", filename=filename)
        depth += 1
        for child in node.children:
            if child.__class__ is _Node:
                push((child, depth))
    return None


# ---- parse tree → AST --------------------------------------------------------------
# Keywords and punctuation never reach the tree (see grammar/policy.lark): a rule's
# children are the parts that carry meaning, in source order, and an alternative a
# keyword tells apart arrives under its own name (`cost`, `allocate_equally`...).


def _span_of(item) -> ast.Span:
    if item.__class__ is not _Node:
        return ast.Span(item.line or 0, item.column or 0, item.end_line or 0, item.end_column or 0)
    first, last = item.first, item.last
    if first is None or last is None:
        return ast.NOWHERE
    return ast.Span(first.line, first.column, last.end_line, last.end_column)


def _number(token: _Token) -> Decimal:
    return Decimal(token.value.rstrip("%").replace(",", ""))


def _string(token: _Token) -> str:
    return token.value[1:-1]


class _Builder:
    """Turns Lark's tree into AST nodes; nothing of Lark leaves this class."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.diagnostics: List[Diagnostic] = []
        self.expressions: Dict[str, Callable[..., ast.Expr]] = {}  # node name → its e_ method
        self.nodes = 0  # expression nodes numbered so far (see `ast.numbered`)

    def new_nid(self) -> int:
        """The next expression node's identity, so the checker need not renumber the tree."""
        self.nodes += 1
        return self.nodes - 1

    def error(self, code: str, message: str, span: ast.Span, help_text: str) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, help_text, filename=self.filename))

    # statements

    def statement(self, tree: _Node):
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
            return ast.Number(self.signed(number), span=span, nid=self.new_nid())
        if kind == "money_literal":
            amount, currency = tree.children
            return ast.Money(self.signed(amount), currency.value, span=span, nid=self.new_nid())
        if kind == "percent_literal":
            (percent,) = tree.children
            return ast.Percent(_number(percent), span=span, nid=self.new_nid())
        if kind == "text_literal":
            (text,) = tree.children
            return ast.Text(_string(text), span=span, nid=self.new_nid())
        return ast.YesNo(kind == "yes_literal", span=span, nid=self.new_nid())

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

    def definition(self, kind: str, name: _Token, value: _Node, span: ast.Span) -> ast.Definition:
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
        volume_number = ast.Number(_number(volume), span=_span_of(volume), nid=self.new_nid())
        return ast.Pool(name.value, self.expr(amount), volume_number, unit.value, span=span)

    def s_classify(self, name, *rules, span):
        return ast.Classification(name.value, tuple(self.rule(r) for r in rules), span=span)

    def s_history(self, *options, span):
        return ast.History(tuple(ast.HistoryOption(
            ("missing",) * (option.data == "history_missing") + tuple(word.value for word in option.children),
            span=_span_of(option)) for option in options), span=span)

    def s_warning(self, name, condition, *messages, span):
        for extra in messages[1:]:
            self.error("duplicate-option", f"warning '{name.value}' has two messages", _span_of(extra),
                       "keep one; write a longer text instead")
        message = _string(messages[0].children[0]) if messages else None
        return ast.WarningRule(name.value, self.expr(condition), message, span=span)

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
        if item.__class__ is not _Node:  # a lone NAME/NUMBER promoted through ?rules
            raise AssertionError(f"unexpected bare token {item.type}")
        method = self.expressions.get(item.data)
        if method is None:
            method = self.expressions[item.data] = getattr(self, "e_" + item.data)
        nid = self.new_nid()  # before the children: parents are numbered before them
        return method(*item.children, span=_span_of(item), nid=nid)

    def e_number(self, number, *, span, nid):
        return ast.Number(_number(number), span=span, nid=nid)

    def e_percent(self, percent, *, span, nid):
        return ast.Percent(_number(percent), span=span, nid=nid)

    def e_money(self, amount, currency, *, span, nid):
        return ast.Money(_number(amount), currency.value, span=span, nid=nid)

    def e_money_rate(self, amount, currency, unit, *, span, nid):
        quantity = ast.Money(_number(amount), currency.value, span=ast.Span.covering(_span_of(amount), _span_of(currency)),
                             nid=self.new_nid())
        return ast.Rate(quantity, unit.value, span=span, nid=nid)

    def e_percent_rate(self, percent, unit, *, span, nid):
        return ast.Rate(ast.Percent(_number(percent), span=_span_of(percent), nid=self.new_nid()), unit.value, span=span, nid=nid)

    def e_number_rate(self, number, unit, *, span, nid):
        return ast.Rate(ast.Number(_number(number), span=_span_of(number), nid=self.new_nid()), unit.value, span=span, nid=nid)

    def e_text(self, text, *, span, nid):
        return ast.Text(_string(text), span=span, nid=nid)

    def e_yes(self, *, span, nid):
        return ast.YesNo(True, span=span, nid=nid)

    def e_no(self, *, span, nid):
        return ast.YesNo(False, span=span, nid=nid)

    def e_name(self, name, *, span, nid):
        return ast.Name(name.value, span=span, nid=nid)

    def e_call(self, function, *args, span, nid):
        return ast.Call(function.value, tuple(self.expr(a) for a in args), span=span, nid=nid)

    def e_group(self, inner, *, span, nid):
        return self.expr(inner)  # the span is the inside's: parentheses are not part of a value

    def e_negate(self, operand, *, span, nid):
        return ast.Negate(self.expr(operand), span=span, nid=nid)

    def e_binary(self, left, op, right, *, span, nid):
        return ast.Binary(op.value, self.expr(left), self.expr(right), span=span, nid=nid)

    def e_percent_of(self, share, whole, *, span, nid):
        return ast.Binary("of", self.expr(share), self.expr(whole), span=span, nid=nid)

    def e_compare(self, left, op, right, *, span, nid):
        return ast.Compare(op.value, self.expr(left), self.expr(right), span=span, nid=nid)

    def e_between(self, value, low, high, *, span, nid):
        return ast.Between(self.expr(value), self.expr(low), self.expr(high), False, span=span, nid=nid)

    def e_not_between(self, value, low, high, *, span, nid):
        return ast.Between(self.expr(value), self.expr(low), self.expr(high), True, span=span, nid=nid)

    def e_is_missing(self, value, *, span, nid):
        return ast.IsMissing(self.expr(value), False, span=span, nid=nid)

    def e_is_present(self, value, *, span, nid):
        return ast.IsMissing(self.expr(value), True, span=span, nid=nid)

    def e_and_(self, left, right, *, span, nid):
        return ast.Logical("and", self.expr(left), self.expr(right), span=span, nid=nid)

    def e_or_(self, left, right, *, span, nid):
        return ast.Logical("or", self.expr(left), self.expr(right), span=span, nid=nid)

    def e_not_(self, operand, *, span, nid):
        return ast.Not(self.expr(operand), span=span, nid=nid)

    def e_conditional(self, then, condition, otherwise, *, span, nid):
        return ast.Conditional(self.expr(then), self.expr(condition), self.expr(otherwise), span=span, nid=nid)

    # the two expressions that stand only as a whole cost or credit

    def e_allocate_by(self, pool, driver, *within, span, nid):
        return self.allocate(pool, driver, within, fallback_equal=False, span=span, nid=nid)

    def e_allocate_by_or_equally(self, pool, driver, *within, span, nid):
        return self.allocate(pool, driver, within, fallback_equal=True, span=span, nid=nid)

    def e_allocate_equally(self, pool, *within, span, nid):
        return self.allocate(pool, None, within, fallback_equal=False, span=span, nid=nid)

    def allocate(self, pool: _Node, driver: Optional[_Node], within: tuple, fallback_equal: bool,
                 span: ast.Span, nid: int) -> ast.Allocate:
        (group,) = within or (None,)
        return ast.Allocate(self.expr(pool), self.expr(driver) if driver is not None else None,
                            group.value if group is not None else None, fallback_equal, span=span, nid=nid)

    def e_referral(self, value, via, *options, span, nid):
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
            span=span, nid=nid)
