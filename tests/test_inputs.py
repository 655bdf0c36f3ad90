"""Record files as users' systems export them (issue 9): encodings, CSV dialects, spreadsheets,
Parquet, the header checked first, JSON arrays streamed.

Every file is made here, in tmp_path (workbooks by openpyxl and xlsxwriter, Parquet files by
pyarrow). Each case goes through the library, `policy.run(RecordSource.open(path))`, and
through the command, `engine.cli.main([...])`, and asserts records in = decisions + errors
out, the row numbers, and the one message a file that cannot be read gives instead.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from engine import Decision, RecordError, load_policy
from engine import cli
from engine.records import InputError, RecordSource, from_decimal_comma, read_records

ROOT = Path(__file__).resolve().parents[1]
STANDARD = str(ROOT / "policies" / "standard.policy")
PORTFOLIO = str(ROOT / "policies" / "portfolio.policy")

POLICY_TEXT = '''policy "Inputs test"
currency EUR

record customer
  id         text     key
  name       text     optional
  revenue    money
  orders     count
  share      percent  default 5%
  since      date     optional
  vip        yes/no   default no

measure profit = revenue

classify class
  everyone otherwise
'''
POLICY = load_policy(POLICY_TEXT)
USD_POLICY = load_policy(POLICY_TEXT.replace("currency EUR", "currency USD"))
HEADER = "id,name,revenue,orders"


def rows_csv(count: int, start: int = 1, sep: str = ",") -> List[str]:
    return [sep.join([f"C-{n:04d}", f"Customer {n}", f"{n}.50", str(n % 7)]) for n in range(start, start + count)]


def write(path: Path, content) -> str:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def run_source(source: RecordSource, policy=POLICY) -> Tuple[list, object]:
    run = policy.run(source)
    results = list(run)
    return results, run.summary


def run_file(path: str, policy=POLICY, **options) -> Tuple[list, object, RecordSource]:
    with RecordSource.open(path, **options) as source:
        results, summary = run_source(source, policy)
    return results, summary, source


def balanced(results: list, summary, records: int, decisions: int, errors: int) -> None:
    """records in = decisions + errors out, in the results and in the summary alike."""
    assert decisions + errors == records
    assert len(results) == summary.records == records
    assert sum(isinstance(r, Decision) for r in results) == summary.decisions == decisions
    assert sum(isinstance(r, RecordError) for r in results) == len(summary.errors) == errors


def errors_of(results: list) -> List[RecordError]:
    return [r for r in results if isinstance(r, RecordError)]


@pytest.fixture
def policy_file(tmp_path) -> str:
    return write(tmp_path / "inputs.policy", POLICY_TEXT)


def profit(capsys, *argv: str) -> Tuple[int, str, str]:
    """`profit ARGV` in this process: (exit status, stdout, stderr); a traceback fails the test."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def cli_counts(out: str, err: str) -> Tuple[int, int, int]:
    """(records, decisions, errors) from `--format json` rows, checked against the summary line."""
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    errors = sum("error" in line for line in lines)
    summary = [line for line in err.splitlines() if " records in = " in line or " record in = " in line]
    assert summary, err
    expected = f"{len(lines):,} record{'s' if len(lines) != 1 else ''} in = {len(lines) - errors:,} " \
               f"decision{'s' if len(lines) - errors != 1 else ''} + {errors:,} error{'s' if errors != 1 else ''} out"
    assert summary[-1] == expected, (summary, expected)
    return len(lines), len(lines) - errors, errors


def refused(code: int, out: str, err: str, *fragments: str) -> None:
    """The whole file refused: exit 1, one line on stderr, nothing decided."""
    assert code == 1, (code, err)
    assert not out.strip(), out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---- encodings -----------------------------------------------------------------------------------


def _utf8_file_with_a_latin1_row(row: int = 601, count: int = 1000) -> bytes:
    lines = rows_csv(count)
    lines[0] = lines[0].replace("Customer 1", "Müller & Söhne")  # the file is UTF-8 ...
    data = b"".join((line + "\n").encode("utf-8") for line in [HEADER, *lines[:row - 1]])
    data += lines[row - 1].replace(f"Customer {row}", "Café Zoë").encode("latin-1") + b"\n"  # ... but one row
    return data + b"".join((line + "\n").encode("utf-8") for line in lines[row:])


def test_one_latin1_byte_in_row_601_is_that_rows_error(tmp_path, capsys, policy_file):
    path = write(tmp_path / "customers.csv", _utf8_file_with_a_latin1_row())
    results, summary, source = run_file(path)
    balanced(results, summary, 1000, 999, 1)
    (error,) = errors_of(results)
    assert error.row == 601 and error.id == "C-0601"
    assert "0xE9" in error.message and "UTF-8" in error.message and "--encoding" in error.message
    assert str(error).startswith("row 601, id C-0601: line 602 ")
    assert results[0].value("name") == "Müller & Söhne" and results[601].id == "C-0602"
    assert source.warnings == []  # a UTF-8 file with one damaged row: no guessing of another encoding

    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (1000, 999, 1)
    assert "row 601, id C-0601" in err and "0xE9" in err


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-32", "utf-16-le", "utf-16-be"])
def test_utf8_and_utf16_are_detected(tmp_path, capsys, policy_file, codec):
    text = "\n".join([HEADER, "C-1,Müller Straße,10.00,1", "C-2,Łódź Ząb,20.00,2"]) + "\n"
    path = write(tmp_path / "customers.csv", text.encode(codec))  # utf-16 and utf-32 write a BOM
    results, summary, source = run_file(path)
    balanced(results, summary, 2, 2, 0)
    assert [r.value("name") for r in results] == ["Müller Straße", "Łódź Ząb"]
    assert results[0].id == "C-1" and source.warnings == []
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 0 and cli_counts(out, err) == (2, 2, 0) and "warning" not in err


