"""Bounded fuzzing (issue 9): mutated shipped policies and mutated generated records.

Loading and checking a policy ends in a Policy or a PolicyError; evaluating a batch yields a
Decision or a RecordError for every record read, and explaining a decision gives its text;
nothing else is raised, and each step ends within a time bound. The `profit` command, given
the same records as files with mutated bytes, exits 0, 1 or 2 and never with a traceback.

`make test` runs a bounded number of examples, each test within a wall-clock budget;
`make fuzz` runs many more, with longer bounds. Environment:

    FUZZ_EXAMPLES     examples per test (default 1000)
    FUZZ_DEADLINE_MS  hypothesis deadline per example (default 5000)
    FUZZ_STEP_S       the most one load, run or explanation may take (default 10)
    FUZZ_BUDGET_S     wall clock for each fuzz test (default 15; three of them); past it, the
                      test's remaining examples are skipped

Every crash found becomes a regression case in tests/test_bad_inputs.py. While one is not
fixed, it is listed in KNOWN with a probe that reproduces it: an example that ends in that
very crash (the same exception from the same function) is rejected, so that the fuzzers look
for new ones, and once the probe no longer crashes the entry has no effect.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, event, given, note, reject, settings
from hypothesis import strategies as st

from engine import Decision, Policy, PolicyError, RecordError, cli, load_policy
from engine.records import RecordSource

try:  # a record file refused as a whole, with one message (issue 9 adds it)
    from engine.records import InputError
    INPUT_ERRORS: Tuple[type, ...] = (InputError,)
except ImportError:  # pragma: no cover - before it lands
    INPUT_ERRORS = ()

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from generate_customers import COLUMNS, PORTFOLIO_COLUMNS, generate, generate_portfolio  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
DEADLINE_MS = int(os.environ.get("FUZZ_DEADLINE_MS", "5000"))
STEP_S = float(os.environ.get("FUZZ_STEP_S", "10"))
BUDGET_S = float(os.environ.get("FUZZ_BUDGET_S", "15"))

POLICY_FILES = sorted((ROOT / "policies").glob("*.policy"))
POLICIES: Dict[str, str] = {path.stem: path.read_text(encoding="utf-8") for path in POLICY_FILES}
LOADED: Dict[str, Policy] = {name: load_policy(path) for name, path in zip(POLICIES, POLICY_FILES)}
# every column of every shipped policy; lifecycle.policy reads each row as a customer's one quarter
SAMPLE = [dict(row, period="2026Q4") for row in generate_portfolio(40, seed=2026)]

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(milliseconds=DEADLINE_MS),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)

_STARTED: Dict[str, float] = {}
_FAILED: set = set()


def out_of_budget(test: str) -> bool:
    """Whether the test's wall-clock budget is spent (its first example starts the clock); never
    once an example has failed, so that hypothesis can shrink and replay the failure."""
    start = _STARTED.setdefault(test, time.monotonic())
    return test not in _FAILED and time.monotonic() - start > BUDGET_S


def budgeted(test: str):
    """Run the decorated example unless the test's budget is spent; remember a failure. A crash
    already caught by a regression case (KNOWN, while it still reproduces) rejects the example,
    so that the fuzzer goes on looking for new ones."""
    def decorate(function):
        @functools.wraps(function)
        def example(*args, **kwargs):
            if out_of_budget(test):
                return
            try:
                function(*args, **kwargs)
            except Exception as error:
                case = known_crash(error)
                if case is not None:
                    event(f"rejected: the known crash of case {case}")
                    reject()
                _FAILED.add(test)
                raise
            except BaseException:
                _FAILED.add(test)
                raise
        return example
    return decorate


# ---- crashes found and not fixed yet ------------------------------------------------------


class Known:
    """A crash the fuzzers found, with its regression case in tests/test_bad_inputs.py: the
    exception and the function it is raised in, and a probe that raises it while it is not fixed."""

    def __init__(self, case: str, error: type, where: str, probe: Callable[[], Any]) -> None:
        self.case, self.error, self.where, self.probe = case, error, where, probe

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.error) and innermost(error) == self.where

    def reproduces(self) -> bool:
        try:
            self.probe()
        except Exception as error:  # noqa: BLE001 - the probe's crash is what is asked about
            return self.matches(error)
        return False


def innermost(error: BaseException) -> str:
    """`file.py:function` of the frame that raised `error`."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else ""


