"""Record validation and the CSV / JSON / JSON Lines readers.

Values arrive as CSV strings or as JSON values (Decimal via parse_float, int, bool,
str). Each field type is checked for what it accepts, what it turns it into, and the
RecordError it raises otherwise: every error carries row, id, field, value and expected.
"""
from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine import Decision, RecordError, load_policy
from engine.evaluator import evaluate_rows
from engine.records import detect_format, read_records, validate

ROOT = Path(__file__).resolve().parents[1]

POLICY = load_policy('''policy "Records test"
currency EUR

record customer
  id         text     key
  name       text     optional
  region     text     default "unassigned"
  revenue    money
  discount   money    default 0
  orders     count
  visits     count    default 0
  hours      hours    default 0
  days_late  days     default 0
  share      percent  default 5%
  factor     number   default 1
  vip        yes/no   default no
  since      date     optional

classify class
  everyone otherwise
''')

BASE = {"id": "R-1", "revenue": "100.00", "orders": "3"}


def values(record=None, row=None, **fields) -> dict:
    """The validated values by field name."""
    mapping = dict(BASE if record is None else record)
    mapping.update(fields)
    plan = POLICY.plan
    result, record_id = validate(mapping, plan.fields, plan.policy.key, plan.policy.currency, row)
    return dict(zip(POLICY.field_names, result))


def error(row=None, **fields) -> RecordError:
    with pytest.raises(RecordError) as caught:
        values(row=row, **fields)
    return caught.value


# ---- accepted values ---------------------------------------------------------------------

ACCEPTED = [
    # money from CSV text
    ("revenue", "12,400.00", D("12400.00")),
    ("revenue", "1,234,567.89", D("1234567.89")),
    ("revenue", "1200 EUR", D("1200")),
    ("revenue", "EUR 1200", D("1200")),
    ("revenue", "1200.50EUR", D("1200.50")),
    ("revenue", "  12.50  ", D("12.50")),
    ("revenue", "-300.00", D("-300.00")),
    ("revenue", "0", D("0")),
    # money from JSON values
    ("revenue", D("12400.10"), D("12400.10")),
    ("revenue", 12400, D("12400")),
    # counts
    ("orders", "12", D("12")),
    ("orders", "0", D("0")),
    ("orders", 12, D("12")),
    ("orders", D("12"), D("12")),
    ("orders", "1,000", D("1000")),
    # hours and days
    ("hours", "12.5", D("12.5")),
    ("hours", D("0.1"), D("0.1")),
    ("days_late", "147", D("147")),
    # percent: a percentage or a fraction
    ("share", "5%", D("0.05")),
    ("share", "12.5%", D("0.125")),
    ("share", "0.05", D("0.05")),
    ("share", D("0.05"), D("0.05")),
    # plain numbers
    ("factor", "-2.5", D("-2.5")),
    ("factor", 3, D("3")),
    # yes/no words and JSON booleans
    ("vip", "yes", True), ("vip", "Yes", True), ("vip", "YES", True), ("vip", "y", True),
    ("vip", "true", True), ("vip", "1", True), ("vip", True, True),
    ("vip", "no", False), ("vip", "No", False), ("vip", "n", False), ("vip", "false", False),
    ("vip", "0", False), ("vip", False, False),
    # dates
    ("since", "2026-01-15", datetime.date(2026, 1, 15)),
    ("since", "2024-02-29", datetime.date(2024, 2, 29)),
    # text
    ("name", "Hansa Trading GmbH", "Hansa Trading GmbH"),
    ("name", "  padded  ", "padded"),
    ("name", 42, "42"),
    ("region", "north", "north"),
]


@pytest.mark.parametrize("field, raw, expected", ACCEPTED,
                         ids=[f"{f}={r!r}" for f, r, _ in ACCEPTED])
def test_accepted_values(field, raw, expected):
    got = values(**{field: raw})[field]
    assert got == expected
    assert type(got) is type(expected)


def test_money_keeps_exact_digits():
    assert str(values(revenue="12,400.00")["revenue"]) == "12400.00"
    assert str(values(revenue=D("0.10"))["revenue"]) == "0.10"


def test_float_input_is_taken_as_its_shortest_decimal_text():
    got = values(revenue=0.1)["revenue"]
    assert type(got) is D and got == D("0.1")


# ---- rejected values ---------------------------------------------------------------------

