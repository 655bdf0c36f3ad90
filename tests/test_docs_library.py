"""docs/library.md is executable, and docs/language.md lists exactly the built-in functions.

The convention for docs/library.md (also told to readers at its top):

* Every ```python block is run, in document order, from a directory laid out like the
  repository root (`policies/` and `examples/` are the repository's; a file an example
  writes lands in a temporary directory, not in the repository).
* The blocks of one `## ` section share one namespace, so a later block of a section may
  use what an earlier one defined; each section starts afresh.
* A run of whole-line comments (`# ...` on lines of their own, at any indentation) is the
  output that the code above it printed since the previous such run, line for line
  (trailing spaces ignored). A comment line that is just `# ...` stands for any number of
  lines. Everything a block prints must be shown that way, so a remark on the code goes at
  the end of a code line, never on a line of its own, and a `print(...)` line carries no
  end-of-line comment (its output goes on the lines below it).

docs/language.md's built-in functions table must list exactly the functions of
engine/functions.py's FUNCTIONS, each with the registry's arity and summary, and nothing
else in the document may be written as a call of a function the registry does not have.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import io
import re
import tokenize
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import attrs
import pytest

from engine.functions import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "docs" / "library.md"
LANGUAGE = ROOT / "docs" / "language.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
CHECK = "__shown_output__"
ANY_LINES = "..."


# ---- reading library.md --------------------------------------------------------------


@attrs.frozen
class Block:
    line: int  # of the block's first code line in library.md
    code: str


@attrs.frozen
class Section:
    title: str
    blocks: Tuple[Block, ...]


def sections(text: str) -> List[Section]:
    """The `## ` sections of the document with their python blocks, in order (the text
    before the first `## ` heading is a section of its own)."""
    found: List[Section] = []
    title, blocks = "(introduction)", []
    offset = 0
    for part in re.split(r"(?m)^(?=## )", text):
        heading = part.splitlines()[0] if part.startswith("## ") else None
        if heading is not None:
            if blocks or found or title != "(introduction)":
                found.append(Section(title, tuple(blocks)))
            title, blocks = heading[3:].strip(), []
        for match in FENCE.finditer(part):
            line = text.count("\n", 0, offset + match.start(1)) + 1
            blocks.append(Block(line, match.group(1)))
        offset += len(part)
    found.append(Section(title, tuple(blocks)))
    return [s for s in found if s.blocks]


def comment_text(line: str) -> str:
    """`    # 38102.00` → `38102.00`."""
    text = line.lstrip()[1:]
    return text[1:] if text.startswith(" ") else text


def instrument(code: str) -> Tuple[str, List[List[str]]]:
    """The block with each run of whole-line comments replaced by a check of the output
    printed since the previous one (line numbers kept), and the expected lines of each check."""
    lines = code.split("\n")
    out: List[str] = []
    expected: List[List[str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith("#"):
            indent = line[:len(line) - len(line.lstrip())]
            shown = []
            while index < len(lines) and lines[index].lstrip().startswith("#"):
                shown.append(comment_text(lines[index]))
                index += 1
            out.append(f"{indent}{CHECK}({len(expected)})")
            out.extend([""] * (len(shown) - 1))
            expected.append(shown)
            continue
        out.append(line)
        index += 1
    return "\n".join(out), expected


def matches(expected: List[str], actual: List[str]) -> bool:
    """Line for line, where a `...` line stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == ANY_LINES:
        return any(matches(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def commented_prints(code: str) -> List[int]:
    """Lines (1-based, in the block) where `print(...)` has an end-of-line comment."""
    lines: Dict[int, List[tokenize.TokenInfo]] = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        lines.setdefault(token.start[0], []).append(token)
    bad = []
    for number, tokens in lines.items():
        names = [t.string for t in tokens if t.type == tokenize.NAME]
        if "print" in names and tokens[0].type != tokenize.COMMENT and any(t.type == tokenize.COMMENT for t in tokens):
            bad.append(number)
    return bad


class Shown:
    """Captures what a block prints and compares it at each check."""

    def __init__(self, block: Block, expected: List[List[str]]) -> None:
        self.block, self.expected = block, expected
        self.buffer = io.StringIO()

    def take(self) -> List[str]:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return [line.rstrip() for line in text.splitlines()]

    def check(self, number: int) -> None:
        actual = self.take()
        wanted = [line.rstrip() for line in self.expected[number]]
        if not matches(wanted, actual):
            diff = "\n".join(difflib.unified_diff(wanted, actual, "docs/library.md", "printed", lineterm=""))
            raise AssertionError(f"the output shown in the block at docs/library.md line {self.block.line} "
                                 f"(comment run {number + 1}) is not what the code prints:\n{diff}")


DOC_SECTIONS = sections(LIBRARY.read_text(encoding="utf-8"))


@pytest.fixture
def repository_layout(tmp_path, monkeypatch):
    """A working directory that reads like the repository root, where examples may write files."""
    for name in ("policies", "examples"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_document_has_examples():
    assert sum(len(s.blocks) for s in DOC_SECTIONS) >= 15
    titles = [s.title for s in DOC_SECTIONS]
    assert len(titles) == len(set(titles)), "section titles name the tests: keep them unique"


@pytest.mark.parametrize("section", DOC_SECTIONS, ids=[s.title for s in DOC_SECTIONS])
def test_library_examples_run_and_print_what_they_show(section: Section, repository_layout):
    namespace: Dict[str, object] = {"__name__": "__library_doc__"}
    for block in section.blocks:
        bad = commented_prints(block.code)
        assert not bad, (f"docs/library.md line {block.line + bad[0] - 1}: a print line with an end-of-line "
                         f"comment; show its output on the lines below it")
        source, expected = instrument(block.code)
        shown = Shown(block, expected)
        namespace[CHECK] = shown.check
        code = compile("\n" * (block.line - 1) + source, str(LIBRARY), "exec")
        with contextlib.redirect_stdout(shown.buffer):
            exec(code, namespace)
        left = shown.take()
        assert not left, (f"the block at docs/library.md line {block.line} prints lines it does not show:\n"
                          + "\n".join(left))


# ---- the harness itself ---------------------------------------------------------------


def test_a_wrong_shown_output_fails():
    block = Block(1, 'print("right")\n# wrong\n')
    source, expected = instrument(block.code)
    shown = Shown(block, expected)
    with contextlib.redirect_stdout(shown.buffer), pytest.raises(AssertionError, match="not what the code prints"):
        exec(source, {CHECK: shown.check})


def test_output_checks_work_inside_blocks_and_with_any_lines():
    code = "for n in range(4):\n    print(n)\n# 0\n# ...\n# 3\ntry:\n    1 / 0\nexcept ZeroDivisionError as e:\n    print(e)\n    # division by zero\n"
    source, expected = instrument(code)
    shown = Shown(Block(1, code), expected)
    with contextlib.redirect_stdout(shown.buffer):
        exec(source, {CHECK: shown.check})
    assert shown.take() == []
    assert not matches(["0", "...", "9"], ["0", "1", "2"])


def test_a_print_with_an_end_of_line_comment_is_refused():
    assert commented_prints('x = 1\nprint(x)  # 1\nprint("# not a comment")\n') == [2]


# ---- docs/language.md: the built-in functions ------------------------------------------


def _functions_table(text: str) -> List[Tuple[str, str, str]]:
    """(name, arity, summary) for each row of the table under `### Functions`."""
    section = text[text.index("### Functions"):]
    section = section[:section.index("\n## ")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 3 and cells[0].startswith("`"):
            name = re.match(r"`([a-z_]\w*)\(", cells[0])
            assert name, f"a functions table row names no function: {line}"
            rows.append((name.group(1), cells[1], cells[2]))
    return rows


def test_language_md_lists_every_built_in_function_with_its_arity_and_summary():
    rows = _functions_table(LANGUAGE.read_text(encoding="utf-8"))
    assert [name for name, _, _ in rows] == list(FUNCTIONS), "one row per registry function, in its order"
    for name, arity, summary in rows:
        function = FUNCTIONS[name]
        assert arity == function.arity(), f"{name}: the table says {arity!r}, the registry {function.arity()!r}"
        assert summary == function.summary, f"{name}: the table's summary is not the registry's"


def _calls_in_code(text: str) -> Dict[str, int]:
    """Every `name(` written in a code span or in a fenced block that is not Python (a
    method such as `.evaluate(` is not a function of the language), with its line."""
    found: Dict[str, int] = {}
    code: List[Tuple[int, str]] = []
    in_fence: Optional[str] = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            in_fence = None if in_fence is not None else (line[3:].strip() or "text")
            continue
        if in_fence is not None:
            if in_fence != "python":
                code.append((number, line.split("#")[0] if in_fence == "policy" else line))
            continue
        code.extend((number, span) for span in re.findall(r"`([^`]+)`", line))
    for number, snippet in code:
        for name in re.findall(r"(?<![\w.])([a-z_]\w*)\(", snippet):
            found.setdefault(name, number)
    return found


def test_language_md_writes_no_other_function():
    text = LANGUAGE.read_text(encoding="utf-8")
    unknown = {name: line for name, line in _calls_in_code(text).items() if name not in FUNCTIONS}
    assert not unknown, f"docs/language.md writes calls of functions the language does not have: {unknown}"
    quick = text[text.index("## Quick reference"):]
    formulas = quick[quick.index("FORMULA:"):quick.index("CONDITION:")]
    assert set(re.findall(r"\b([a-z_]+)\(", formulas)) == set(FUNCTIONS), "the quick reference lists every function"
    not_reserved = re.search(r"the function names \(([^)]*)\)", text)
    assert not_reserved and set(re.findall(r"`(\w+)`", not_reserved.group(1))) == set(FUNCTIONS)


# ---- the README's library example and the embedding example ------------------------------


def test_the_readme_library_example_runs(repository_layout, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (code,) = FENCE.findall(text)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "600 records in = 600 decisions + 0 errors out"
    assert any(line.startswith('{"id": "C-') or line.startswith("{'id': 'C-") for line in out)


def test_the_approval_workflow_example_runs(tmp_path, capsys):
    import runpy

    workflow = runpy.run_path(str(ROOT / "examples" / "approval_workflow.py"))
    audit = tmp_path / "approvals.jsonl"
    try:
        workflow["main"]([str(audit)])
    finally:
        for handler in list(workflow["audit"].handlers):  # main() removes its own; in case it failed first
            workflow["audit"].removeHandler(handler)
    assert capsys.readouterr().out.splitlines()[-1] == f"2 of 6 requests approved; audit trail in {audit}"
    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert [e["approved"] for e in entries] == [True, True, False, False, False, False]
    assert entries[0]["decision"]["figures"]["profit"] == "316142.00"
    assert entries[-1]["error"]["field"] == "orders"
