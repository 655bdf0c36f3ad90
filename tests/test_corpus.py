"""The example corpus: small policies under tests/corpus with their expectations written
on the lines they concern, as the jlox test suite does with `// expect: ...`.

One test runs every file (its id is the file's path under tests/corpus); the format is
described in tests/corpus/README.md. Two more tests keep the corpus honest: every rule
and alternative of the grammar, every construct of the language and every diagnostic
code of docs/errors.md must have an example in it.
"""
from __future__ import annotations

import datetime
import json
import re
import typing
from decimal import Decimal
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import attrs
import pytest

from engine import Decision, PolicyError, RecordError, load_policy
from engine import ast
from engine.parser import lark_parser, parse

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CORPUS.rglob("*.policy"))


# ---- reading a corpus file -----------------------------------------------------------------

_MARKER = re.compile(r"#\s*expect\b([^:#]*):")
_KINDS = {"": "decision", "error": "error", "warning": "warning", "record error": "record error"}
_RECORD = re.compile(r"^\s*#\s*record\s*:\s*")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')  # text in double quotes (`\"` for a quote) or a word
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([Ee][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FormatError(Exception):
    """The corpus file itself is malformed (not a failure of the engine)."""


@attrs.frozen
class Expect:
    line: int  # the line it concerns
    kind: str  # decision, error, warning, record error
    body: str
    written: int  # the line it is written on (a comment line's concerns the policy line above)


@attrs.frozen
class Claim:
    """One expectation about one record's decision."""

    line: int
    written: int
    record: str
    what: str  # "figure-here", "figure", "rule-here", "class"
    name: Optional[str] = None  # figure or classification name
    value: object = None  # expected value (figures) or label (classifications)
    text: str = ""  # the expected value as written
    action: Optional[str] = None
    reason: Optional[str] = None


@attrs.frozen
class DiagnosticClaim:
    line: int
    severity: str
    code: str
    column: Optional[int] = None
    message: Optional[str] = None
    help: Optional[str] = None

    def matches(self, d) -> bool:
        return (d.severity == self.severity and d.code == self.code and d.span.line == self.line
                and (self.column is None or d.span.column == self.column)
                and (self.message is None or self.message in d.message)
                and (self.help is None or self.help in (d.help or "")))

    def __str__(self) -> str:
        out = f"{self.severity}[{self.code}] on line {self.line}"
        if self.column is not None:
            out += f" at column {self.column}"
        if self.message is not None:
            out += f' "{self.message}"'
        if self.help is not None:
            out += f' help "{self.help}"'
        return out


@attrs.frozen
class RecordLine:
    line: int
    record: dict


def _code(line: str) -> str:
    """A line without its comment. (Good enough for the corpus: a `#` inside text only
    shortens what is taken for the line's policy text, never empties it.)"""
    return line.split("#", 1)[0].rstrip()


def read_corpus_file(text: str) -> Tuple[List[RecordLine], List[Expect]]:
    """The records and expectations written in a corpus file's comments."""
    records: List[RecordLine] = []
    expects: List[Expect] = []
    code_line = None  # the last line of policy text so far: a comment line's expectations concern it
    for number, line in enumerate(text.split("\n"), start=1):
        rest = line
        found = _RECORD.match(line)
        if _code(line).strip():
            code_line = number
        if found:
            try:
                record, end = json.JSONDecoder(parse_float=Decimal).raw_decode(line, found.end())
            except json.JSONDecodeError as error:
                raise FormatError(f"line {number}: a `# record:` line holds one JSON object ({error.msg})") from None
            if not isinstance(record, dict):
                raise FormatError(f"line {number}: a `# record:` line holds one JSON object")
            records.append(RecordLine(number, record))
            rest = line[end:]
            if rest.strip() and not _MARKER.match(rest.strip()):
                raise FormatError(f"line {number}: after a record's JSON only an expectation may follow")
        elif re.match(r"^\s*#\s*records?\s*[:=]", line):
            raise FormatError(f"line {number}: write a record as `# record: {{...}}`")
        markers = list(_MARKER.finditer(rest))
        if len(re.findall(r"#\s*expect", rest)) != len(markers):
            raise FormatError(f"line {number}: malformed `# expect` comment")
        for index, marker in enumerate(markers):
            kind = " ".join(marker.group(1).split())
            if kind not in _KINDS:
                raise FormatError(f"line {number}: unknown expectation `# expect {kind}:`")
            end = markers[index + 1].start() if index + 1 < len(markers) else len(rest)
            concerns = number if found or code_line == number else code_line
            if concerns is None:
                raise FormatError(f"line {number}: an expectation on a comment line concerns the policy line "
                                  "above it, and there is none")
            expects.append(Expect(concerns, _KINDS[kind], rest[marker.end():end].strip(), number))
    return records, expects


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _value(text: str, line: int):
    if text in ("yes", "no"):
        return text == "yes"
    if text == "missing":
        return None
    if text.startswith('"'):
        return _unquote(text)
    if _DATE.match(text):
        return datetime.date.fromisoformat(text)
    if _NUMBER.match(text):
        return Decimal(text)
    raise FormatError(f"line {line}: cannot read the value {text!r} (a decimal, yes, no, missing, \"text\", a date)")


def _same(actual, expected, text: str) -> bool:
    if isinstance(expected, Decimal):
        return type(actual) is Decimal and str(actual) == text  # the representation counts: 12.40 is not 12.4
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    return type(actual) is type(expected) and actual == expected


def _show(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "missing"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return f"{value!r} ({type(value).__name__})"


def decision_claims(expect: Expect) -> List[Claim]:
    tokens = _TOKEN.findall(expect.body)
    ids: List[str] = []
    while tokens:
        token = tokens.pop(0)
        ids.extend(part for part in token.split(",") if part)
        if not token.endswith(",") and not (tokens and tokens[0].startswith(",")):
            break
    if not ids or not tokens:
        raise FormatError(f"line {expect.written}: write `# expect: RECORD CLAIM`, e.g. `# expect: A profitable`")
    line, written = expect.line, expect.written
    claims = []
    for record in ids:
        if tokens[0] == "=" and len(tokens) == 2:
            claims.append(Claim(line, written, record, "figure-here", value=_value(tokens[1], written), text=tokens[1]))
        elif len(tokens) == 3 and tokens[1] == "=" and _NAME.match(tokens[0]):
            claims.append(Claim(line, written, record, "figure", tokens[0], _value(tokens[2], written), tokens[2]))
        elif all("=" in t and not t.startswith('"') for t in tokens):
            for token in tokens:
                name, _, label = token.partition("=")
                if not name or not label:
                    raise FormatError(f"line {written}: write a classification's label as `NAME=LABEL`")
                claims.append(Claim(line, written, record, "class", name, label, label))
        else:
            label, options = tokens[0], tokens[1:]
            texts: Dict[str, str] = {}
            while options:
                if len(options) < 2 or options[0] not in ("action", "reason") or not options[1].startswith('"'):
                    raise FormatError(f"line {written}: after a label only `action \"...\"` and `reason \"...\"` may follow")
                texts[options[0]] = _unquote(options[1])
                options = options[2:]
            claims.append(Claim(line, written, record, "rule-here", value=label, text=label,
                                action=texts.get("action"), reason=texts.get("reason")))
    return claims


def diagnostic_claim(expect: Expect) -> DiagnosticClaim:
    tokens = _TOKEN.findall(expect.body)
    if not tokens:
        raise FormatError(f"line {expect.written}: `# expect {expect.kind}:` needs a code")
    code, rest = tokens[0], tokens[1:]
    column = message = help_text = None
    while rest:
        if rest[0] == "at" and len(rest) >= 3 and rest[1] == "column" and rest[2].isdigit():
            column, rest = int(rest[2]), rest[3:]
        elif rest[0] == "help" and len(rest) >= 2 and rest[1].startswith('"'):
            help_text, rest = _unquote(rest[1]), rest[2:]
        elif rest[0].startswith('"') and message is None:
            message, rest = _unquote(rest[0]), rest[1:]
        else:
            raise FormatError(f"line {expect.written}: cannot read {' '.join(rest)!r} "
                              '(expected `at column N`, "message fragment" or help "fragment")')
    return DiagnosticClaim(expect.line, expect.kind, code, column, message, help_text)


def record_error_claim(expect: Expect) -> Tuple[str, Optional[str]]:
    tokens = _TOKEN.findall(expect.body)
    if not tokens or tokens[0].startswith('"') or len(tokens) > 2 or (len(tokens) == 2 and not tokens[1].startswith('"')):
        raise FormatError(f'line {expect.written}: write `# expect record error: RECORD "fragment of the message"`')
    return tokens[0], _unquote(tokens[1]) if len(tokens) == 2 else None


# ---- where things are in a policy ------------------------------------------------------------


def last_line(span, lines: List[str]) -> int:
    """The last line holding a token of a statement. Its span ends with the line end,
    which reaches to the indentation of the next line (past any comment lines)."""
    end = span.end_line
    if end > span.line and not lines[end - 1][:max(span.end_column - 1, 0)].strip():
        end -= 1
        while end > span.line and not _code(lines[end - 1]).strip():
            end -= 1
    return end


def _covers(span, line: int, lines: List[str]) -> bool:
    return span.line <= line <= last_line(span, lines)


def figure_at(policy: ast.Policy, line: int) -> Optional[ast.Definition]:
    lines = policy.source.split("\n")
    for statement in policy.statements:
        if isinstance(statement, ast.Definition) and _covers(statement.span, line, lines):
            return statement
        if isinstance(statement, ast.Constants) and any(_covers(d.span, line, lines) for d in statement.items):
            raise FormatError(f"line {line}: rates and parameters are not among a decision's figures")
        if isinstance(statement, ast.Pool) and _covers(statement.span, line, lines):
            raise FormatError(f"line {line}: a capacity pool is a rate, not among a decision's figures")
    return None


def rule_at(policy: ast.Policy, line: int) -> Optional[Tuple[str, int, ast.Rule]]:
    lines = policy.source.split("\n")
    for statement in policy.statements:
        if isinstance(statement, ast.Classification):
            for number, rule in enumerate(statement.rules, start=1):
                if _covers(rule.span, line, lines):
                    return statement.name, number, rule
    return None


# ---- running one file ------------------------------------------------------------------------


def _diagnostic_text(d) -> str:
    return f"{d.severity}[{d.code}] on line {d.span.line} at column {d.span.column}: {d.message}"


def _compare_diagnostics(where: str, claims: List[DiagnosticClaim], actual, problems: List[str]) -> None:
    left = list(actual)
    # the most specific claims first, so that a vaguer one cannot take their diagnostic
    for claim in sorted(claims, key=lambda c: (c.column is None, c.message is None, c.help is None)):
        match = next((d for d in left if claim.matches(d)), None)
        if match is None:
            same_line = [_diagnostic_text(d) for d in actual if d.span.line == claim.line]
            problems.append(f"{where}:{claim.line}: expected {claim}, got "
                            + ("; ".join(same_line) if same_line else "nothing on that line"))
        else:
            left.remove(match)
    for d in left:
        problems.append(f"{where}:{d.span.line}: unexpected {_diagnostic_text(d)}")


def run_corpus_file(path: Path) -> List[str]:
    """Every way the engine's answer differs from what the file expects (empty: it agrees)."""
    where = str(path.relative_to(ROOT))
    text = path.read_text(encoding="utf-8")
    records, expects = read_corpus_file(text)
    diagnostics = [diagnostic_claim(e) for e in expects if e.kind in ("error", "warning")]
    problems: List[str] = []

    if any(d.severity == "error" for d in diagnostics):
        if records or any(e.kind in ("decision", "record error") for e in expects):
            raise FormatError("a policy with errors decides no records: leave out `# record:` and `# expect:`")
        try:
            load_policy(text, filename=where)
        except PolicyError as error:
            _compare_diagnostics(where, diagnostics, error.diagnostics, problems)
        else:
            problems.append(f"{where}: expected the policy to be refused, but it loaded")
        return problems

    try:
        policy = load_policy(text, filename=where)
    except PolicyError as error:
        return [f"{where}: the policy does not load:"] + [f"  {where}:{d.span.line}: {_diagnostic_text(d)}"
                                                         for d in error.diagnostics]
    _compare_diagnostics(where, diagnostics, policy.warnings, problems)
    tree = parse(text, where)
    if not records:
        raise FormatError("a valid policy needs at least one `# record:` line")

    # what is expected of each record
    record_lines: Dict[str, int] = {}
    for entry in records:
        key = entry.record.get(_key_column(tree))
        if key is None:
            raise FormatError(f"line {entry.line}: a record needs its key field, which names it in expectations")
        if str(key).strip() in record_lines:
            raise FormatError(f"line {entry.line}: two records are named {key}")
        record_lines[str(key).strip()] = entry.line
    claims: Dict[str, List[Claim]] = {name: [] for name in record_lines}
    failures: Dict[str, List[Tuple[int, Optional[str], int]]] = {}
    for expect in expects:
        if expect.kind == "decision":
            for claim in decision_claims(expect):
                if claim.record not in claims:
                    raise FormatError(f"line {expect.written}: no record is named {claim.record}")
                claims[claim.record].append(claim)
        elif expect.kind == "record error":
            name, fragment = record_error_claim(expect)
            if name not in claims:
                raise FormatError(f"line {expect.written}: no record is named {name}")
            failures.setdefault(name, []).append((expect.line, fragment, expect.written))

    results = list(policy.evaluate_many([entry.record for entry in records]))
    for entry, result in zip(records, results):
        name = str(entry.record.get(_key_column(tree))).strip()
        if isinstance(result, RecordError):
            _check_failure(where, name, entry.line, result, failures.get(name), claims[name], problems)
        elif name in failures:
            for line, fragment, written in failures[name]:
                problems.append(f"{where}:{written}: expected record {name} to fail"
                                + (f' with "{fragment}"' if fragment else "") + ", but it was decided: "
                                + ", ".join(f"{k}={v}" for k, v in result.classes.items()))
        else:
            _check_decision(where, tree, name, result, claims[name], problems)
    return problems


def _key_column(tree: ast.Policy) -> str:
    """The input column holding the key: the field marked `key`, else the field `id`."""
    for statement in tree.statements:
        if isinstance(statement, ast.Record):
            for field in statement.fields:
                if field.key:
                    return field.column or field.name
    return "id"


def _check_failure(where, name, record_line, error: RecordError, expected, claims, problems) -> None:
    if not expected:
        problems.append(f"{where}:{record_line}: record {name} failed unexpectedly: {error.message}")
        return
    for line, fragment, written in expected:
        wanted_line = error.line if error.line is not None else record_line
        place = f"line {error.line} of the policy" if error.line is not None else "the record's own line"
        if fragment is not None and fragment not in error.message:
            problems.append(f'{where}:{written}: expected record {name} to fail with "{fragment}", '
                            f"got: {error.message}")
        elif line != wanted_line:
            problems.append(f"{where}:{written}: record {name} fails as expected, but the error belongs on "
                            f"{place} ({wanted_line}): {error.message}")
    for claim in claims:
        problems.append(f"{where}:{claim.written}: record {name} failed ({error.message}), "
                        f"so nothing can be expected of its decision")


def _check_decision(where: str, tree: ast.Policy, name: str, decision: Decision, claims: List[Claim],
                    problems: List[str]) -> None:
    outcomes = {o.classification: o for o in decision.outcomes}
    labelled: Dict[str, int] = {}
    figures = decision.figures
    for claim in claims:
        at = f"{where}:{claim.written}: record {name}"
        if claim.what in ("figure", "figure-here"):
            figure = claim.name
            if figure is None:
                definition = figure_at(tree, claim.line)
                if definition is None:
                    raise FormatError(f"line {claim.written}: `= VALUE` needs a figure defined on this line; "
                                      "name it otherwise (`A profit = 1.00`)")
                figure = definition.name
            if figure not in figures:
                raise FormatError(f"line {claim.written}: no figure named {figure}")
            actual = figures[figure]
            if not _same(actual, claim.value, claim.text):
                problems.append(f"{at}, {figure}: expected {claim.text}, got {_show(actual)}")
            continue
        if claim.what == "rule-here":
            found = rule_at(tree, claim.line)
            if found is None:
                raise FormatError(f"line {claim.written}: `# expect: {name} {claim.text}` belongs on a rule's line")
            classification, number, rule = found
            if rule.label != claim.value:
                raise FormatError(f"line {claim.written}: the rule on this line gives {rule.label}, not {claim.value}")
        else:
            classification, number, rule = claim.name, None, None
            if classification not in outcomes:
                raise FormatError(f"line {claim.written}: no classification named {classification}")
        if classification in labelled:
            raise FormatError(f"line {claim.written}: record {name}'s {classification} is expected twice "
                              f"(also on line {labelled[classification]})")
        labelled[classification] = claim.line
        outcome = outcomes[classification]
        got = f"{outcome.label} (rule {outcome.rule}, line {outcome.line})"
        if outcome.label != claim.value or (number is not None and outcome.rule != number):
            problems.append(f"{at}, {classification}: expected {claim.value}"
                            + (f" (rule {number}, line {rule.span.line})" if rule else "") + f", got {got}")
            continue
        for what in ("action", "reason"):
            wanted = getattr(claim, what)
            if wanted is not None and getattr(outcome, what) != wanted:
                problems.append(f"{at}, {classification}: expected {what} \"{wanted}\", "
                                f"got {getattr(outcome, what)!r}")
    for classification, outcome in outcomes.items():
        if classification not in labelled:
            problems.append(f"{where}: record {name} is classified {classification}={outcome.label} "
                            f"(line {outcome.line}), but the file expects nothing of its {classification}")


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(CORPUS))) for p in FILES])
def test_corpus(path: Path) -> None:
    try:
        problems = run_corpus_file(path)
    except FormatError as error:
        pytest.fail(f"{path.relative_to(ROOT)}: malformed corpus file: {error}", pytrace=False)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 25, "tests/corpus holds the example policies"