REJECTED = [
    # field, raw, a fragment the message must contain (besides the field name)
    ("revenue", "1200 USD", "USD"),
    ("revenue", "100 EUX", "unknown currency 'EUX'"),
    ("revenue", "twelve thousand", "amount"),
    ("revenue", "12,34", "amount"),
    ("revenue", "1 200,00", "amount"),
    ("revenue", "EUR", "amount"),
    ("revenue", "NaN", "amount"),
    ("revenue", "nan", "amount"),
    ("revenue", "sNaN", "amount"),
    ("revenue", "Infinity", "amount"),
    ("revenue", "-Infinity", "amount"),
    ("revenue", "inf", "amount"),
    ("revenue", D("NaN"), "amount"),
    ("revenue", D("Infinity"), "amount"),
    ("revenue", float("nan"), "amount"),
    ("revenue", float("inf"), "amount"),
    ("revenue", True, "amount"),
    ("revenue", [100], "amount"),
    ("orders", "-5", "whole number"),
    ("orders", "12.5", "whole number"),
    ("orders", D("12.5"), "whole number"),
    ("orders", -1, "whole number"),
    ("orders", "five", "whole number"),
    ("orders", "5 EUR", "whole number"),
    ("orders", True, "whole number"),
    ("hours", "-1", "hours"),
    ("days_late", "-3", "days"),
    ("share", "five%", "percentage"),
    ("share", "5 EUR", "percentage"),
    ("factor", "NaN", "number"),
    ("vip", "maybe", "yes or no"),
    ("vip", "2", "yes or no"),
    ("since", "15/01/2026", "YYYY-MM-DD"),
    ("since", "2026-02-30", "YYYY-MM-DD"),
    ("name", True, "text"),
    ("name", ["a"], "text"),
]


@pytest.mark.parametrize("field, raw, fragment", REJECTED,
                         ids=[f"{f}={r!r}" for f, r, _ in REJECTED])
def test_rejected_values(field, raw, fragment):
    err = error(row=7, **{field: raw})
    assert err.row == 7
    assert err.id == "R-1"
    assert err.field == field
    assert err.value == str(raw)
    assert err.expected  # what a good value looks like
    assert fragment in str(err) or fragment in err.expected
    assert field in str(err)


def test_other_currency_message_names_both_currencies():
    err = error(revenue="1200 USD")
    assert "USD" in err.message and "EUR" in err.message
    assert err.expected == "an amount such as 1234.50"


def test_unknown_currency_is_told_apart_from_a_foreign_one():
    assert "unknown currency 'EUX'" in error(revenue="100 EUX").message
    assert "unknown" not in error(revenue="100 GBP").message


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_empty_required_field(blank):
    err = error(row=3, revenue=blank)
    assert (err.row, err.id, err.field, err.value) == (3, "R-1", "revenue", "")
    assert err.expected == "an amount such as 1234.50"
    assert "required" in err.message and "revenue" in err.message


def test_missing_required_key_column():
    err = error(orders="")
    assert err.field == "orders" and err.expected == "a whole number, 0 or more"
    record = {"revenue": "1.00", "orders": "1"}
    with pytest.raises(RecordError) as caught:
        values(record)
    assert caught.value.field == "id" and caught.value.id is None


def test_defaults_apply_to_empty_cells():
    got = values(name="", region="", discount="", visits="", hours="", days_late="", share="",
                 factor="", vip="", since="")
    assert got["name"] is None and got["since"] is None  # optional, no default
    assert got["region"] == "unassigned"
    assert got["discount"] == 0 and got["visits"] == 0 and got["hours"] == 0 and got["days_late"] == 0
    assert got["share"] == D("0.05")
    assert got["factor"] == 1
    assert got["vip"] is False


def test_defaults_apply_to_absent_keys_and_json_null():
    got = values({"id": "R-2", "revenue": "1.00", "orders": "0", "region": None, "share": None})
    assert got["region"] == "unassigned" and got["share"] == D("0.05") and got["name"] is None


def test_a_record_that_is_not_a_mapping():
    plan = POLICY.plan
    with pytest.raises(RecordError) as caught:
        validate(["R-1", "100.00", "3"], plan.fields, plan.policy.key, plan.policy.currency, 4)
    assert caught.value.row == 4
    assert "list" in caught.value.message


def test_record_error_as_dict():
    err = error(row=9, orders="12.5")
    assert err.as_dict() == {"row": 9, "id": "R-1", "error": err.message, "field": "orders",
                             "value": "12.5", "expected": "a whole number, 0 or more"}
    assert str(err).startswith("row 9, id R-1: ")


def test_numeric_id_from_json_becomes_text():
    got = values({"id": 42, "revenue": D("1.00"), "orders": 1})
    assert got["id"] == "42"


