"""The `profit` command end to end: formats, exit codes, bad records, atomic output, stdin."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli

ROOT = Path(__file__).resolve().parent.parent
STANDARD = str(ROOT / "policies" / "standard.policy")
STRICT = str(ROOT / "policies" / "strict.policy")
CUSTOMERS = str(ROOT / "examples" / "customers.csv")
BAD = str(ROOT / "examples" / "bad_customers.csv")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok(capsys):
    code, out, _ = run(capsys, "check", STANDARD, STRICT)
    assert code == 0
    assert out.splitlines() == [f"{STANDARD}: ok", f"{STRICT}: ok"]


def test_check_reports_every_error_and_exits_1(tmp_path, capsys):
    policy = tmp_path / "bad.policy"
    policy.write_text('policy "bad"\ncurrency EUR\nrecord c\n  id text key\n  revenue money\n'
                      "cost a = revnue * 2\ncost b = revenue + 5%\nclassify class\n  ok when a > 0 EUR\n")
    code, out, _ = run(capsys, "check", str(policy))
    assert code == 1
    assert "unknown name 'revnue'" in out and "did you mean 'revenue'?" in out
    assert "cannot add money and a percentage" in out
    assert "no `otherwise` rule" in out
    assert f"{policy}:6:10" in out  # file:line:col
    assert "3 errors" in out


def test_check_json(tmp_path, capsys):
    policy = tmp_path / "bad.policy"
    policy.write_text('policy "bad"\ncurrency EUR\nrecord c\n  id text key\ncost a = b\nclassify k\n  x otherwise\n')
    code, out, _ = run(capsys, "check", "--format", "json", str(policy))
    assert code == 1
    report = json.loads(out)
    assert report[0]["ok"] is False
    assert [d["code"] for d in report[0]["diagnostics"]] == ["unknown-name"]
    assert report[0]["diagnostics"][0]["line"] == 5


def test_run_json_one_object_per_record_in_order(capsys):
    code, out, err = run(capsys, "run", STANDARD, CUSTOMERS, "--format", "json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    with open(CUSTOMERS, newline="") as stream:
        ids = [row["id"] for row in csv.DictReader(stream)]
    assert [line["id"] for line in lines] == ids
    first = lines[0]
    assert set(first) >= {"id", "class", "action", "rule", "figures"}
    for value in first["figures"].values():
        assert isinstance(value, str)  # exact decimal strings, never JSON floats
    assert "600 records in = 600 decisions + 0 errors out" in err


def test_run_bad_records_exit_2_and_nothing_dropped(capsys):
    code, out, err = run(capsys, "run", STANDARD, BAD, "--format", "json")
    assert code == 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 9
    errors = [line for line in lines if "error" in line]
    assert [e["id"] for e in errors] == ["C-9002", "C-9003", "C-9004", "C-9006", "C-9007", "C-9008"]
    assert errors[0]["row"] == 2 and errors[0]["field"] == "cost_of_goods"
    assert "9 records in = 3 decisions + 6 errors out" in err


def test_run_csv(capsys):
    code, out, _ = run(capsys, "run", STANDARD, BAD, "--format", "csv")
    assert code == 2
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 9
    assert rows[0]["class"] == "profitable" and rows[0]["error"] == ""
    assert rows[1]["error"].startswith("field 'cost_of_goods'")
    assert "profit" in rows[0] and "service_tier" in rows[0]


def test_run_table_has_summary_per_class(capsys):
    code, out, _ = run(capsys, "run", STANDARD, BAD)
    assert code == 2
    assert "9 records in = 3 decisions + 6 errors out" in out
    assert "errors (6):" in out
    summary = [line.split() for line in out.splitlines() if line.startswith("profitable ")]
    assert summary and summary[-1][1] == "3"


def test_invalid_policy_exit_1(tmp_path, capsys):
    policy = tmp_path / "p.policy"
    policy.write_text("policy \"x\"\n")
    code, out, err = run(capsys, "run", str(policy), CUSTOMERS)
    assert code == 1 and out == "" and "error" in err


def test_output_file_written_whole(tmp_path, capsys):
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "run", STANDARD, CUSTOMERS, "--format", "json", "--output", str(target))
    assert code == 0 and out == ""
    assert len(target.read_text().splitlines()) == 600
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_output_file_untouched_when_run_fails(tmp_path, capsys, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")

    def explode(*args, **kwargs):
        yield from ()
        raise OSError("disk on fire")

    monkeypatch.setattr("engine.policy.evaluate_rows", explode)
    code, _, err = run(capsys, "run", STANDARD, CUSTOMERS, "--format", "json", "--output", str(target))
    assert code == 1 and "disk on fire" in err
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary left behind


def test_json_and_jsonl_inputs(tmp_path, capsys):
    rows = [{"id": "A", "revenue": 1000, "cost_of_goods": "700.00", "orders": 2},
            {"id": "B", "revenue": "x", "cost_of_goods": 1, "orders": 1}]
    (tmp_path / "in.json").write_text(json.dumps(rows))
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for name in ("in.json", "in.jsonl"):
        code, out, _ = run(capsys, "run", STANDARD, str(tmp_path / name), "--format", "json")
        lines = [json.loads(line) for line in out.splitlines()]
        assert code == 2
        assert lines[0]["id"] == "A" and "class" in lines[0]
        assert lines[1]["id"] == "B" and "revenue" in lines[1]["error"]


def test_explain_one_and_json(capsys):
    code, out, _ = run(capsys, "explain", STANDARD, CUSTOMERS, "--id", "C-1021")
    assert code == 0
    assert out.startswith("C-1021  liability")
    assert "rule 1 liability" in out and "yes:" in out
    code, out, _ = run(capsys, "explain", STANDARD, CUSTOMERS, "--id", "C-1021", "--format", "json")
    data = json.loads(out)
    assert data["outcomes"][0]["label"] == "liability"
    code, _, err = run(capsys, "explain", STANDARD, CUSTOMERS, "--id", "NOPE")
    assert code == 1 and "no record with id 'NOPE'" in err


@pytest.mark.parametrize("command", ["check", "run", "explain"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_stdin_pipeline_through_installed_command():
    """`profit run POLICY -` in a real shell pipeline: data in on stdin, clean data out."""
    profit = Path(sys.executable).parent / "profit"
    data = Path(BAD).read_bytes()
    result = subprocess.run([str(profit), "run", STANDARD, "-", "--format", "csv"], input=data,
                            capture_output=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    assert len(rows) == 9
    assert b"records in" not in result.stdout  # the summary goes to stderr, never into piped data
    assert b"9 records in = 3 decisions + 6 errors out" in result.stderr
    assert b"\r" not in result.stderr  # no progress line when stderr is not a terminal


def test_progress_shown_only_on_a_terminal_after_two_seconds(monkeypatch, capsys):
    clock = iter([0.0, 0.0, 3.0, 3.1, 4.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True)
    progress = cli._Progress()
    progress.update(256, 1)  # at 0 s: too early
    progress.update(512, 1)  # at 3 s: shown
    progress.finish()
    err = capsys.readouterr().err
    assert "512 records" in err and "1 errors" in err and "256 records" not in err


def test_check_reports_both_unknown_names_in_one_formula_and_label_typos(tmp_path, capsys):
    policy = tmp_path / "p.policy"
    policy.write_text('policy "x"\ncurrency EUR\nrecord c\n  id text key\n  revenue money\n'
                      'measure m = profit / revenu\nclassify class\n  good when revenue > 0 EUR\n  bad otherwise\n'
                      'classify tier\n  gold when class = "godo"\n  plain otherwise\n')
    code, out, _ = run(capsys, "check", str(policy))
    assert code == 1
    assert "unknown name 'profit'" in out and "did you mean 'revenue'?" in out
    assert "'class' never gives the label \"godo\"" in out and "did you mean 'good'?" in out


def test_output_file_gets_the_usual_permissions(tmp_path, capsys):
    target = tmp_path / "out.csv"
    umask = os.umask(0o022)
    try:
        assert cli.main(["run", STANDARD, BAD, "--format", "csv", "--output", str(target)]) == 2
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644