def _cp1252_file(count: int = 30) -> bytes:
    lines = [HEADER] + [f"C-{n},Bäckerei Köln {n} für Öl € Großhandel,{n}.00,1" for n in range(1, count + 1)]
    return ("\n".join(lines) + "\n").encode("cp1252")


def test_windows_1252_with_the_encoding_option(tmp_path, capsys, policy_file):
    path = write(tmp_path / "customers.csv", _cp1252_file())
    results, summary, source = run_file(path, encoding="cp1252")
    balanced(results, summary, 30, 30, 0)
    assert results[0].value("name") == "Bäckerei Köln 1 für Öl € Großhandel" and source.warnings == []
    code, out, err = profit(capsys, "explain", policy_file, path, "--encoding", "cp1252", "--id", "C-2")
    assert code == 0 and "Bäckerei Köln 2 für Öl € Großhandel" in out


def test_windows_1252_detected_by_charset_normalizer(tmp_path, capsys, policy_file):
    pytest.importorskip("charset_normalizer")
    path = write(tmp_path / "customers.csv", _cp1252_file())
    results, summary, source = run_file(path)
    balanced(results, summary, 30, 30, 0)
    assert results[0].value("name") == "Bäckerei Köln 1 für Öl € Großhandel"
    assert len(source.warnings) == 1 and "cp1252" in source.warnings[0] and "--encoding" in source.warnings[0]
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 0 and cli_counts(out, err) == (30, 30, 0)
    assert [line for line in err.splitlines() if "warning" in line] == [f"profit: warning: {source.warnings[0]}"]


def test_without_charset_normalizer_one_line_says_what_to_do(tmp_path, capsys, policy_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "charset_normalizer", None)  # as when the extra is not installed
    lines = [HEADER] + [f"C-{n},Customer {n},{n}.00,1" for n in range(1, 11)]
    lines[3] = "C-3,Café Zoë,3.00,1"
    path = write(tmp_path / "customers.csv", ("\n".join(lines) + "\n").encode("cp1252"))
    results, summary, source = run_file(path)
    balanced(results, summary, 10, 9, 1)
    assert errors_of(results)[0].row == 3
    (warning,) = source.warnings
    assert "profit-engine[encodings]" in warning and "--encoding" in warning and "line 4" in warning
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (10, 9, 1)
    assert len([line for line in err.splitlines() if "profit-engine[encodings]" in line]) == 1


def test_an_unknown_encoding_name(tmp_path, capsys, policy_file):
    path = write(tmp_path / "customers.csv", HEADER + "\nC-1,x,1.00,1\n")
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        RecordSource.open(path, encoding="klingon")
    refused(*profit(capsys, "run", policy_file, path, "--encoding", "klingon"), "unknown encoding 'klingon'")


def test_undecodable_bytes_in_json_lines_and_json_arrays(tmp_path, capsys, policy_file):
    good = [json.dumps({"id": f"C-{n}", "name": "Müller", "revenue": "1.00", "orders": 1}, ensure_ascii=False)
            for n in range(1, 4)]  # UTF-8 ...
    bad = json.dumps({"id": "C-9", "name": "@", "revenue": "1.00", "orders": 1}).encode().replace(b"@", b"Caf\xe9")
    lines = path_lines = write(tmp_path / "c.jsonl", b"\n".join([good[0].encode(), bad, good[1].encode()]) + b"\n")
    results, summary, _ = run_file(path_lines)
    balanced(results, summary, 3, 2, 1)
    assert errors_of(results)[0].row == 2 and "0xE9" in errors_of(results)[0].message
    array = write(tmp_path / "c.json", b"[" + b",\n".join([good[0].encode(), bad, good[2].encode()]) + b"]")
    results, summary, _ = run_file(array)
    balanced(results, summary, 3, 2, 1)
    (error,) = errors_of(results)
    assert error.row == 2 and error.id == "C-9" and "line 2" in error.message and "0xE9" in error.message
    for path in (lines, array):
        code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
        assert code == 2 and cli_counts(out, err) == (3, 2, 1)


def test_a_header_that_is_not_utf8_is_one_message(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.csv", "id,name,revenue,orders,Straße\nC-1,x,1.00,1,y\n".encode("latin-1"))
    # with nothing else in the file, the byte in the header is judged by its encoding detection:
    with pytest.raises(InputError, match="the header"):
        RecordSource.open(path, encoding="utf-8").check(POLICY.plan.fields, "id")
    refused(*profit(capsys, "run", policy_file, path, "--encoding", "utf-8"), "c.csv", "header", "0xDF")


def test_standard_input_as_bytes_through_a_pipe(capsys, monkeypatch):
    class Pipe(io.RawIOBase):  # cannot seek, as a shell pipe
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self.data.readinto(buffer)

    lines = (ROOT / "examples" / "portfolio_customers.csv").read_text(encoding="utf-8").splitlines()
    named = [line.split(",") for line in lines[:8]]
    named[1][1], named[2][1] = "Müller & Söhne", "Café Zoë"  # a UTF-8 file, with one Latin-1 row
    data = b"".join((",".join(cells) + "\n").encode("latin-1" if number == 2 else "utf-8")
                    for number, cells in enumerate(named))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(Pipe(data))))
    code, out, err = profit(capsys, "run", PORTFOLIO, "-", "--format", "json")  # read twice: spooled
    assert code == 2 and cli_counts(out, err) == (7, 6, 1) and "row 2" in err