# ---- readers -------------------------------------------------------------------------------

CSV_TEXT = ("id,revenue,orders\n"
            "A,\"12,400.00\",3\n"
            "B,10.00,1,surplus\n"
            "C,5.00,2\n")


def test_csv_reader_rows_and_too_many_cells():
    rows = list(read_records(io.StringIO(CSV_TEXT), "csv"))
    assert [row for row, _ in rows] == [1, 2, 3]
    assert rows[0][1] == {"id": "A", "revenue": "12,400.00", "orders": "3"}
    bad = rows[1][1]
    assert isinstance(bad, RecordError) and bad.row == 2
    assert "4 cells" in bad.message and "3 columns" in bad.message
    results = list(evaluate_rows(POLICY.plan, rows))
    assert [type(r).__name__ for r in results] == ["Decision", "RecordError", "Decision"]
    assert [r.row for r in results] == [1, 2, 3]
    assert results[0].id == "A" and results[2].id == "C"


def test_csv_reader_short_row_is_a_record_error_not_silent_defaults():
    """A cut-off line is reported; only an empty cell means "missing, use the default"."""
    text = "id,revenue,orders,region\nA,1.00,2,\nB,1.00\n"
    results = list(evaluate_rows(POLICY.plan, read_records(io.StringIO(text), "csv")))
    assert isinstance(results[0], Decision)
    assert isinstance(results[1], RecordError) and results[1].row == 2
    assert "2 cells" in results[1].message and "4 columns" in results[1].message


def test_csv_header_names_are_trimmed_and_must_be_unique():
    rows = list(read_records(io.StringIO("\ufeffid , revenue,orders\nA,1.00,2\n"), "csv"))
    assert rows[0][1] == {"id": "A", "revenue": "1.00", "orders": "2"}
    with pytest.raises(ValueError, match="repeats the column revenue"):
        list(read_records(io.StringIO("id,revenue,revenue\nA,1,2\n"), "csv"))


@pytest.mark.parametrize("cell", ["1e99999999", "1E5", "١٢٣", "１２３", "1" * 41, "-1e-99999999"])
def test_cells_that_are_not_plain_decimals_are_refused(cell):
    text = f"id,revenue,orders\nA,{cell},2\n"
    results = list(evaluate_rows(POLICY.plan, read_records(io.StringIO(text), "csv")))
    assert isinstance(results[0], RecordError) and results[0].field == "revenue"


def test_one_unreadable_jsonl_line_does_not_stop_the_batch():
    huge = "9" * 5000
    text = '{"id": "A", "revenue": "1.00", "orders": 1}\n{"id": "B", "revenue": ' + huge + '}\n' + \
        "[" * 100000 + "]" * 100000 + '\n{"id": "C", "revenue": "2.00", "orders": 1}\n'
    results = list(evaluate_rows(POLICY.plan, read_records(io.StringIO(text), "jsonl")))
    assert [type(r).__name__ for r in results] == ["Decision", "RecordError", "RecordError", "Decision"]


def test_json_reader_uses_decimal_for_numbers():
    text = '[{"id": "A", "revenue": 12400.10, "orders": 3, "vip": true}, {"id": "B", "revenue": "5.00", "orders": 1}]'
    rows = list(read_records(io.StringIO(text), "json"))
    assert [row for row, _ in rows] == [1, 2]
    assert type(rows[0][1]["revenue"]) is D and str(rows[0][1]["revenue"]) == "12400.10"
    got = values(rows[0][1])
    assert got["revenue"] == D("12400.10") and got["vip"] is True


def test_json_reader_rejects_non_array_and_bad_json():
    with pytest.raises(ValueError):
        list(read_records(io.StringIO('{"id": "A"}'), "json"))
    rows = list(read_records(io.StringIO('[{"id": "A"'), "json"))  # streamed: the cut-off record is its error
    assert len(rows) == 1 and isinstance(rows[0][1], RecordError) and "cut off" in rows[0][1].message


def test_json_array_item_that_is_not_an_object():
    rows = read_records(io.StringIO('[{"id": "A", "revenue": "1", "orders": 1}, 5]'), "json")
    results = list(evaluate_rows(POLICY.plan, rows))
    assert isinstance(results[0], Decision)
    assert isinstance(results[1], RecordError) and results[1].row == 2


