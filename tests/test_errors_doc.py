"""docs/errors.md is executable: every example in it is run through the engine here.

The convention (also told to readers at the top of "The examples" in the document):

* A ```policy block is an example. Its text is a fragment of the example policy (the
  one ```policy base block): the fragment's lines are added after the example policy,
  and a `record` or `classify` section in the fragment takes the place of the example
  policy's own, whose lines are left empty so that line numbers stay the same. A block
  whose first line is `# whole policy` stands alone. A line ending in
  `# repeated N times` stands for N copies of itself, with `{n}` counting 1 to N.
* Right after it (nothing but blank lines between), a ```text block is what the
  engine reports for it: `str(PolicyError)`, i.e. what `profit check example.policy`
  prints before its last line; for a policy that loads with warnings, the warnings.
* Or right after it, the records (```json: an object is one record decided alone, an
  array a batch; ```jsonl, ```csv: a file as `profit run` reads it) and then a ```text
  block with each record error, one per line, as `profit run` lists them. With two
  record blocks, the first is a portfolio run whose totals are stored
  (`--save-context`) and the second is decided against them (`--context`).
* A ```policy block with no ```text block after it (a fix) must load with no error
  and no warning; with records after it, every record must be decided.

A mismatch fails with a diff. To accept new wording everywhere at once, after
checking that it is intended:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_errors_doc.py
    git diff docs/errors.md
"""
from __future__ import annotations

import difflib
import functools
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import List, Optional, Tuple

import attrs
import pytest

import engine
from engine.diagnostics import render_all
from golden import UPDATE

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
FILENAME = "example.policy"  # the name the renderings show
DATA_FILE = "customers.json"  # the file a stored context was made from (its label names it)
RECORD_FORMATS = ("json", "jsonl", "csv")
REPEATED = re.compile(r"^(.*?)\s*#\s*repeated\s+(\d[\d,]*)\s+times\s*$")
# Where the engine names a diagnostic's code: `report("code", ...)`, `Diagnostic("code", ...)`,
# the parser's `self.error("code", ...)`, and exceptions that carry a code to be reported,
# such as `ArgumentError("round-places", ...)`: a call whose first argument is a code.
CODE_CALL = re.compile(r"\b(?:report|error|Diagnostic|[A-Z]\w*Error)\(\s*[\"']([a-z][a-z0-9]*(?:-[a-z0-9]+)*)[\"']\s*,")
SHOWN_CODE = re.compile(r"^\S+:\d+:\d+: (?:error|warning)\[([a-z0-9-]+)\]: ", re.M)


# ---- reading the document ------------------------------------------------------------


@attrs.frozen
class Block:
    info: str  # the fence's info string: policy, text, json, ...
    body: str  # without the last line break
    start: int  # line of the opening fence (1-based)
    end: int  # line of the closing fence
    heading: str  # the nearest heading above it, without the #s and backticks


@attrs.frozen
class Example:
    id: str
    policy: Block
    records: Tuple[Block, ...]
    expected: Optional[Block]  # None: a fix, which must be clean

    @property
    def code(self) -> Optional[str]:
        """The diagnostic code whose section this example is in, if any."""
        return self.policy.heading if self.policy.heading in documented_codes() else None


def read_blocks(text: str) -> List[Block]:
    blocks, heading = [], ""
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            info, start = line[3:].strip(), index
            index += 1
            while index < len(lines) and lines[index].rstrip() != "```":
                index += 1
            assert index < len(lines), f"docs/errors.md:{start + 1}: this ``` block is never closed"
            blocks.append(Block(info, "\n".join(lines[start + 1:index]), start + 1, index + 1, heading))
        elif line.startswith("#"):
            heading = line.lstrip("#").strip().strip("`")
        index += 1
    return blocks


def _adjacent(lines: List[str], before: Block, after: Block) -> bool:
    return all(not line.strip() for line in lines[before.end:after.start - 1])


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "top"