# ---- CSV dialects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_the_separator_is_sniffed(tmp_path, capsys, policy_file, sep):
    text = "\n".join([HEADER.replace(",", sep), *rows_csv(5, sep=sep)]) + "\n"
    path = write(tmp_path / "customers.csv", text)
    results, summary, source = run_file(path)
    balanced(results, summary, 5, 5, 0)
    assert source.delimiter == sep and results[4].value("revenue") == D("5.50")
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 0 and cli_counts(out, err) == (5, 5, 0)


def test_a_semicolon_file_with_decimal_commas_is_not_guessed(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.csv", "id;name;revenue;orders\nC-1;Acme, Inc;1.234,56;3\nC-2;Bolt;12,40;1\n")
    results, summary, _ = run_file(path)
    balanced(results, summary, 2, 0, 2)
    assert all("--decimal-comma" in e.message and e.field == "revenue" for e in errors_of(results))
    assert "'12,40'" in errors_of(results)[1].message
    results, summary, _ = run_file(path, decimal_comma=True)
    balanced(results, summary, 2, 2, 0)
    assert [r.value("revenue") for r in results] == [D("1234.56"), D("12.40")]
    assert results[0].value("name") == "Acme, Inc"  # text is never touched
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json", "--decimal-comma")
    assert code == 0 and cli_counts(out, err) == (2, 2, 0)
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (2, 0, 2) and "--decimal-comma" in err


@pytest.mark.parametrize("cell, value", [
    ("1.234,56", D("1234.56")), ("€ 12,40", D("12.40")), ("12,40 EUR", D("12.40")), ("-1.000.000,5", D("-1000000.5")),
    ("1 234,56", D("1234.56")), ("1\u00a0234,56", D("1234.56")), ("12", D("12")), ("0,05", D("0.05")),
])
def test_decimal_comma_values(tmp_path, cell, value):
    path = write(tmp_path / "c.csv", f'id;revenue;orders\nC-1;{cell};1\n')
    results, summary, _ = run_file(path, decimal_comma=True)
    balanced(results, summary, 1, 1, 0)
    assert results[0].value("revenue") == value


def test_decimal_comma_refuses_a_dot_that_is_not_a_thousands_separator(tmp_path):
    path = write(tmp_path / "c.csv", 'id;revenue;orders;share\nC-1;1.5;1;\nC-2;10;1;5,5%\nC-3;1,234,5;1;\n')
    results, summary, _ = run_file(path, decimal_comma=True)
    balanced(results, summary, 3, 1, 2)
    first, third = errors_of(results)
    assert (first.row, first.id, first.field, first.value) == (1, "C-1", "revenue", "1.5")
    assert "decimal comma" in first.message and third.row == 3
    assert results[1].value("share") == D("0.055")
    assert from_decimal_comma("Acme, Inc.") == "Acme, Inc."  # no number: left for the field's check


def test_a_given_delimiter_and_excels_sep_line(tmp_path, capsys, policy_file):
    piped = write(tmp_path / "piped.csv", "id|name|revenue|orders\nC-1|a, b; c|1.00|1\n")
    results, summary, _ = run_file(piped, delimiter="|")
    balanced(results, summary, 1, 1, 0)
    assert results[0].value("name") == "a, b; c"
    code, out, err = profit(capsys, "run", policy_file, piped, "--format", "json", "--delimiter", "|")
    assert code == 0 and cli_counts(out, err) == (1, 1, 0)
    excel = write(tmp_path / "excel.csv", "sep=;\nid;name;revenue;orders\nC-1;x;1.00;1\nC-2;y;2.00;2\n")
    results, summary, _ = run_file(excel)
    balanced(results, summary, 2, 2, 0)
    with pytest.raises(InputError, match="one character"):
        RecordSource.open(piped, delimiter="||")


@pytest.mark.parametrize("cell, policy, value, fragment", [
    ("€ 12.40", POLICY, D("12.40"), None), ("12.40 EUR", POLICY, D("12.40"), None), ("12.40€", POLICY, D("12.40"), None),
    ("-€5", POLICY, D("-5"), None), ("$5", USD_POLICY, D("5"), None), ("US$ 1,200.50", USD_POLICY, D("1200.50"), None),
    ("$5", POLICY, None, "not the sign of EUR"), ("£5", POLICY, None, "amount is in GBP (£), but the policy is in EUR"),
    ("€ 5", USD_POLICY, None, "amount is in EUR (€), but the policy is in USD"),
    ("5 USD", POLICY, None, "amount is in USD, but the policy is in EUR"),
])
def test_currency_signs_and_codes_in_money_cells(tmp_path, cell, policy, value, fragment):
    path = write(tmp_path / "c.csv", f'id,revenue,orders\nC-1,"{cell}",1\n')
    results, summary, _ = run_file(path, policy)
    if value is not None:
        balanced(results, summary, 1, 1, 0)
        assert results[0].value("revenue") == value
    else:
        balanced(results, summary, 1, 0, 1)
        assert fragment in results[0].message and results[0].field == "revenue"


def test_an_unterminated_quote_is_the_error_of_its_row_and_the_rest_is_read(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.csv", f'{HEADER}\nC-1,Acme,1.00,1\nC-2,"Vector Agrar Ltd,2.00,2\nC-3,Cee,3.00,3\n')
    results, summary, _ = run_file(path)
    balanced(results, summary, 3, 2, 1)
    (error,) = errors_of(results)
    assert (error.row, error.id) == (2, "C-2") and "quote opened on line 3" in error.message
    assert [r.id for r in results if isinstance(r, Decision)] == ["C-1", "C-3"]
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (3, 2, 1) and "row 2, id C-2: a quote opened on line 3" in err


def test_a_quote_that_runs_over_many_lines_is_stopped(tmp_path):
    lines = rows_csv(300)
    lines[9] = lines[9].replace("Customer 10", '"Customer 10')  # opened on line 11, never closed
    path = write(tmp_path / "c.csv", "\n".join([HEADER, *lines]) + "\n")
    results, summary, _ = run_file(path)
    balanced(results, summary, 300, 299, 1)
    (error,) = errors_of(results)
    assert error.row == 10 and "line 11" in error.message and "not closed within 100 lines" in error.message
    assert results[10].id == "C-0011" and results[-1].id == "C-0300"


def test_a_quote_closed_where_no_separator_follows(tmp_path):
    path = write(tmp_path / "c.csv", f'{HEADER}\nC-1,"Acme,1.00,1\nC-2,"Bolt",2.00,2\nC-3,Cee,3.00,3\n')
    results, summary, _ = run_file(path)
    balanced(results, summary, 3, 2, 1)
    assert errors_of(results)[0].row == 1 and [r.id for r in results[1:]] == ["C-2", "C-3"]


def test_quoted_cells_with_line_breaks_are_still_one_cell(tmp_path):
    path = write(tmp_path / "c.csv", f'{HEADER}\r\nC-1,"line one\r\nline two, with a comma",1.00,1\r\nC-2,x,2.00,2\r\n')
    results, summary, _ = run_file(path)
    balanced(results, summary, 2, 2, 0)
    assert results[0].value("name") == "line one\r\nline two, with a comma"


# ---- spreadsheets and Parquet ---------------------------------------------------------------------


def _workbook(path: Path) -> str:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append([])  # the header is the first row with anything in it: row 3
    sheet.append([])
    sheet.append(["id", "name", "revenue", "orders", "since", "vip", "share", "notes"])
    sheet.append(["C-1", "Müller", 0.1, 3, datetime.date(2026, 1, 5), True, 0.05, "x"])      # row 4
    sheet.append(["C-2", "Bolt", "€ 12.40", 2.0, datetime.datetime(2026, 2, 1), False, None])  # row 5
    sheet.append([])                                                                          # row 6: empty
    sheet.append(["C-3", "Cee", "#DIV/0!", 1])                                                # row 7
    sheet.append(["C-4", "Dee", "=C4*2", 1])                                                  # row 8: no value
    sheet.append([1005, "number id", 123456.78, 1])                                           # row 9
    sheet.append(["C-6", "Eve", 0.30000000000000004, 1.5])                                    # row 10
    book.create_sheet("Notes").append(["not", "records"])
    book.save(path)
    return str(path)


def test_xlsx_rows_are_numbered_as_the_sheet_numbers_them(tmp_path, capsys, policy_file):
    path = _workbook(tmp_path / "customers.xlsx")
    results, summary, source = run_file(path)
    balanced(results, summary, 6, 3, 3)
    assert [r.row for r in results] == [4, 5, 7, 8, 9, 10]
    by_row = {r.row: r for r in results}
    assert by_row[4].value("revenue") == D("0.1") and by_row[4].value("since") == datetime.date(2026, 1, 5)
    assert by_row[4].value("vip") is True and by_row[4].value("share") == D("0.05")
    assert by_row[5].value("revenue") == D("12.40") and by_row[5].value("orders") == 2
    assert by_row[9].id == "1005" and by_row[9].value("revenue") == D("123456.78")
    assert "'#DIV/0!'" in by_row[7].message and by_row[7].field == "revenue"
    assert by_row[8].id == "C-4" and "C8" in by_row[8].message and "formula with no stored value" in by_row[8].message
    assert by_row[10].field == "orders"  # 1.5 orders
    assert source.columns == ("id", "name", "revenue", "orders", "since", "vip", "share", "notes")
    assert any("first sheet, 'Customers'" in w for w in source.warnings)
    assert any("notes" in w and "not used" in w for w in source.warnings)


def test_xlsx_floats_are_their_shortest_text_never_binary_noise(tmp_path):
    path = _workbook(tmp_path / "customers.xlsx")
    with RecordSource.open(path) as source:
        raw = dict(source.rows())
    assert raw[4]["revenue"] == D("0.1") and type(raw[4]["revenue"]) is D  # not 0.1000000000000000055511151231257827
    assert raw[10]["revenue"] == D("0.3")  # openpyxl stored 0.1 + 0.2 to 16 digits: the sheet's storage is the limit
    assert raw[9]["id"] == 1005 and raw[5]["orders"] == 2 and raw[5]["since"] == "2026-02-01"


def test_xlsx_through_the_command_and_another_sheet(tmp_path, capsys, policy_file):
    path = _workbook(tmp_path / "customers.xlsx")
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (6, 3, 3)
    assert "row 8, id C-4: cell C8" in err and "warning: customers.xlsx: reading the first sheet" in err
    code, out, err = profit(capsys, "run", policy_file, path, "--sheet", "Notes")
    refused(code, out, err, "customers.xlsx", "no columns 'id', 'revenue', 'orders'")
    refused(*profit(capsys, "run", policy_file, path, "--sheet", "Nope"), "no sheet 'Nope'", "Customers, Notes")


def test_xlsx_formulas_give_the_values_the_spreadsheet_stored(tmp_path):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    pytest.importorskip("openpyxl")
    path = tmp_path / "calculated.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["id", "revenue", "orders"])
    sheet.write_row(1, 0, ["C-1", 10.25, 2])
    sheet.write_formula(2, 1, "=B2*2", None, 20.5)  # a formula with the value Excel would store
    sheet.write(2, 0, "C-2")
    sheet.write_formula(2, 2, "=C2+1", None, 3)
    sheet.write_formula(3, 1, "=1/0", None, "#DIV/0!")
    sheet.write(3, 0, "C-3")
    sheet.write(3, 2, 1)
    book.close()
    results, summary, _ = run_file(str(path))
    balanced(results, summary, 3, 2, 1)
    assert results[1].value("revenue") == D("20.5") and results[1].value("orders") == 3
    assert results[2].row == 4 and results[2].field == "revenue"


def test_parquet_decimals_floats_dates_and_nulls(tmp_path, capsys, policy_file):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "id": ["C-1", "C-2", "C-3", None],
        "revenue": pa.array([D("12.40"), D("0.10"), None, D("1.00")], pa.decimal128(12, 2)),
        "orders": pa.array([3.0, 0.5, 2.0, 1.0], pa.float64()),
        "share": pa.array([0.1, 0.05, None, None], pa.float32()),
        "since": pa.array([datetime.date(2026, 1, 5), None, None, None], pa.date32()),
        "vip": [True, False, None, None], "segment": ["a", "b", "c", "d"]})
    path = str(tmp_path / "customers.parquet")
    parquet.write_table(table, path)
    results, summary, source = run_file(path)
    balanced(results, summary, 4, 1, 3)
    first = results[0]
    assert first.value("revenue") == D("12.40") and first.value("orders") == 3
    assert first.value("share") == D("0.1")  # a float32 by its shortest text, not 0.10000000149011612
    assert first.value("since") == datetime.date(2026, 1, 5) and first.value("vip") is True
    assert [(e.row, e.field) for e in errors_of(results)] == [(2, "orders"), (3, "revenue"), (4, "id")]
    assert any("segment" in w for w in source.warnings)
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (4, 1, 3) and "warning" in err