def test_jsonl_invalid_line_is_an_error_for_that_row_and_the_rest_go_on():
    text = ('{"id": "A", "revenue": 10.50, "orders": 1}\n'
            '{"id": "B", "revenue": 10.50, "orders": \n'
            '\n'
            '{"id": "C", "revenue": "NaN", "orders": 1}\n'
            '{"id": "D", "revenue": 2.25, "orders": 2}\n')
    rows = list(read_records(io.StringIO(text), "jsonl"))
    assert [row for row, _ in rows] == [1, 2, 4, 5]  # rows are line numbers; blank lines skipped
    assert isinstance(rows[1][1], RecordError) and rows[1][1].row == 2
    assert "not valid JSON" in rows[1][1].message
    assert type(rows[0][1]["revenue"]) is D
    results = list(evaluate_rows(POLICY.plan, rows))
    assert [type(r).__name__ for r in results] == ["Decision", "RecordError", "RecordError", "Decision"]
    assert results[2].row == 4 and results[2].id == "C" and results[2].field == "revenue"
    assert [r.id for r in results if isinstance(r, Decision)] == ["A", "D"]


def test_jsonl_nan_constant_is_rejected():
    rows = list(read_records(io.StringIO('{"id": "N", "revenue": NaN, "orders": 1}\n'
                                         '{"id": "I", "revenue": Infinity, "orders": 1}\n'), "jsonl"))
    results = list(evaluate_rows(POLICY.plan, rows))
    assert all(isinstance(r, RecordError) and r.field == "revenue" for r in results)


def test_readers_stream():
    def lines():
        yield "id,revenue,orders\n"
        yield "A,1.00,1\n"
        raise AssertionError("read past the first record")

    reader = read_records(lines(), "csv")
    assert next(reader)[0] == 1


def test_unknown_format_and_detection():
    with pytest.raises(ValueError):
        list(read_records(io.StringIO(""), "xml"))
    assert detect_format("x.JSONL") == "jsonl" and detect_format("x.ndjson") == "jsonl"
    assert detect_format("x.json") == "json" and detect_format("x.csv") == "csv" and detect_format("-") == "csv"


# ---- examples/bad_customers.csv -----------------------------------------------------------------


def _readme_bad_rows() -> dict:
    """id → defective field, from the bad_customers.csv table in examples/README.md."""
    text = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    section = text.split("## `bad_customers.csv`", 1)[1]
    bad = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"C-\d+", cells[0]) and "invalid" in cells[1]:
            bad[cells[0]] = re.search(r"`([a-z_]+)`", cells[2]).group(1)
    return bad


def test_bad_customers_csv():
    bad = _readme_bad_rows()
    assert len(bad) == 6
    policy = load_policy(ROOT / "policies" / "standard.policy")
    with open(ROOT / "examples" / "bad_customers.csv", newline="", encoding="utf-8") as stream:
        count_in = sum(1 for _ in csv.DictReader(stream))
    with open(ROOT / "examples" / "bad_customers.csv", newline="", encoding="utf-8") as stream:
        results = list(evaluate_rows(policy.plan, read_records(stream, "csv")))
    decisions = [r for r in results if isinstance(r, Decision)]
    errors = [r for r in results if isinstance(r, RecordError)]
    assert count_in == 9
    assert len(decisions) + len(errors) == count_in == len(results)
    assert {e.id: e.field for e in errors} == bad
    for e in errors:
        assert e.row == int(e.id[-1])  # C-9001 is data row 1, ...
        assert e.value is not None and e.expected
    assert "unknown currency" in next(e for e in errors if e.id == "C-9008").message
    assert "USD" in next(e for e in errors if e.id == "C-9006").message
    by_id = {d.id: d for d in decisions}
    assert set(by_id) == {"C-9001", "C-9005", "C-9009"}
    assert by_id["C-9009"].figures["profit"] == D("21529.89")
    assert by_id["C-9009"].figures["commission"] == D("9170.03")  # 9,170.025 half-up
    c9005 = by_id["C-9005"]
    fields = {s.name: s.value for s in c9005.explain().steps if s.kind == "field"}
    assert fields["name"] is None and fields["region"] == "unassigned" and fields["overdue"] == 0


def test_bad_customers_csv_through_evaluate_many():
    policy = load_policy(ROOT / "policies" / "standard.policy")
    with open(ROOT / "examples" / "bad_customers.csv", newline="", encoding="utf-8") as stream:
        results = list(policy.evaluate_many(csv.DictReader(stream)))
    assert len(results) == 9
    assert sorted(r.id for r in results if isinstance(r, RecordError)) == sorted(_readme_bad_rows())
    assert [r.row for r in results] == list(range(1, 10))