# Each crash the fuzzer finds becomes a case in tests/test_bad_inputs.py (first expected to fail)
# and a Known here, so that the fuzzer goes on past it until it is fixed. Fixed since, with their
# cases passing: jsonl-400-digit-integer (records._show), policy-allocated-pool-past-int64 and
# policy-allocated-pool-of-401-digits (allocation.py share_out), json(l)-number-with-a-20-digit-exponent
# (readers/jsonfile.py).
KNOWN: List[Known] = []


def known_crash(error: BaseException) -> Optional[str]:
    return next((known.case for known in KNOWN if known.matches(error)), None)


class StepTooSlow(BaseException):
    """A step ran past FUZZ_STEP_S (a BaseException, so that no `except Exception` in the engine hides it)."""


def timed(what: str, function: Callable[[], Any]) -> Any:
    """`function()`, failed if it runs longer than FUZZ_STEP_S (stopped by a timer if it hangs)."""
    def expire(signum, frame):
        raise StepTooSlow(f"{what}: still running after {STEP_S} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, STEP_S)
    start = time.monotonic()
    try:
        return function()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        elapsed = time.monotonic() - start
        assert elapsed <= STEP_S, f"{what} took {elapsed:.1f} s"


# ---- what every outcome must be ----------------------------------------------------------


def load_or_refuse(text: str):
    """Load and check: a Policy, or a PolicyError whose every diagnostic renders."""
    def load():
        try:
            return load_policy(text, filename="fuzzed.policy")
        except PolicyError as error:
            assert error.diagnostics, "a PolicyError without a diagnostic"
            str(error)
            json.dumps([d.as_dict() for d in error.diagnostics])
            return error
    return timed("load_policy", load)


def decide_all(policy: Policy, records, expected: Optional[int] = None) -> Optional[Tuple[int, int]]:
    """Evaluate and explain a batch: every result a Decision (explained) or a RecordError, and
    records in = decisions + errors out. Returns (decisions, errors); None when a record file is
    refused as a whole (an InputError, where the engine has one) before any result."""
    results: List[Any] = []

    def read() -> Any:
        run = policy.run(records)
        for result in run:
            results.append(result)
        return run
    try:
        run_ = timed("policy.run", read)
    except INPUT_ERRORS as error:
        if not isinstance(records, RecordSource) or results:
            raise AssertionError(f"{type(error).__name__} after {len(results)} results: {error}") from error
        note(f"refused as a whole: {error}")
        return None
    decisions = errors = 0
    for result in results:
        if isinstance(result, Decision):
            decisions += 1
            timed("explain", lambda: str(result.explain()))
            json.dumps(result.as_dict(), ensure_ascii=False)
        elif isinstance(result, RecordError):
            errors += 1
            str(result)
            json.dumps(result.as_dict(), ensure_ascii=False)
        else:
            pytest.fail(f"policy.run gave {type(result).__name__}: {result!r}")
    summary = run_.summary
    summary.line()
    summary.pool_lines()
    assert (summary.records, summary.decisions, len(summary.errors)) == (len(results), decisions, errors)
    if expected is not None:
        assert len(results) == expected, f"{expected} records in, {len(results)} results out"
    return decisions, errors


# ---- mutated policies --------------------------------------------------------------------

KEYWORDS = ["policy", "version", "currency", "rounding", "rank", "by", "record", "rates", "parameters", "cost",
            "credit", "measure", "threshold", "classify", "when", "otherwise", "else", "action", "reason", "and",
            "or", "not", "is", "between", "of", "per", "to", "allocate", "within", "equally", "pool", "over",
            "table", "referred", "via", "levels", "decay", "cap", "anyway", "strict", "key", "optional", "default",
            "column", "missing", "yes", "no", "text", "money", "count", "hours", "days", "percent", "number",
            "date", "yes/no", "EUR", "USD", "XXX", "costs", "credits", "profit", "revenue"]
OPERATORS = ["+", "-", "*", "/", "(", ")", "((", "))", "=", "==", "!=", "<", "<=", ">", ">=", ",", "%", '"', "#",
             ".", ":", "\t", "\n", "\n  ", "\r", "\f", "\\", "\ufeff", "\x00", "é", "€", "\u202e", "\u00a0", "'"]
NUMBERS = ["0", "-1", "-0", "1", "9" * 40, "9" * 400, "0." + "0" * 60 + "1", "0.001", "1,000,000", "12,34",
           "1e999", "100%", "1000%", "-5%", "0%", "0.5", "-999999999999"]
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?%?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

tokens = st.one_of(st.sampled_from(KEYWORDS), st.sampled_from(OPERATORS), st.sampled_from(NUMBERS),
                   st.text(max_size=6))


@st.composite
def mutated_policies(draw) -> Tuple[str, str]:
    name = draw(st.sampled_from(sorted(POLICIES)))
    lines = POLICIES[name].split("\n")
    done = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "insert", "truncate", "number",
                                     "number", "word"]))
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "insert":
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(tokens) + line[at:]
        elif kind == "truncate":
            at = draw(st.integers(0, len(line)))
            lines = lines[:i] + [line[:at]]
        else:
            pattern = _NUMBER if kind == "number" else _WORD
            text = "\n".join(lines)
            found = list(pattern.finditer(text))
            if found:
                match = draw(st.sampled_from(found))
                new = draw(st.sampled_from(NUMBERS) if kind == "number" else tokens)
                lines = (text[:match.start()] + new + text[match.end():]).split("\n")
        done.append(f"{kind} at line {i + 1}")
    note(f"{name}: {', '.join(done)}")
    text = "\n".join(lines)
    return name, text if "\n" in text else text + "\n"  # text without a line break is a path to load_policy