# ---- the corpus covers the language ----------------------------------------------------------
#
# Three lists, each worked out from the language's own sources rather than written down
# here: the rules and alternatives of grammar/policy.lark (every one must occur in a
# corpus file that parses), the constructs of the language (the AST node classes, the
# words of docs/language.md's quick reference, and the variants listed below; each must
# occur in a corpus policy that loads and is run), and the diagnostic codes of
# docs/errors.md (each must be expected somewhere in the corpus).

LANGUAGE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
ERRORS = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
GRAMMAR = (ROOT / "grammar" / "policy.lark").read_text(encoding="utf-8")

# Diagnostic codes without a corpus example, and why.
EXEMPT_CODES = {
    "too-large": "needs a policy of over 1,000,000 bytes",
    "too-many-names": "needs a policy of over 2,000 names",
}

# Constructs that are not node classes or quick-reference words, by what shows them.
VARIANTS = [
    "header policy", "header version", "header currency", "header rank", "no rounding line (the default)",
    "field option description", "field option key", "field option optional", "field option default",
    "field option column", "default of Number", "default of Money", "default of Percent", "default of Text",
    "default of YesNo", "default money 0 without a currency", "negative default",
    "key field named id, not marked key",
    "rates section", "parameters section", "rate", "cost", "credit", "measure", "threshold",
    "rate of Money", "rate of Percent", "rate of Number", "rate per hour", "rate per hours", "rate per h",
    "rate per day", "rate per days", "rate per counted thing", "parameter from other parameters",
    "pool over hours", "pool over days", "pool over counted things",
    "total costs", "total credits", "figure used before it is defined",
    "operator +", "operator -", "operator *", "operator /", "operator of", "unary minus",
    "is between", "is not between", "is missing", "is not missing", "and", "or", "not",
    "when else", "chained when else", "yes", "no",
    "round with places", "round without places", "min or max of three or more values",
    "allocate by driver", "allocate equally", "allocate within", "allocate otherwise equally",
    "allocate an amount", "allocate a parameter", "allocate a table", "allocated credit",
    "allocation whose driver uses an allocation",
    "referral with no options", "referral levels", "referral decay", "referral cap", "referral anyway",
    "referral strict",
    "rule when", "rule otherwise", "rule action", "rule reason", "hyphenated label",
    "two rules with the same label", "several classifications", "rule tests an earlier classification",
    "continued after an operator", "continued before an operator", "continued in parentheses",
    "comment between continued lines", "action or reason on the next line", "comment after a statement",
    "number with thousands separators", "percentage with decimals",
]


