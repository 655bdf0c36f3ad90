"""Customer records: reading CSV, JSON and JSON Lines, and validating each value.

Readers stream: one record at a time, each with its row number, so memory does
not grow with the file. Validation turns a mapping of raw values into the tuple
the plan evaluates, or a RecordError that says which field, which value and what
was expected; the batch goes on.
"""
from __future__ import annotations

import csv
import datetime
import json
import os
import re
import shutil
import tempfile
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import attrs

from .checked import FieldSpec
from .currencies import ISO_4217

_AMOUNT = re.compile(r"^\s*(?:([A-Z]{3})\s*)?([-+]?[\d,]*\.?\d+)\s*(?:([A-Z]{3}))?\s*$", re.ASCII)
# A cell longer than this, or with an exponent ('1e99999999'), is not a figure a business
# records; refusing it keeps one cell from costing gigabytes to print.
MAX_CELL = 40
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_EXPECTED = {
    "money": "an amount such as 1234.50",
    "number": "a number",
    "count": "a whole number, 0 or more",
    "hours": "a number of hours, 0 or more",
    "days": "a number of days, 0 or more",
    "percent": "a percentage such as 5% (or the fraction 0.05)",
    "text": "text",
    "date": "a date as YYYY-MM-DD",
    "yes/no": "yes or no",
}


@attrs.frozen
class RecordError(Exception):
    """A record that could not be evaluated; the rest of the batch goes on."""

    message: str
    row: Optional[int] = None
    id: Optional[str] = None
    field: Optional[str] = None
    value: Optional[str] = None
    expected: Optional[str] = None
    line: Optional[int] = None  # the policy line, for evaluation errors
    kind: Optional[str] = None  # "engine": a fault of the engine, not of the record

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.id:
            where.append(f"id {self.id}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def as_dict(self) -> dict:
        out = {"row": self.row, "id": self.id, "error": self.message}
        for key in ("field", "value", "expected", "line", "kind"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class _Invalid(Exception):
    pass


def _decimal(raw: Any, currency: str, kind: str) -> Decimal:
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, bool):
        raise _Invalid()
    elif isinstance(raw, int):
        if abs(raw) >= 10 ** MAX_CELL:
            raise _Invalid("the number is too large")
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))  # JSON from other libraries: the shortest exact text
    elif isinstance(raw, str):
        if not _plain_text(raw):
            value = _amount_text(raw, currency, kind)
        else:
            try:
                value = Decimal(raw)
            except (InvalidOperation, ValueError):
                value = _amount_text(raw, currency, kind)
    else:
        raise _Invalid()
    if not value.is_finite() or value.adjusted() >= MAX_CELL or int(value.as_tuple().exponent) < -MAX_CELL:
        raise _Invalid()
    return value


def _plain_text(raw: str) -> bool:
    """Short ASCII text with no exponent or underscore: what Decimal() may read as it is."""
    return len(raw) <= MAX_CELL and raw.isascii() and "e" not in raw and "E" not in raw and "_" not in raw


def _amount_text(text: str, currency: str, kind: str) -> Decimal:
    """The slow path: '12,400.00', '1200 EUR', 'EUR 1200', '5%'."""
    stripped = text.strip()
    if len(stripped) > MAX_CELL:
        raise _Invalid("the value is too long for a number")
    if kind == "percent" and stripped.endswith("%"):
        return _decimal(stripped[:-1].replace(",", ""), currency, "number") / 100
    match = _AMOUNT.match(stripped)
    if not match:
        raise _Invalid()
    code = match.group(1) or match.group(3)
    if code is not None:
        if kind != "money":
            raise _Invalid()
        if code not in ISO_4217:
            raise _Invalid(f"unknown currency '{code}'")
        if code != currency:
            raise _Invalid(f"amount is in {code}, but the policy is in {currency}")
    digits = match.group(2)
    if "," in digits and not re.fullmatch(r"[-+]?\d{1,3}(,\d{3})*(\.\d+)?", digits):
        raise _Invalid()
    return Decimal(digits.replace(",", ""))


def _convert(spec: FieldSpec, raw: Any, currency: str) -> Any:
    kind = spec.kind
    if kind == "text":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
            raise _Invalid()
        return raw.strip() if isinstance(raw, str) else str(raw)
    if kind == "yes/no":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
        raise _Invalid()
    if kind == "date":
        try:
            return datetime.date.fromisoformat(str(raw).strip())
        except ValueError:
            raise _Invalid() from None
    value = _decimal(raw, currency, kind)
    if kind == "count":
        if value < 0 or value != value.to_integral_value():
            raise _Invalid()
    elif kind in ("hours", "days") and value < 0:
        raise _Invalid()
    return value