def read_examples(text: str) -> Tuple[Block, List[Example]]:
    """The example policy, and every example in document order."""
    blocks = read_blocks(text)
    lines = text.split("\n")
    bases = [b for b in blocks if b.info == "policy base"]
    assert len(bases) == 1, "docs/errors.md must have exactly one ```policy base block (the example policy)"
    examples: List[Example] = []
    used = set()  # the start lines of the blocks that belong to an example
    counts: dict = {}
    for position, block in enumerate(blocks):
        if block.info != "policy":
            continue
        following = []
        for after in blocks[position + 1:]:
            if after.info not in RECORD_FORMATS + ("text",) or not _adjacent(lines, following[-1] if following
                                                                             else block, after):
                break
            following.append(after)
            if after.info == "text":
                break
        records = tuple(b for b in following if b.info in RECORD_FORMATS)
        expected = following[-1] if following and following[-1].info == "text" else None
        used.update(b.start for b in following)
        name = _slug(block.heading) + ("-fix" if expected is None else "")
        counts[name] = counts.get(name, 0) + 1
        examples.append(Example(f"{name}-{counts[name]}", block, records, expected))
    stray = [b for b in blocks if b.info in RECORD_FORMATS + ("text",) and b.start not in used]
    assert not stray, "".join(
        f"\ndocs/errors.md:{b.start}: this ```{b.info} block follows no ```policy block" for b in stray)
    return bases[0], examples


def document() -> Tuple[Block, List[Example]]:
    return read_examples(DOC.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def documented_codes() -> frozenset:
    """The codes the document has a section for: `### code` headings in the chapters of diagnostics."""
    text = DOC.read_text(encoding="utf-8")
    return frozenset(re.findall(r"^### ([a-z][a-z0-9]*(?:-[a-z0-9]+)*)\s*$", text, re.M))


def engine_codes() -> set:
    """Every code the engine can emit, from the calls that report one."""
    found = set()
    for path in sorted((ROOT / "engine").rglob("*.py")):
        found.update(CODE_CALL.findall(path.read_text(encoding="utf-8")))
    return found


# ---- running an example --------------------------------------------------------------


def expand(lines: List[str]) -> List[str]:
    out = []
    for line in lines:
        match = REPEATED.match(line)
        if match:
            out.extend(match.group(1).replace("{n}", str(n)) for n in range(1, int(match.group(2).replace(",", "")) + 1))
        else:
            out.append(line)
    return out


def assemble(fragment: str, base: str) -> str:
    """The whole policy an example stands for."""
    lines = expand(fragment.split("\n"))
    if lines[0].strip() == "# whole policy":
        return "\n".join(lines) + "\n"
    policy = base.split("\n") + [""]
    for section in ("record", "classify"):
        if any(re.match(rf"{section}\s", line) for line in lines):
            inside = False
            for index, line in enumerate(policy):
                if re.match(rf"{section}\s", line):
                    inside = True
                elif line[:1] not in (" ", "\t") or not line.strip():
                    inside = False
                if inside:
                    policy[index] = ""
    return "\n".join(policy + lines) + "\n"


def diagnostics_text(source: str) -> str:
    """What the engine reports for a policy: its errors, or its warnings if it loads."""
    try:
        policy = engine.load_policy(source, filename=FILENAME)
    except engine.PolicyError as error:
        return str(error)
    return render_all(policy.warnings, source)


def _records(block: Block):
    from engine.records import read_records
    return [record for _, record in read_records(io.StringIO(block.body + "\n"), block.info)]


def _stored_context(policy, block: Block):
    """The totals `profit run POLICY customers.json --save-context FILE` stores."""
    from engine.portfolio import PortfolioContext
    stored = policy.evaluate_portfolio(_records(block)).context.as_dict()
    stored["label"] = f"the run over {DATA_FILE}"
    return PortfolioContext.from_dict(json.loads(json.dumps(stored)))


def record_errors_text(policy, records: Tuple[Block, ...]) -> str:
    """Each record error, one per line, as `profit run` lists them."""
    assert 1 <= len(records) <= 2, "an example has one block of records, or a portfolio and one record"
    context = _stored_context(policy, records[0]) if len(records) == 2 else None
    block = records[-1]
    if block.info == "json" and block.body.lstrip().startswith("{"):
        try:
            policy.evaluate(json.loads(block.body, parse_float=Decimal), context)
        except engine.RecordError as error:
            return str(error)
        return ""
    assert context is None, "against a stored context, decide one record (a JSON object)"
    return "\n".join(str(r) for r in policy.evaluate_many(_records(block)) if isinstance(r, engine.RecordError))


def actual_text(example: Example, base: Block) -> str:
    source = assemble(example.policy.body, base.body)
    if not example.records:
        return diagnostics_text(source)
    try:
        policy = engine.load_policy(source, filename=FILENAME)
    except engine.PolicyError as error:
        pytest.fail(f"docs/errors.md:{example.policy.start}: the policy of a record example must be valid:\n{error}")
    return record_errors_text(policy, example.records)


def _where(block: Block) -> str:
    return f"docs/errors.md:{block.start}"


def _diff(expected: str, actual: str, where: str) -> str:
    return "\n".join(difflib.unified_diff(expected.split("\n"), actual.split("\n"), f"{where} (the document)",
                                          "the engine", lineterm=""))


# ---- updating the document (UPDATE_GOLDEN=1) -------------------------------------------


def _update_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    base, examples = read_examples(text)
    lines = text.split("\n")
    for example in reversed([e for e in examples if e.expected is not None]):  # from the end: lines stay put
        block = example.expected
        lines[block.start:block.end - 1] = actual_text(example, base).split("\n")
    DOC.write_text("\n".join(lines), encoding="utf-8", newline="\n")


if UPDATE:
    _update_document()

BASE, EXAMPLES = document()


# ---- the tests -------------------------------------------------------------------------


def test_example_policy_is_valid():
    policy = engine.load_policy(BASE.body + "\n", filename=FILENAME)
    assert policy.warnings == ()


def test_the_document_has_examples():
    assert len([e for e in EXAMPLES if e.expected is not None]) >= len(engine_codes())


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.expected is not None], ids=lambda e: e.id)
def test_example_output_matches_the_document(example):
    actual = actual_text(example, BASE)
    expected = example.expected.body
    if actual != expected:
        pytest.fail(f"the engine's output differs from {_where(example.expected)}:\n"
                    + _diff(expected, actual, _where(example.expected)))
    if example.code is not None and not example.records:
        shown = set(SHOWN_CODE.findall(actual))
        assert example.code in shown, (
            f"{_where(example.policy)}: an example under `{example.code}` must show it; it shows {sorted(shown)}")


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.expected is None], ids=lambda e: e.id)
def test_fix_is_clean(example):
    source = assemble(example.policy.body, BASE.body)
    if not example.records:
        text = diagnostics_text(source)
        assert text == "0 errors, 0 warnings", f"{_where(example.policy)}: the fix still has diagnostics:\n{text}"
        return
    policy = engine.load_policy(source, filename=FILENAME)
    errors = record_errors_text(policy, example.records)
    assert errors == "", f"{_where(example.policy)}: the fixed records still fail:\n{errors}"