@FUZZ
@given(mutated_policies())
@budgeted("policies")
def test_a_mutated_policy_loads_or_is_refused_and_then_decides_every_record(mutated):
    name, text = mutated
    outcome = load_or_refuse(text)
    assert isinstance(outcome, (Policy, PolicyError)), type(outcome)
    event("refused: " + outcome.diagnostics[0].code if isinstance(outcome, PolicyError) else "loaded")
    if isinstance(outcome, Policy):
        counts = decide_all(outcome, [dict(row) for row in SAMPLE[:12]], expected=12)
        event("every record decided" if counts == (12, 0) else "some record errors")


# ---- mutated records ---------------------------------------------------------------------

WEIRD_TEXT = ["", " ", "\t", "9" * 39, "9" * 41, "9" * 5000, "1" + "0" * 400, "1" + "0" * 4000, "1e999999999", "-1e-999999999",
              "0." + "0" * 60 + "1", "-0", "+5", "NaN", "-Infinity", "sNaN", "1,234.50", "12,34", "1.000.000,00",
              "1_000", "0x10", "EUR 5", "5 EUR", "5 USD", "5 XXX", "5%", "5 %", "%", "１２３", "٣٤", "−5", "\x00",
              "1\x00", "\x1b[31m1", "\r\n", "\n", '"', "'", "=1+1", "@SUM(A1)", "\u202e", "\ufeff1", "yes", "no",
              "true", "2026-02-30", "C-1001", "None", "null", "[]", "{}"]

HUGE_INTS = [10 ** 39, 10 ** 40, -(10 ** 40), 10 ** 300, 10 ** 400, -(10 ** 400), 10 ** 4000]

cell_values = st.one_of(
    st.sampled_from(WEIRD_TEXT),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Nd", "Sc", "Mn"]), max_size=6),
    st.from_regex(r"-?\d{1,60}(\.\d{1,60})?", fullmatch=True),
    st.integers(-(10 ** 45), 10 ** 45),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.decimals(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
odd_records = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))


@st.composite
def mutated_batches(draw) -> Tuple[str, List[Any]]:
    """A shipped policy's name and generated records with a few mutations."""
    name = draw(st.sampled_from(sorted(LOADED)))
    portfolio = LOADED[name].is_portfolio or draw(st.booleans())
    count = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2 ** 16))
    columns = PORTFOLIO_COLUMNS if portfolio else COLUMNS
    records: List[Any] = [dict(row) for row in (generate_portfolio if portfolio else generate)(count, seed=seed)]
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, count - 1))
        kind = draw(st.sampled_from(["cell", "cell", "cell", "cell", "drop", "duplicate-id", "record"]))
        record = records[index]
        if not isinstance(record, dict):
            continue
        column = draw(st.sampled_from(columns))
        if kind == "cell":
            record[column] = draw(cell_values)
        elif kind == "drop":
            record.pop(column, None)
        elif kind == "duplicate-id":
            record["id"] = records[0].get("id") if isinstance(records[0], dict) else "C-1001"
        else:
            records[index] = draw(odd_records)
    return name, records