_DECIMAL_KINDS = frozenset({"money", "number", "hours", "days", "count"})  # read as Decimal
_ANY_SIGN = frozenset({"money", "number"})  # hours, days and counts must be 0 or more


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def validate(mapping: Mapping[str, Any], fields: Sequence[FieldSpec], key: str, currency: str,
             row: Optional[int] = None) -> Tuple[tuple, Optional[str]]:
    """The record's values in field order, and its id; raise RecordError if a value is bad."""
    if mapping.__class__ is not dict and not isinstance(mapping, Mapping):
        raise RecordError(f"a record must be an object of field values, not {type(mapping).__name__}", row=row)
    record_id = mapping.get(key)
    record_id = None if _is_blank(record_id) else str(record_id).strip()
    values: List[Any] = []
    append = values.append
    for spec in fields:
        raw = mapping.get(spec.column)
        kind = spec.kind
        if (raw.__class__ is str and raw and kind in _DECIMAL_KINDS and len(raw) <= MAX_CELL  # _plain_text,
                and raw.isascii() and "e" not in raw and "E" not in raw and "_" not in raw):   # inlined: hot
            # The common case, plain decimal text from a CSV cell; anything unusual
            # falls through to the full conversion below, which explains errors.
            try:
                value = Decimal(raw)
            except (InvalidOperation, ValueError):
                value = None
            if value is not None and value.is_finite() and (kind in _ANY_SIGN or value >= 0 and (
                    kind != "count" or value == value.to_integral_value())):
                append(value)
                continue
        elif kind == "text" and raw.__class__ is str:
            text = raw.strip()
            if text:
                append(text)
                continue
        if _is_blank(raw):
            if spec.default is not None:
                append(spec.default)
                continue
            if spec.optional:
                append(None)
                continue
            raise RecordError(f"required field '{spec.column}' is missing", row=row, id=record_id,
                              field=spec.column, value="", expected=_EXPECTED[spec.kind])
        try:
            append(_convert(spec, raw, currency))
        except _Invalid as problem:
            detail = problem.args[0] if problem.args else f"expected {_EXPECTED[spec.kind]}"
            raise RecordError(f"field '{spec.column}' has {_show(raw)}: {detail}", row=row, id=record_id,
                              field=spec.column, value=str(raw), expected=_EXPECTED[spec.kind]) from None
    return tuple(values), record_id


def _show(raw: Any) -> str:
    text = f"{raw:.3e}" if isinstance(raw, int) and abs(raw) >= 10 ** MAX_CELL else str(raw)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"'{text}'"


# ---- readers ------------------------------------------------------------------------

FORMATS = ("csv", "json", "jsonl")


def detect_format(name: str) -> str:
    """The input format from a file name: .json, .jsonl/.ndjson, otherwise CSV."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "json"
    return "csv"


def read_records(stream: IO[str], format: str) -> Iterator[Tuple[int, Any]]:
    """(row number, raw record) pairs; a row that cannot even be read yields a RecordError."""
    if format == "csv":
        reader = csv.DictReader(stream)
        header = [name.strip().lstrip("\ufeff") for name in reader.fieldnames or ()]
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise ValueError(f"the CSV header repeats the column {', '.join(repeated)}")
        reader.fieldnames = header
        index = 0
        while True:
            index += 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield index, RecordError(f"row cannot be read as CSV: {error}", row=index)
                continue
            if None in row:  # more cells than header columns
                yield index, RecordError(f"row has {len(row) - 1 + len(row[None])} cells, but the header has "
                                         f"{len(header)} columns", row=index)
            elif None in row.values():  # fewer cells: a cut-off line, not a row of empty values
                cells = sum(value is not None for value in row.values())
                yield index, RecordError(f"row has {cells} cells, but the header has {len(header)} columns",
                                         row=index)
            else:
                yield index, row
    elif format == "jsonl":
        for index, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                yield index, json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as error:
                yield index, RecordError(f"line is not valid JSON: {error.msg}", row=index)
            except (ValueError, RecursionError) as error:  # a 5,000-digit number, [[[[...]]]]
                yield index, RecordError(f"line cannot be read: {str(error)[:80]}", row=index)
    elif format == "json":
        try:
            data = json.load(stream, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise ValueError(f"the file is not valid JSON: {error.msg} at line {error.lineno}") from None
        if not isinstance(data, list):
            raise ValueError("a JSON input must be an array of records (or use JSON Lines)")
        for index, item in enumerate(data, start=1):
            yield index, item
    else:
        raise ValueError(f"unknown input format '{format}'; use one of {', '.join(FORMATS)}")


class RecordSource:
    """Records from a file (or a stream), readable again: a portfolio run reads the records in
    its first and its deciding pass instead of holding them all in memory. A stream that cannot
    seek (standard input) is first copied to a temporary file.

        source = RecordSource.open("customers.csv")     # format from the extension
        run = policy.run(source)
    """

    def __init__(self, stream: IO[str], format: str, name: Optional[str] = None) -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown input format '{format}'; use one of {', '.join(FORMATS)}")
        self.stream, self.format, self.name = stream, format, name
        self.start = stream.tell() if stream.seekable() else None

    def rereadable(self) -> "RecordSource":
        """This source, made readable more than once (a pipe is copied to a temporary file)."""
        if self.start is None:
            spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
            shutil.copyfileobj(self.stream, spool)
            spool.seek(0)
            self.stream, self.start = spool, 0
        return self

    @classmethod
    def open(cls, path: Union[str, "os.PathLike[str]"], format: Optional[str] = None) -> "RecordSource":
        """A record file, in `format` or the one its extension names."""
        stream = open(path, encoding="utf-8-sig", newline="")
        return cls(stream, format or detect_format(str(path)), os.path.basename(str(path)))

    def rows(self) -> Iterator[Tuple[int, Any]]:
        """(row number, raw record) pairs from the beginning, as read_records gives them
        (a stream that cannot seek is read once, unless made `rereadable` first)."""
        if self.start is not None:
            self.stream.seek(self.start)
        return read_records(self.stream, self.format)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "RecordSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