def test_engine_codes_are_found():
    """The regex over the engine's source still sees the calls (a sample of known codes)."""
    codes = engine_codes()
    assert {"syntax", "unclosed", "label-space", "duplicate-option", "too-large", "unit", "cycle"} <= codes
    assert len(codes) >= 40


def test_every_code_shown_is_found_in_the_engine_source():
    """If the engine reports a code in a way CODE_CALL does not see, the checks below
    would miss new codes reported that way: widen CODE_CALL."""
    shown = set()
    for example in EXAMPLES:
        if example.expected is not None and not example.records:
            shown.update(SHOWN_CODE.findall(example.expected.body))  # what the engine prints: checked above
    unseen = sorted(shown - engine_codes())
    assert not unseen, f"the engine reports codes that CODE_CALL does not find in engine/: {unseen}"


def test_every_engine_code_is_documented():
    missing = sorted(engine_codes() - documented_codes())
    assert not missing, f"codes the engine can emit that docs/errors.md has no `### code` section for: {missing}"


def test_every_documented_code_exists():
    unknown = sorted(documented_codes() - engine_codes())
    assert not unknown, f"docs/errors.md documents codes the engine never emits: {unknown}"


def test_every_code_is_in_the_index():
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(code for code in engine_codes() if f"[`{code}`](#{code})" not in text)
    assert not missing, f"codes missing from the list under '## Codes' in docs/errors.md: {missing}"


def test_every_code_is_shown_by_an_example():
    shown = set()
    for example in EXAMPLES:
        if example.expected is not None and not example.records:
            shown.update(SHOWN_CODE.findall(example.expected.body))
    missing = sorted(engine_codes() - shown)
    assert not missing, f"codes no example in docs/errors.md shows: {missing}"