def test_parquet_header_checked_and_no_rows(tmp_path, capsys, policy_file):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "missing.parquet")
    parquet.write_table(pa.table({"id": ["C-1"], "orders": [1]}), path)
    with pytest.raises(InputError, match="no column 'revenue'"):
        run_file(path)
    refused(*profit(capsys, "run", policy_file, path), "missing.parquet", "'revenue'")
    empty = str(tmp_path / "empty.parquet")
    parquet.write_table(pa.table({"id": pa.array([], pa.string()), "revenue": pa.array([], pa.string()),
                                  "orders": pa.array([], pa.int64())}), empty)
    results, summary, source = run_file(empty)
    balanced(results, summary, 0, 0, 0)
    assert source.warnings == ["empty.parquet has a header but no records"]


@pytest.mark.parametrize("module, extra, name, content", [
    ("openpyxl", "excel", "c.xlsx", b"PK\x03\x04" + bytes(60)),
    ("pyarrow", "parquet", "c.parquet", b"PAR1" + bytes(60) + b"PAR1"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, capsys, policy_file, monkeypatch, module, extra, name,
                                               content):
    for hidden in (module, f"{module}.parquet", f"{module}.compute"):
        monkeypatch.setitem(sys.modules, hidden, None)  # `import` fails, as without the extra
    path = write(tmp_path / name, content)
    with pytest.raises(InputError, match=rf"pip install 'profit-engine\[{extra}\]'"):
        run_file(path)
    refused(*profit(capsys, "run", policy_file, path), f"profit-engine[{extra}]")


def test_a_damaged_workbook_is_one_message(tmp_path, capsys, policy_file):
    pytest.importorskip("openpyxl")
    path = write(tmp_path / "c.xlsx", b"PK\x03\x04" + bytes(200))
    refused(*profit(capsys, "run", policy_file, path), "c.xlsx cannot be read as an .xlsx workbook")


# ---- the header first, formats and extensions --------------------------------------------------------


def test_a_missing_required_column_is_one_error_before_any_row(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.csv", "id,name,orders\nC-1,x,1\nC-2,y,2\n")
    with RecordSource.open(path) as source:
        with pytest.raises(InputError) as caught:
            POLICY.run(source)  # raised by run itself, before a result is asked for
    assert str(caught.value) == "c.csv: the header has no column 'revenue', which the policy's record needs"
    assert isinstance(caught.value, ValueError)
    refused(*profit(capsys, "run", policy_file, path, "--format", "json"), "c.csv", "'revenue'")
    refused(*profit(capsys, "report", policy_file, path), "'revenue'")
    # optional fields and fields with a default may be missing; the key may not
    results, summary, _ = run_file(write(tmp_path / "min.csv", "id,revenue,orders\nC-1,1.00,1\n"))
    balanced(results, summary, 1, 1, 0)
    with pytest.raises(InputError, match="no column 'id'"):
        run_file(write(tmp_path / "nokey.csv", "revenue,orders\n1.00,1\n"))


def test_the_missing_column_message_helps(tmp_path):
    with pytest.raises(InputError, match=r"the header has 'Revenue' \(names must match exactly\)"):
        run_file(write(tmp_path / "case.csv", "id,Revenue,orders\nC-1,1.00,1\n"))
    with pytest.raises(InputError, match="one column and holds semicolons: pass --delimiter"):
        run_file(write(tmp_path / "semi.csv", "id;revenue;orders\nC-1;1.00;1\n"), delimiter=",")


def test_unknown_columns_are_one_warning(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.csv", "id,revenue,orders,colour,size\nC-1,1.00,1,red,L\nC-2,2.00,2,blue,M\n")
    seen: List[str] = []
    with RecordSource.open(path) as source:
        source.on_warning = seen.append
        results, summary = run_source(source)
        assert source.warnings == seen == ["c.csv: columns not used by the policy (ignored): colour, size"]
    balanced(results, summary, 2, 2, 0)
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 0 and cli_counts(out, err) == (2, 2, 0)
    assert err.count("colour") == 1 and "profit: warning: c.csv: columns not used" in err


@pytest.mark.parametrize("name, content", [("c.csv", b""), ("c.csv", b"\n \r\n"), ("c.csv", b"\xef\xbb\xbf"),
                                           ("c.json", b""), ("c.jsonl", b"\n\n"), ("c.csv", "".encode("utf-16"))])
def test_an_empty_file_says_so(tmp_path, capsys, policy_file, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(InputError, match=r"c\.jsonl? is empty|c\.csv is empty"):
        run_file(path)
    refused(*profit(capsys, "run", policy_file, path, "--format", "json"), "is empty")


@pytest.mark.parametrize("name, content, warning", [
    ("c.csv", HEADER + "\n", "c.csv has a header but no records"),
    ("c.csv", HEADER + "\n\n\n", "c.csv has a header but no records"),
    ("c.json", "[ ]\n", "c.json has no records"),
])
def test_a_file_with_no_records_is_a_warning(tmp_path, capsys, policy_file, name, content, warning):
    path = write(tmp_path / name, content)
    results, summary, source = run_file(path)
    balanced(results, summary, 0, 0, 0)
    assert source.warnings == [warning]
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 0 and f"profit: warning: {warning}" in err and "0 records in = 0 decisions + 0 errors out" in err


@pytest.mark.parametrize("name, content, given, fragment", [
    ("c.csv", HEADER + "\nC-1,x,1.00,1\n", "json", "c.csv does not look like JSON: it starts with 'id,name,revenue,"
                                                   "orders' (CSV?): use --input-format csv"),
    ("c.csv", HEADER + "\nC-1,x,1.00,1\n", "jsonl", "does not look like JSON"),
    ("c.json", '[{"id": "C-1"}]', "csv", "c.json looks like a JSON array (it starts with '[{\"id\": \"C-1\"}]'), not "
                                         "CSV: use --input-format json"),
    ("c.json", '{"id": "C-1"}\n{"id": "C-2"}\n', "csv", "looks like JSON (it starts with"),
    ("c.jsonl", '[{"id": "C-1"}]', "jsonl", "looks like a JSON array"),
    ("c.json", '{"id": "C-1"}\n{"id": "C-2"}\n', "json", "is not a JSON array of records: it starts with '{\"id\": "
                                                         "\"C-1\"}'; one object per line is JSON Lines"),
    ("c.xlsx", b"PK\x03\x04" + bytes(100), "csv", "c.xlsx is an Excel workbook or another ZIP archive, not CSV: use "
                                                  "--input-format xlsx"),
    ("c.csv", HEADER + "\n", "xlsx", "c.csv is not an .xlsx workbook: it looks like text (CSV?)"),
    ("c.csv", HEADER + "\n", "parquet", "c.csv is not a Parquet file"),
    ("c.csv", b"\x1f\x8b\x08\x00" + bytes(50), None, "c.csv is a gzip-compressed file"),
    ("c.csv", bytes(100) + bytes(range(256)) * 3, None, "c.csv is a binary file"),
])
def test_a_file_in_another_format_says_what_it_looks_like(tmp_path, capsys, policy_file, name, content, given,
                                                          fragment):
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as caught:
        run_file(path, format=given)
    assert fragment in str(caught.value)
    argv = ["run", policy_file, path] + (["--input-format", given] if given else [])
    refused(*profit(capsys, *argv), fragment)


def test_an_unknown_extension_needs_the_input_format(tmp_path, capsys, policy_file):
    path = write(tmp_path / "customers.dat", HEADER + "\nC-1,x,1.00,1\n")
    with pytest.raises(InputError, match=r"customers\.dat: the extension '\.dat' does not say the format"):
        RecordSource.open(path)
    refused(*profit(capsys, "run", policy_file, path), "customers.dat", "--input-format")
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json", "--input-format", "csv")
    assert code == 0 and cli_counts(out, err) == (1, 1, 0)
    refused(*profit(capsys, "run", policy_file, write(tmp_path / "old.xls", b"\xd0\xcf\x11\xe0")), "save it as .xlsx")
    tsv = write(tmp_path / "c.tsv", HEADER.replace(",", "\t") + "\nC-1\tx\t1.00\t1\n")
    results, summary, _ = run_file(tsv)
    balanced(results, summary, 1, 1, 0)


# ---- JSON ------------------------------------------------------------------------------------------


def _array(records: list, raw: Optional[dict] = None) -> str:
    """A JSON array; `raw` puts unquoted JSON text in place of the value '@k' of a field."""
    text = json.dumps(records, indent=1)
    for key, value in (raw or {}).items():
        text = text.replace(f'"@{key}"', value)
    return text


RECORDS = [{"id": f"C-{n}", "revenue": f"{n}.00", "orders": n} for n in range(1, 6)]


def test_a_json_array_with_a_10000_digit_number_and_1000_deep_nesting(tmp_path, capsys, policy_file):
    records = [dict(r) for r in RECORDS]
    records[1]["revenue"], records[3]["orders"] = "@big", "@deep"
    text = _array(records, {"big": "9" * 10_000, "deep": "[" * 1000 + "]" * 1000})
    path = write(tmp_path / "c.json", text)
    results, summary, _ = run_file(path)
    balanced(results, summary, 5, 3, 2)
    big, deep = errors_of(results)
    assert big.row == 2 and "thousands of digits" in big.message
    assert deep.row == 4 and "levels deep" in deep.message
    assert [r.id for r in results if isinstance(r, Decision)] == ["C-1", "C-3", "C-5"]
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (5, 3, 2)


def test_json_array_errors_are_record_errors_with_their_position(tmp_path):
    text = ('[\n{"id": "C-1", "revenue": "1.00", "orders": 1},\n{"id": "C-2", "revenue": 1.00, "orders": },\n'
            '{"id": "C-3", "revenue": NaN, "orders": 1},\n5,\n{"id": "C-4", "revenue": "4.00", "orders": 4}\n'
            '{"id": "C-5", "revenue": "5.00", "orders": 5},\n{"id": "C-6", "revenue": "6.00", "orders": 6}]')
    results, summary, _ = run_file(write(tmp_path / "c.json", text))
    balanced(results, summary, 7, 3, 4)
    bad = errors_of(results)
    assert [e.row for e in bad] == [2, 3, 4, 6]
    assert "record 2 (line 3) is not valid JSON" in bad[0].message
    assert bad[1].field == "revenue" and "a record must be an object" in bad[2].message
    assert "not separated from the one before by a comma" in bad[3].message
    assert [r.id for r in results if isinstance(r, Decision)] == ["C-1", "C-4", "C-6"]


def test_a_cut_off_json_array_keeps_the_records_before(tmp_path, capsys, policy_file):
    text = json.dumps(RECORDS[:3], indent=1)
    path = write(tmp_path / "c.json", text[:text.rindex('"revenue"')])
    results, summary, _ = run_file(path)
    balanced(results, summary, 3, 2, 1)
    assert "cut off" in errors_of(results)[0].message and errors_of(results)[0].row == 3
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (3, 2, 1)
    results, summary, _ = run_file(write(tmp_path / "open.json", json.dumps(RECORDS[:2])[:-1]))
    balanced(results, summary, 3, 2, 1)  # both records, and the array that is never closed
    assert "never" not in errors_of(results)[0].message and "closed with ']'" in errors_of(results)[0].message


def test_a_json_file_that_is_not_an_array_is_one_message(tmp_path, capsys, policy_file):
    path = write(tmp_path / "c.json", json.dumps(RECORDS[0]))
    with pytest.raises(InputError, match="not a JSON array of records.*put the records in an array"):
        run_file(path)
    refused(*profit(capsys, "run", policy_file, path), "c.json is not a JSON array")


def test_a_json_array_is_streamed(tmp_path):
    class Counted(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.read_so_far = io.BytesIO(data), 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.data.seek(offset, whence)

        def tell(self) -> int:
            return self.data.tell()

        def readinto(self, buffer) -> int:
            count = self.data.readinto(buffer)
            self.read_so_far = max(self.read_so_far, self.data.tell())
            return count

    records = [{"id": f"C-{n}", "name": "x" * 200, "revenue": "1.00", "orders": 1} for n in range(20_000)]
    data = json.dumps(records).encode()
    stream = Counted(data)
    source = RecordSource(stream, "json", "big.json")
    run = POLICY.run(source)
    first = next(iter(run))
    assert isinstance(first, Decision) and stream.read_so_far < len(data) // 10  # not read whole
    assert run.summary.records == 20_000 and not run.summary.errors


def test_json_lines_value_errors_stay_record_errors(tmp_path, capsys, policy_file):
    lines = [json.dumps(r) for r in RECORDS[:3]]
    lines[1] = lines[1].replace('"2.00"', "9" * 10_000)
    lines.insert(2, "[" * 100_000 + "]" * 100_000)
    path = write(tmp_path / "c.jsonl", "\n".join(lines) + "\n")
    results, summary, _ = run_file(path)
    balanced(results, summary, 4, 2, 2)
    assert [e.row for e in errors_of(results)] == [2, 3]
    code, out, err = profit(capsys, "run", policy_file, path, "--format", "json")
    assert code == 2 and cli_counts(out, err) == (4, 2, 2)


def test_read_records_still_reads_text_and_lines():
    rows = list(read_records(io.StringIO("id;revenue;orders\nC-1;1,50;1\n"), "csv", decimal_comma=True))
    assert rows == [(1, {"id": "C-1", "revenue": "1.50", "orders": "1"})]
    rows = list(read_records(iter(['[{"id": "A"},', ' {"id": "B"}]']), "json"))
    assert [row for row, _ in rows] == [1, 2] and rows[1][1] == {"id": "B"}
    rows = list(read_records(io.BytesIO("id,name\nA,Müller\n".encode("utf-16")), "csv"))
    assert rows == [(1, {"id": "A", "name": "Müller"})]


def test_the_standard_policy_over_a_semicolon_export_with_decimal_commas(tmp_path, capsys):
    """The example data as a German spreadsheet exports it: semicolons, decimal commas, Windows-1252."""
    lines = (ROOT / "examples" / "customers.csv").read_text(encoding="utf-8").splitlines()
    table = list(csv.reader(lines))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(table[0])
    for row in table[1:41]:
        writer.writerow([cell.replace(".", ",") if cell.replace(".", "").isdigit() else cell for cell in row])
    path = write(tmp_path / "kunden.csv", out.getvalue().replace("Ltd", "Müller GmbH").encode("cp1252"))
    decisions = load_policy(STANDARD).run(csv.DictReader(io.StringIO("\n".join(lines[:41]))))
    expected = [str(decision.figures["profit"]) for decision in decisions]
    code, out_text, err = profit(capsys, "run", STANDARD, path, "--format", "json", "--decimal-comma",
                                 "--encoding", "cp1252")
    assert code == 0 and cli_counts(out_text, err) == (40, 40, 0)
    assert [json.loads(line)["figures"]["profit"] for line in out_text.splitlines()] == expected


@pytest.mark.parametrize("text, expected", [
    ('[ "C-1", "name": "x", }, {"id": 1}]', 5), ("[}]", 1), ("[,]", 2), ("[1 }", 2), ('[{"a":1}}, {"b": 2}]', 3),
    ('["a" "b"]', 2), ("[{]", 1), ("[" + "{" * 50_000, 1), ('[{"a": "\\', 1), ("[\n", 1),
])
def test_broken_json_arrays_end_in_record_errors(text, expected):
    """Found by tests/test_fuzz.py: a stray '}' where a record starts once made the reader loop."""
    rows = list(read_records(io.StringIO(text), "json"))
    assert len(rows) == expected and [row for row, _ in rows] == list(range(1, expected + 1))
    assert any(isinstance(record, RecordError) for _, record in rows)


def test_check_can_be_called_before_the_run(tmp_path):
    path = write(tmp_path / "c.csv", "id;revenue;orders;colour\nC-1;1,00;1;red\n")
    with RecordSource.open(path, decimal_comma=True) as source:
        source.check(POLICY.plan.fields, POLICY.plan.key_column)
        assert source.columns == ("id", "revenue", "orders", "colour") and source.delimiter == ";"
        assert len(source.warnings) == 1
        results, summary = run_source(source)  # checks again: no second warning
        assert len(source.warnings) == 1
    balanced(results, summary, 1, 1, 0)
    assert results[0].value("revenue") == D("1.00")


def test_line_ends_lf_crlf_and_classic_mac_cr(tmp_path, capsys, policy_file):
    for name, newline in (("lf.csv", "\n"), ("crlf.csv", "\r\n"), ("cr.csv", "\r")):
        path = write(tmp_path / name, newline.join([HEADER, *rows_csv(3)]) + newline)
        results, summary, _ = run_file(path)
        balanced(results, summary, 3, 3, 0)
        assert [r.id for r in results] == ["C-0001", "C-0002", "C-0003"]
    # in a file whose lines end in LF, a lone CR is a character of its line: that row's error, one record
    path = write(tmp_path / "stray.csv", f"{HEADER}\nC-1,Acme\r,1.00,1\nC-2,x,2.00,2\n")
    results, summary, _ = run_file(path)
    balanced(results, summary, 2, 1, 1)
    assert results[0].row == 1 and "carriage return" in results[0].message and results[0].id == "C-1"
    quoted = write(tmp_path / "quoted.csv", f'{HEADER}\nC-1,"Acme\r",1.00,1\n')
    results, summary, _ = run_file(quoted)
    balanced(results, summary, 1, 1, 0)
    with RecordSource(io.StringIO(f"{HEADER}\nC-1,Acme\r,1.00,1\n", newline=""), "csv") as source:
        results, summary = run_source(source)  # a text stream is split the same way
    balanced(results, summary, 1, 0, 1)