def _quick_reference() -> str:
    return LANGUAGE[LANGUAGE.index("## Quick reference"):]


def _required_constructs() -> Dict[str, str]:
    """Construct → where the requirement comes from."""
    required = {name: "test_corpus.VARIANTS" for name in VARIANTS}
    for cls in typing.get_args(ast.Expr) + typing.get_args(ast.Statement) + (ast.Field, ast.Rule):
        required[f"node {cls.__name__}"] = "engine/ast.py"
    quick = _quick_reference()
    modes = re.search(r"MODE: ([^\n]+)", quick).group(1).split()
    kinds = re.search(r"TYPE: ([^\n]+)", quick).group(1).split()
    line = re.search(r"rounding MODE to (\S+) (per line\|at end)", quick)
    for mode in modes:
        required[f"rounding mode {mode}"] = "docs/language.md quick reference"
    for unit in line.group(1).split("|"):
        required[f"rounding unit {unit}"] = "docs/language.md quick reference"
    for scope in line.group(2).split("|"):
        required[f"rounding scope {scope}"] = "docs/language.md quick reference"
    for kind in kinds:
        required[f"field type {kind}"] = "docs/language.md quick reference"
    formulas = quick[quick.index("FORMULA:"):quick.index("CONDITION:")]
    for function in set(re.findall(r"\b([a-z_]+)\(", formulas)):
        required[f"function {function}"] = "docs/language.md quick reference"
    conditions = quick[quick.index("CONDITION:"):]
    for op in re.findall(r"\ba (=|!=|<|<=|>|>=) b\b", conditions):
        required[f"comparison {op}"] = "docs/language.md quick reference"
    return required