def as_csv(records: List[Any], columns) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # lines end in CRLF, so a cell with a CR or an LF in it is quoted
    writer.writerow(columns)
    for record in records:
        if isinstance(record, dict):
            writer.writerow(["" if record.get(c) is None else str(record.get(c)) for c in columns])
        else:
            writer.writerow([str(record)])
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    return str(value)


def as_json_lines(records: List[Any]) -> str:
    return "".join(json.dumps(record, default=_json_default) + "\n" for record in records)


@FUZZ
@given(mutated_batches(), st.sampled_from(["memory", "csv", "jsonl", "json"]))
@budgeted("records")
def test_mutated_records_each_end_in_a_decision_or_a_record_error(batch, route):
    name, records = batch
    policy = LOADED[name]
    columns = PORTFOLIO_COLUMNS if any(isinstance(r, dict) and "channel" in r for r in records) else COLUMNS
    if route == "memory":
        decide_all(policy, records, expected=len(records))
    elif route == "csv":  # a row is a record, unless every cell of it is blank
        rows = [r for r in records if isinstance(r, dict)]
        blank = sum(all(v is None or not str(v).strip() for v in (r.get(c) for c in columns)) for r in rows)
        with RecordSource(io.StringIO(as_csv(rows, columns), newline=""), "csv", "fuzzed.csv") as source:
            decide_all(policy, source, expected=len(rows) - blank)
    elif route == "jsonl":
        with RecordSource(io.StringIO(as_json_lines(records)), "jsonl", "fuzzed.jsonl") as source:
            decide_all(policy, source, expected=len(records))
    else:
        text = json.dumps(records, default=_json_default)
        with RecordSource(io.StringIO(text), "json", "fuzzed.json") as source:
            decide_all(policy, source, expected=len(records))


# ---- the command, over files with mutated bytes ------------------------------------------

BYTES = [b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\xe4", b"\x80", b"\xc3", b"\x00", b"\r", b"\n", b'"', b",", b";",
         b"\t", b"\x1b[2J", b"{", b"]", b"9" * 5000]


@st.composite
def mutated_files(draw) -> Tuple[str, str, bytes]:
    """(policy, extension, file content): generated records as CSV, JSON Lines or JSON, with a few
    bytes inserted or removed anywhere after the first line."""
    name, records = draw(mutated_batches())
    extension = draw(st.sampled_from(["csv", "jsonl", "json"]))
    columns = PORTFOLIO_COLUMNS if LOADED[name].is_portfolio else COLUMNS
    if extension == "csv":
        data = as_csv([r for r in records if isinstance(r, dict)], columns).encode("utf-8")
    elif extension == "jsonl":
        data = as_json_lines(records).encode("utf-8")
    else:
        data = json.dumps(records, default=_json_default).encode("utf-8")
    start = data.find(b"\n") + 1 if extension == "csv" else 0
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(start, len(data)))
        if draw(st.booleans()):
            data = data[:at] + draw(st.one_of(st.sampled_from(BYTES), st.binary(min_size=1, max_size=4))) + data[at:]
        else:
            data = data[:at] + data[at + draw(st.integers(1, 20)):]
    return name, extension, data


@FUZZ
@given(mutated_files(), st.sampled_from(["json", "csv", "table"]))
@budgeted("command")
def test_the_command_over_mutated_files_exits_0_1_or_2_without_a_traceback(mutated, output):
    name, extension, data = mutated
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, f"customers.{extension}")
        with open(path, "wb") as stream:
            stream.write(data)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = timed("profit run", lambda: cli.main(["run", str(ROOT / "policies" / f"{name}.policy"), path,
                                                        "--format", output]))
    text = out.getvalue() + err.getvalue()
    assert code in (0, 1, 2), (code, text[-2000:])
    assert "Traceback" not in text, text[-2000:]
    for match in re.finditer(r"([\d,]+) records? in = ([\d,]+) decisions? \+ ([\d,]+) errors? out", text):
        total, decisions, errors = (int(n.replace(",", "")) for n in match.groups())
        assert total == decisions + errors


def test_the_shipped_policies_and_the_sample_decide_cleanly():
    """The fuzzers' starting points are themselves clean: every shipped policy decides the sample."""
    for name, policy in LOADED.items():
        assert decide_all(policy, [dict(row) for row in SAMPLE], expected=len(SAMPLE)) == (len(SAMPLE), 0), name