def _walk(node):
    """Every node under `node` (attrs instances), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
            continue
        if not attrs.has(type(item)) or isinstance(item, ast.Span):
            continue
        yield item
        for attribute in attrs.fields(type(item)):
            value = getattr(item, attribute.name)
            if isinstance(value, tuple) or attrs.has(type(value)):
                stack.append(value)


def _names(node) -> set:
    return {n.name for n in _walk(node) if isinstance(n, ast.Name)}


_TIME_WORDS = {"hour", "hours", "h", "day", "days"}
_OPERATOR_END = re.compile(r"(\+|-|\*|/|=|<|>|,|\(|\b(of|and|or|not|when|else|is|between|per|allocate|by|within"
                           r"|over|referred|via|levels|decay|cap|anyway))$")
_OPERATOR_START = re.compile(r"^(\+|-|\*|/|=|<|>|!=|\)|(of|and|or|when|else|action|reason|by|within|over|via"
                             r"|levels|decay|cap|anyway|strict)\b)")


def constructs_in(tree: ast.Policy, text: str) -> set:
    seen = set()
    lines = text.split("\n")
    statements = tree.statements
    definitions = {d.name: d for s in statements for d in (s.items if isinstance(s, ast.Constants) else (s,))
                   if isinstance(d, ast.Definition)}
    allocations = {name for name, d in definitions.items() if isinstance(d.expr, (ast.Allocate, ast.Referral))}
    tables = {s.name for s in statements if isinstance(s, ast.Table)}
    classifications = [s for s in statements if isinstance(s, ast.Classification)]

    def uses_allocation(expr, seen_names=()) -> bool:
        for name in _names(expr):
            if name in allocations:
                return True
            if name in definitions and name not in seen_names:
                if uses_allocation(definitions[name].expr, seen_names + (name,)):
                    return True
        return False

    if not any(isinstance(s, ast.Rounding) for s in statements):
        seen.add("no rounding line (the default)")
    if len(classifications) >= 2:
        seen.add("several classifications")
    for node in _walk(tree):
        seen.add(f"node {type(node).__name__}")
        if isinstance(node, ast.Header):
            seen.add(f"header {node.key}")
        elif isinstance(node, ast.Rounding):
            seen |= {f"rounding mode {node.mode}", f"rounding unit {node.unit}", f"rounding scope {node.scope}"}
        elif isinstance(node, ast.Record):
            if not any(f.key for f in node.fields) and any(f.name == "id" for f in node.fields):
                seen.add("key field named id, not marked key")
        elif isinstance(node, ast.Field):
            seen.add(f"field type {node.type}")
            for option in ("description", "key", "optional", "default", "column"):
                if getattr(node, option) not in (None, False):
                    seen.add(f"field option {option}")
            if node.default is not None:
                seen.add(f"default of {type(node.default).__name__}")
                if node.type == "money" and isinstance(node.default, ast.Number) and node.default.value == 0:
                    seen.add("default money 0 without a currency")
                value = getattr(node.default, "value", getattr(node.default, "amount", None))
                if isinstance(value, Decimal) and value < 0:
                    seen.add("negative default")
        elif isinstance(node, ast.Constants):
            seen.add(f"{node.keyword} section")
            for item in node.items:
                if _names(item.expr) & set(definitions):
                    seen.add("parameter from other parameters")
        elif isinstance(node, ast.Definition):
            seen.add(node.kind)
            later = [definitions[n] for n in _names(node.expr) if n in definitions]
            if any(d.span.line > node.span.line for d in later):
                seen.add("figure used before it is defined")
            if isinstance(node.expr, ast.Allocate) and node.kind == "credit":
                seen.add("allocated credit")
        elif isinstance(node, ast.Rate):
            seen.add(f"rate of {type(node.quantity).__name__}")
            seen.add(f"rate per {node.per}" if node.per in _TIME_WORDS else "rate per counted thing")
        elif isinstance(node, ast.Pool):
            seen.add("pool over hours" if node.unit in ("hour", "hours", "h") else
                     "pool over days" if node.unit in ("day", "days") else "pool over counted things")
        elif isinstance(node, ast.Name) and node.name in ("costs", "credits"):
            seen.add(f"total {node.name}")
        elif isinstance(node, ast.Binary):
            seen.add(f"operator {node.op}")
        elif isinstance(node, ast.Negate):
            seen.add("unary minus")
        elif isinstance(node, ast.Compare):
            seen.add(f"comparison {node.op}")
        elif isinstance(node, ast.Between):
            seen.add("is not between" if node.negated else "is between")
        elif isinstance(node, ast.IsMissing):
            seen.add("is not missing" if node.negated else "is missing")
        elif isinstance(node, ast.Logical):
            seen.add(node.op)
        elif isinstance(node, ast.Not):
            seen.add("not")
        elif isinstance(node, ast.Conditional):
            seen.add("chained when else" if isinstance(node.otherwise, ast.Conditional) else "when else")
        elif isinstance(node, ast.YesNo):
            seen.add("yes" if node.value else "no")
        elif isinstance(node, ast.Call):
            seen.add(f"function {node.function}")
            if node.function == "round":
                seen.add("round with places" if len(node.args) == 2 else "round without places")
            if node.function in ("min", "max") and len(node.args) >= 3:
                seen.add("min or max of three or more values")
        elif isinstance(node, ast.Allocate):
            seen.add("allocate by driver" if node.driver is not None else "allocate equally")
            if node.within:
                seen.add("allocate within")
            if node.fallback_equal:
                seen.add("allocate otherwise equally")
            if isinstance(node.pool, ast.Money):
                seen.add("allocate an amount")
            elif isinstance(node.pool, ast.Name):
                seen.add("allocate a table" if node.pool.name in tables else "allocate a parameter")
            if node.driver is not None and uses_allocation(node.driver):
                seen.add("allocation whose driver uses an allocation")
        elif isinstance(node, ast.Referral):
            options = {"referral levels": node.levels != 1, "referral decay": node.decay != 100,
                       "referral cap": node.cap is not None, "referral anyway": node.anyway_flag is not None,
                       "referral strict": node.strict}
            seen |= {name for name, present in options.items() if present}
            if not any(options.values()):
                seen.add("referral with no options")
        elif isinstance(node, ast.Rule):
            seen.add("rule when" if node.condition is not None else "rule otherwise")
            seen |= {f"rule {t}" for t in ("action", "reason") if getattr(node, t) is not None}
            if "-" in node.label:
                seen.add("hyphenated label")
            if last_line(node.span, lines) > node.span.line:
                seen.add("action or reason on the next line")
    for classification in classifications:
        labels = [r.label for r in classification.rules]
        if len(set(labels)) < len(labels):
            seen.add("two rules with the same label")
        earlier = {c.name for c in classifications[:classifications.index(classification)]}
        if any(_names(r.condition) & earlier for r in classification.rules if r.condition is not None):
            seen.add("rule tests an earlier classification")
    for statement in statements:
        if isinstance(statement, ast.Record):
            continue
        span = statement.span
        end = last_line(span, lines)
        if end > span.line and not isinstance(statement, (ast.Constants, ast.Classification, ast.Table)):
            body = lines[span.line - 1:end]
            if any(not _code(line).strip() for line in body):
                seen.add("comment between continued lines")
            code = [_code(line).strip() for line in body if _code(line).strip()]
            for before, after in zip(code, code[1:]):
                if _OPERATOR_END.search(before):
                    seen.add("continued after an operator")
                elif _OPERATOR_START.search(after):
                    seen.add("continued before an operator")
                if before.count("(") > before.count(")"):
                    seen.add("continued in parentheses")
    for line in lines:
        code = _code(line)
        if code.strip() and line[len(code):].lstrip().startswith("#"):
            seen.add("comment after a statement")
        if re.search(r"\b\d{1,3}(,\d{3})+(\.\d+)?\b", code) and '"' not in code:
            seen.add("number with thousands separators")
        if re.search(r"\b\d+\.\d+%", code):
            seen.add("percentage with decimals")
    return seen


def _loads(path: Path) -> bool:
    _, expects = read_corpus_file(path.read_text(encoding="utf-8"))
    return not any(e.kind == "error" for e in expects)


def test_corpus_covers_every_construct_of_the_language() -> None:
    required = _required_constructs()
    seen: Dict[str, List[str]] = {}
    for path in FILES:
        if not _loads(path):
            continue  # a construct counts where it is run, not only refused
        text = path.read_text(encoding="utf-8")
        for construct in constructs_in(parse(text, str(path)), text):
            seen.setdefault(construct, []).append(str(path.relative_to(CORPUS)))
    missing = sorted(name for name in required if name not in seen)
    assert not missing, "constructs with no example in a corpus policy that loads:\n" + "\n".join(
        f"  {name}  (required by {required[name]})" for name in missing)


# ---- ... every rule of the grammar ...


def _grammar_alternatives():
    """(node name, pattern over a tree node's children, description) for each alternative
    of the grammar that shows as a node of the parse tree. A child is written `T:TOKEN`
    or `R:node`, so `cost NAME = allocation` is told apart from `cost NAME = expr`."""
    parser = lark_parser()
    by_origin: Dict[str, list] = {}
    for rule in parser.rules:
        by_origin.setdefault(rule.origin.name, []).append(rule)

    def inlined(rule) -> bool:  # `?sum: product` leaves no node of its own
        return rule.options.expand1 and rule.alias is None and len(rule.expansion) == 1

    def atoms(name: str, seen: tuple = ()) -> set:
        """What a rule can leave in its parent's children."""
        found = set()
        for rule in by_origin[name]:
            if not inlined(rule):
                found.add(f"R:{rule.alias or name}")
            elif rule.expansion[0].is_term:
                found.add(f"T:{rule.expansion[0].name}")
            elif rule.expansion[0].name not in seen:
                found |= atoms(rule.expansion[0].name, seen + (name,))
        return found

    def pattern(symbols) -> str:
        out = []
        for symbol in symbols:
            if symbol.is_term:
                if not symbol.filter_out and not symbol.name.startswith("_"):  # keywords stay out of the tree
                    out.append(f"T:{symbol.name} ")
            elif symbol.name.startswith("__"):  # a repetition (`x*`): any number of its items
                items = next(r.expansion for r in by_origin[symbol.name] if symbol not in r.expansion)
                out.append(f"(?:{pattern(items)})*")
            else:
                out.append("(?:" + "|".join(re.escape(a + " ") for a in sorted(atoms(symbol.name))) + ")")
        return "".join(out)

    alternatives = []
    for rule in parser.rules:
        name, symbols = rule.origin.name, list(rule.expansion)
        if name.startswith("_") or inlined(rule):
            continue
        node = rule.alias or name
        # `x*` is two alternatives, with and without the repetition: one construct, matched by the first
        repeated = [r for r in by_origin[name] if (r.alias or name) == node and len(r.expansion) == len(symbols) + 1
                    and [s for s in r.expansion if not s.name.startswith("__")] == symbols
                    and any(s.name.startswith("__") for s in r.expansion)]
        if repeated:
            continue
        shown = " ".join(s.name for s in symbols if not s.name.startswith("_") or s.name.startswith("__"))
        alternatives.append((node, re.compile(pattern(symbols)), f"{node}: {shown}" if shown else f"{node}: (empty)"))
    return alternatives


def _signature(tree) -> str:
    from lark import Token
    return "".join(f"T:{c.type} " if isinstance(c, Token) else f"R:{c.data} " for c in tree.children)


def test_corpus_covers_every_rule_of_the_grammar() -> None:
    import lark

    alternatives = _grammar_alternatives()
    parser = lark_parser()
    terminals = {t.name for t in parser.terminals if not t.name.startswith("_") and t.name != "COMMENT"}
    comparisons = set(re.findall(r'"([^"]+)"', re.search(r"^COMPARE:(.*)$", GRAMMAR, re.M).group(1)))
    seen_alternatives, seen_terminals, seen_comparisons = set(), set(), set()
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        try:
            tree = parser.parse(text)
        except lark.exceptions.LarkError:
            continue  # a file of syntax errors
        for token in parser.lex(text):  # keywords are left out of the tree, so the tokens are counted here
            seen_terminals.add(token.type)
            if token.type == "COMPARE":
                seen_comparisons.add(token.value)
        for node in tree.iter_subtrees():
            signature = _signature(node)
            matched = [a for a in alternatives if a[0] == node.data and a[1].fullmatch(signature)]
            assert matched or not any(a[0] == node.data for a in alternatives), \
                f"{path}: no grammar alternative of {node.data} matches {signature}"
            seen_alternatives.update(a[2] for a in matched)
    missing = sorted({a[2] for a in alternatives} - seen_alternatives)
    missing += sorted(f"terminal {t}" for t in terminals - seen_terminals)
    missing += sorted(f"comparison {c}" for c in comparisons - seen_comparisons)
    assert not missing, "grammar rules with no example in the corpus:\n" + "\n".join(f"  {m}" for m in missing)


# ---- ... and every diagnostic code.


def test_corpus_expects_every_diagnostic_code() -> None:
    documented = set(re.findall(r"^### ([a-z][a-z-]*)\s*$", ERRORS, re.M))
    assert documented, "docs/errors.md lists the codes under `### code` headings"
    expected: Dict[str, set] = {}
    for path in FILES:
        _, expects = read_corpus_file(path.read_text(encoding="utf-8"))
        for expect in expects:
            if expect.kind in ("error", "warning"):
                expected.setdefault(expect.kind, set()).add(diagnostic_claim(expect).code)
    missing = sorted(documented - set(EXEMPT_CODES) - expected.get("error", set()) - expected.get("warning", set()))
    assert not missing, "diagnostic codes of docs/errors.md that no corpus file expects: " + ", ".join(missing)
    assert "unreachable" in expected.get("warning", set()), "the warning `unreachable` has no example"
    stale = sorted(set(EXEMPT_CODES) - documented)
    assert not stale, f"EXEMPT_CODES names codes docs/errors.md no longer lists: {stale}"
