"""Customer records: reading CSV, JSON, JSON Lines, .xlsx and Parquet, and validating each value.

Readers stream: one record at a time, each with its row number, so memory does
not grow with the file (engine/readers/ has one module per kind of file). A file that
cannot be read at all is one InputError; a row that cannot be read is that row's
RecordError. Validation turns a mapping of raw values into the tuple
the plan evaluates, or a RecordError that says which field, which value and what
was expected; the batch goes on.
"""
from __future__ import annotations

import datetime
import io
import itertools
import os
import re
import reprlib
import shutil
import tempfile
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Callable, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import attrs

from .checked import FieldSpec
from .currencies import ISO_4217
from .history import GRANULARITIES, looks_like, read_period
from .history import expected as expected_period

# Currency signs a money cell may carry instead of the ISO code, and the currencies each stands for.
_DOLLARS = ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "TWD", "ARS", "CLP", "COP", "UYU", "DOP", "CUP",
            "BSD", "BBD", "BZD", "BMD", "BND", "KYD", "FJD", "GYD", "JMD", "LRD", "NAD", "SBD", "SRD", "TTD", "XCD")
CURRENCY_SIGNS = {
    "€": ("EUR",), "£": ("GBP",), "¥": ("JPY", "CNY"), "円": ("JPY",), "元": ("CNY",), "₹": ("INR",), "₩": ("KRW",),
    "₽": ("RUB",), "₺": ("TRY",), "₪": ("ILS",), "₫": ("VND",), "₱": ("PHP",), "₴": ("UAH",), "₦": ("NGN",),
    "฿": ("THB",), "₸": ("KZT",), "₼": ("AZN",), "₾": ("GEL",), "₵": ("GHS",), "₡": ("CRC",), "₲": ("PYG",),
    "zł": ("PLN",), "Kč": ("CZK",), "Ft": ("HUF",), "kr": ("SEK", "NOK", "DKK", "ISK"), "Fr.": ("CHF",),
    "R$": ("BRL",), "US$": ("USD",), "C$": ("CAD",), "CA$": ("CAD",), "A$": ("AUD",), "AU$": ("AUD",),
    "NZ$": ("NZD",), "HK$": ("HKD",), "S$": ("SGD",), "MX$": ("MXN",), "NT$": ("TWD",), "$": _DOLLARS,
}
_SIGN_PATTERN = "|".join(re.escape(sign) for sign in sorted(CURRENCY_SIGNS, key=len, reverse=True))
_AMOUNT = re.compile(rf"^(?P<s1>[-+])?\s*(?:(?P<pre>[A-Z]{{3}}|{_SIGN_PATTERN})\s*)?(?P<s2>[-+])?"
                     rf"(?P<digits>[0-9,]*\.?[0-9]+)\s*(?P<post>[A-Z]{{3}}|{_SIGN_PATTERN})?$", re.ASCII)
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})  # no-break spaces
_COMMA_DECIMAL = re.compile(r"(?<![0-9,])[0-9]+,[0-9]{1,2}(?![0-9,])|[0-9]\.[0-9]{3},[0-9]")
_DC_NUMBER = re.compile("[-+]?[0-9](?:[0-9.,' \u00a0\u202f]*[0-9])?")
_DC_VALID = re.compile("[-+]?(?:[0-9]{1,3}(?:([.' \u00a0\u202f])[0-9]{3})(?:\\1[0-9]{3})*|[0-9]+)(?:,[0-9]+)?")
_DC_GROUPS = re.compile("[.' \u00a0\u202f]")
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
    **{granularity: expected_period(granularity) for granularity in GRANULARITIES},
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
    kind: Optional[str] = None  # "engine": a fault of the engine, not of the record; "held": see history_run

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
    """The slow path: '12,400.00', '1200 EUR', 'EUR 1200', '€ 12.40', '$5', '5%'."""
    stripped = text.strip().translate(_SPACES)
    if len(stripped) > MAX_CELL:
        raise _Invalid("the value is too long for a number")
    if kind == "percent" and stripped.endswith("%"):
        return _decimal(stripped[:-1], currency, "number") / 100
    match = _AMOUNT.match(stripped)
    if not match or match.group("s1") and match.group("s2") or match.group("pre") and match.group("post"):
        raise _comma_hint(stripped, kind)
    code = match.group("pre") or match.group("post")
    if code is not None:
        if kind != "money":
            raise _Invalid()
        if code in CURRENCY_SIGNS:
            codes = CURRENCY_SIGNS[code]
            if currency not in codes:
                named = f"{codes[0]} ({code})" if len(codes) == 1 else f"'{code}', which is not the sign of {currency}"
                raise _Invalid(f"amount is in {named}, but the policy is in {currency}")
        elif code not in ISO_4217:
            raise _Invalid(f"unknown currency '{code}'")
        elif code != currency:
            raise _Invalid(f"amount is in {code}, but the policy is in {currency}")
    digits = match.group("digits")
    if "," in digits and not _GROUPED.fullmatch(digits):
        raise _comma_hint(stripped, kind)
    sign = match.group("s1") or match.group("s2") or ""
    return Decimal(sign + digits.replace(",", ""))


def _comma_hint(text: str, kind: str) -> _Invalid:
    """The error for text that is not an amount; for '12,40' or '1.234,56' it says what a decimal
    comma needs."""
    if _COMMA_DECIMAL.search(text):
        return _Invalid(f"expected {_EXPECTED[kind]}; for a decimal comma declare it (--decimal-comma, or "
                        f"decimal_comma=True)")
    return _Invalid()


def from_decimal_comma(text: str) -> Optional[str]:
    """Text with a decimal comma ('1.234,56', '€ 12,40', '5,5%') with its number written the
    engine's way ('1234.56', '€ 12.40', '5.5%'); None when the number in it is not written
    with a decimal comma ('1.5': a dot is only a thousands separator then)."""
    match = _DC_NUMBER.search(text)
    if match is None or _DC_NUMBER.search(text, match.end()) is not None:
        return text  # no number, or more than one: left for the field's check to explain
    number = match.group()
    if not _DC_VALID.fullmatch(number):
        return None
    plain = _DC_GROUPS.sub("", number).replace(",", ".")
    return text[:match.start()] + plain + text[match.end():]


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
    if kind in GRANULARITIES:
        text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        period = read_period(kind, text)
        if period is None:
            other = looks_like(text)
            if other:
                raise _Invalid(f"a {other}, but this policy's histories are by {kind}: write {expected_period(kind)}")
            raise _Invalid(f"expected {expected_period(kind)}")
        return period
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


def record_id(record: Any, key: str) -> Optional[str]:
    """The id of a raw record as `validate` reads it (inlined there, as it runs per record): its key
    column, stripped; None when blank."""
    if not isinstance(record, Mapping):
        return None
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


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
                              field=spec.column, value=_text_of(raw), expected=_EXPECTED[spec.kind]) from None
    return tuple(values), record_id


def _text_of(raw: Any) -> str:
    """A raw value as text, bounded for a list or object however large or deep."""
    if isinstance(raw, (list, dict, tuple)):
        return reprlib.repr(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10 ** MAX_CELL:
        digits = str(abs(raw))  # not through float: 1e400 overflows one
        return f"{'-' if raw < 0 else ''}{digits[0]}.{digits[1:4]}e+{len(digits) - 1}"
    return str(raw)


def _show(raw: Any) -> str:
    text = _text_of(raw)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"'{text}'"


# ---- readers ------------------------------------------------------------------------

FORMATS = ("csv", "json", "jsonl", "xlsx", "parquet")
FORMAT_NAMES = {"csv": "CSV", "json": "a JSON array", "jsonl": "JSON Lines", "xlsx": "an .xlsx workbook",
                "parquet": "a Parquet file"}
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".tab": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".xlsx": "xlsx", ".xlsm": "xlsx", ".parquet": "parquet", ".pq": "parquet"}
NUMERIC_KINDS = frozenset({"money", "number", "count", "hours", "days", "percent"})


class InputError(ValueError):
    """A record file that cannot be read at all, in one message naming the file: its format or
    encoding, an empty file, a header that lacks a column the policy's record needs. Raised by
    `RecordSource.check` (so by `policy.run(source)` before any record) and by its readers;
    the CLI prints it and exits 1. A subclass of ValueError."""


def detect_format(name: str) -> str:
    """The input format from a file name: .csv/.tsv, .json, .jsonl/.ndjson, .xlsx, .parquet
    ('-', standard input, is CSV). Any other name is an InputError: say the format instead."""
    if name == "-":
        return "csv"
    base = os.path.basename(name)
    extension = os.path.splitext(base.lower())[1]
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if extension == ".xls":
        raise InputError(f"{base}: the old Excel .xls format cannot be read; save it as .xlsx or CSV")
    what = f"the extension '{extension}'" if extension else "a name without an extension"
    raise InputError(f"{base}: {what} does not say the format; give it with --input-format "
                     f"({', '.join(FORMATS)}), or format= in the library")


def _delimiter(delimiter: Optional[str]) -> Optional[str]:
    if delimiter is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    delimiter = named.get(delimiter.lower(), delimiter)
    if len(delimiter) != 1 or delimiter in "\"\r\n" or delimiter.isalnum():
        raise InputError(f"the separator must be one character such as , ; | or tab, not {delimiter!r}")
    return delimiter


def read_records(stream: Any, format: str, *, encoding: Optional[str] = None, delimiter: Optional[str] = None,
                 decimal_comma: bool = False) -> Iterator[Tuple[int, Any]]:
    """(row number, raw record) pairs; a row that cannot even be read yields a RecordError.

    `stream` is a text stream, a binary one (decoded as RecordSource decodes files), or for
    CSV, JSON and JSON Lines an iterable of text lines. Nothing is checked against a policy.
    """
    if format not in FORMATS:
        raise InputError(f"unknown input format '{format}'; use one of {', '.join(FORMATS)}")
    if hasattr(stream, "read"):
        yield from RecordSource(stream, format, encoding=encoding, delimiter=delimiter,
                                decimal_comma=decimal_comma).rows()
        return
    from .readers.delimited import CsvRows, sniff_delimiter
    from .readers.jsonfile import JsonArray, chunks_of, jsonl_rows
    if format == "csv":
        lines = iter(stream)
        first = next(lines, None)
        if first is None:
            return
        chosen = _delimiter(delimiter) or sniff_delimiter(first)
        rows: Iterator[Tuple[int, Any]] = iter(CsvRows(itertools.chain([first], lines), chosen, "the input"))
    elif format == "jsonl":
        rows = jsonl_rows(stream)
    elif format == "json":
        rows = iter(JsonArray(chunks_of(stream), "the input"))
    else:
        raise InputError(f"{FORMAT_NAMES[format]} must be read from a binary file, not from lines of text")
    yield from _decimal_commas(rows, None, None) if decimal_comma else rows


def _decimal_commas(rows: Iterator[Tuple[int, Any]], columns: Optional[FrozenSet[str]],
                    key: Optional[str]) -> Iterator[Tuple[int, Any]]:
    """Rows with each number written with a decimal comma turned into the engine's way, in the
    given (numeric) columns; when the columns are unknown (no schema), in every cell that is
    such a number, and no other cell is touched."""
    for row, record in rows:
        if isinstance(record, dict):
            for column in (columns if columns is not None else list(record)):
                value = record.get(column)
                if value.__class__ is not str or not value:
                    continue
                converted = from_decimal_comma(value)
                if columns is None and converted is not None and not _DC_NUMBER.fullmatch(value.strip()):
                    continue  # text with a number in it, in a column that may be text
                if converted is None and columns is None:
                    continue
                if converted is None:
                    record_id = record.get(key) if key is not None else None
                    record = RecordError(
                        f"field '{column}' has {_show(value)}: with a decimal comma, a dot may only separate "
                        f"thousands (such as 1.234,56)", row=row,
                        id=record_id.strip() or None if isinstance(record_id, str) else None, field=column,
                        value=value, expected="a number with a decimal comma, such as 1.234,56")
                    break
                record[column] = converted
        yield row, record


class RecordSource:
    """Records from a file (or a stream), readable again: a portfolio run reads the records in
    its first and its deciding pass instead of holding them all in memory. A stream that cannot
    seek (standard input) is first copied to a temporary file when it must be read twice.

        source = RecordSource.open("customers.csv")     # format from the extension
        run = policy.run(source)                        # checks the header first: InputError
        source.warnings                                 # e.g. columns the policy does not use

    Text files are read as bytes and decoded line by line (`encoding`, or detected: see
    engine/readers/text.py); `delimiter` is CSV's separator (sniffed among , ; and tab when
    None); `decimal_comma` reads '1.234,56' as 1234.56 in the numeric fields; `sheet` is the
    .xlsx sheet to read (the first when None). `on_warning`, when set, is called with each
    warning as it is found (the CLI prints them).
    """

    def __init__(self, stream: IO[Any], format: str, name: Optional[str] = None, *,
                 encoding: Optional[str] = None, delimiter: Optional[str] = None, decimal_comma: bool = False,
                 sheet: Optional[str] = None) -> None:
        from .readers.text import check_encoding
        if format not in FORMATS:
            raise InputError(f"unknown input format '{format}'; use one of {', '.join(FORMATS)}")
        self.stream, self.format, self.name = stream, format, name
        try:
            self.encoding: Optional[str] = check_encoding(encoding) if encoding else None
        except ValueError as error:
            raise InputError(str(error)) from None
        self.delimiter = _delimiter(delimiter)
        self.decimal_comma, self.sheet = decimal_comma, sheet
        self.columns: Optional[Tuple[str, ...]] = None  # the header, once checked
        self.warnings: List[str] = []
        self.on_warning: Optional[Callable[[str], None]] = None
        self.start = stream.tell() if stream.seekable() else None
        self._binary = isinstance(stream.read(0), bytes)
        self._prefix: Optional[bytes] = None  # the first bytes of a stream that cannot seek
        self._head: Any = None
        self._complete = False  # whether _head is the whole file
        self._prepared = False
        self._empty = False
        self._table: Any = None  # the opened workbook or Parquet file
        self._numeric: Optional[FrozenSet[str]] = None
        self._key: Optional[str] = None
        self._checked: Optional[tuple] = None

    @property
    def label(self) -> str:
        """The file's name in messages."""
        return self.name or "the input"

    def rereadable(self) -> "RecordSource":
        """This source, made readable more than once (a pipe is copied to a temporary file)."""
        if self.start is None:
            spool: IO[Any]
            if self._binary:
                spool = tempfile.TemporaryFile("w+b")
                if self._prefix is not None:
                    spool.write(self._prefix)
                    self._prefix = None
            else:
                spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
            shutil.copyfileobj(self.stream, spool)
            spool.seek(0)
            self.stream, self.start = spool, 0
        return self

    @classmethod
    def open(cls, path: Union[str, "os.PathLike[str]"], format: Optional[str] = None, *,
             encoding: Optional[str] = None, delimiter: Optional[str] = None, decimal_comma: bool = False,
             sheet: Optional[str] = None) -> "RecordSource":
        """A record file, in `format` or the one its extension names (InputError for another)."""
        stream = open(path, "rb")  # first: a missing file or a directory is the first thing to say
        try:
            chosen = format or detect_format(str(path))
            return cls(stream, chosen, os.path.basename(str(path)), encoding=encoding, delimiter=delimiter,
                       decimal_comma=decimal_comma, sheet=sheet)
        except BaseException:
            stream.close()
            raise

    # -- looking at the file --

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            if self.on_warning is not None:
                self.on_warning(message)

    def _read_head(self) -> Any:
        from .readers.text import HEAD
        if self._head is None:
            stream = self.stream
            if self.start is not None:
                stream.seek(self.start)
                self._head = stream.read(HEAD)
                stream.seek(self.start)
            elif self._binary:
                self._head = self._prefix = stream.read(HEAD)
            else:
                self.rereadable()
                return self._read_head()
            self._complete = len(self._head) < HEAD
        return self._head

    def _prepare(self) -> None:
        """Tell the encoding, see that the file is in its format, sniff the CSV separator."""
        if self._prepared:
            return
        from .readers.text import (KIND_NAMES, binary_kind, decode_head, detect_encoding, display_encoding,
                                   text_kind)
        from .readers.delimited import sniff_delimiter
        label, format = self.label, self.format
        if format in ("xlsx", "parquet"):
            if not self._binary:
                raise InputError(f"{label}: {FORMAT_NAMES[format]} must be read from a binary stream")
            if self.start is None:
                self.rereadable()
            head = self._read_head()
            if not head:
                raise InputError(f"{label} is empty")
            kind = binary_kind(head)
            if kind != format:
                if kind is None:
                    seen, quote = text_kind(decode_head(head, "utf-8", self._complete))
                    looks = {"json": "JSON", "jsonl": "JSON Lines", "text": "text (CSV?)"}.get(seen, "text")
                    what = f"it looks like {looks}: '{quote}'"
                else:
                    what = f"it is {KIND_NAMES[kind]}"
                raise InputError(f"{label} is not {FORMAT_NAMES[format]}: {what}")
            self._prepared = True
            return
        head = self._read_head()
        if self._binary:
            kind = binary_kind(head)
            if kind is not None:
                hint = f": use --input-format {kind}" if kind in FORMATS else ""
                raise InputError(f"{label} is {KIND_NAMES[kind]}, not {FORMAT_NAMES[format]}{hint}")
            if self.encoding is None:
                codec, warnings = detect_encoding(head, self._complete, label)
                self.encoding = codec
                for warning in warnings:
                    self._warn(warning)
            else:
                marked, _ = detect_encoding(head[:4], False, label)
                if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) \
                        and display_encoding(marked) != display_encoding(self.encoding):
                    self._warn(f"{label} starts with the byte order mark of {display_encoding(marked)}, but is read "
                               f"as {self.encoding} (--encoding)")
            text = decode_head(head, self.encoding, self._complete)
            self._display = display_encoding(self.encoding)
        else:
            text, self._display = head, "readable text"
        self._text_head = text
        seen, quote = text_kind(text)
        self._prepared = True
        if seen == "empty":
            self._empty = True
            return
        if format == "csv" and seen in ("json", "jsonl"):
            raise InputError(f"{label} looks like {'a JSON array' if seen == 'json' else 'JSON'} (it starts "
                             f"with '{quote}'), not CSV: use --input-format {seen}")
        if format == "jsonl" and seen == "json":
            raise InputError(f"{label} looks like a JSON array (it starts with '{quote}'), not JSON Lines: "
                             f"use --input-format json")
        if format in ("json", "jsonl") and seen == "text":
            looks = " (CSV?): use --input-format csv" if any(c in quote for c in ",;\t") else ""
            raise InputError(f"{label} does not look like JSON: it starts with '{quote}'{looks}")
        if format == "json" and seen == "jsonl":
            lines = [line for line in text.splitlines() if line.strip()]
            several = len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:2])
            hint = ("; one object per line is JSON Lines: use --input-format jsonl" if several
                    else "; put the records in an array: [{...}, {...}]")
            raise InputError(f"{label} is not a JSON array of records: it starts with '{quote}'{hint}")
        if format == "csv" and self.delimiter is None:
            self.delimiter = sniff_delimiter(text)

    def _open_table(self) -> Any:
        from .readers.tables import ParquetRows, Sheet
        if self._table is None:
            assert self.start is not None
            self.stream.seek(self.start)
            self._table = Sheet(self.stream, self.label, self.sheet) if self.format == "xlsx" \
                else ParquetRows(self.stream, self.label)
            for warning in self._table.warnings:
                self._warn(warning)
        return self._table

    def check(self, fields: Sequence[FieldSpec], key: str) -> None:
        """Check the file before any record is read: InputError if it is empty or its header lacks
        a required column (a field with neither `optional` nor a default, and the key);
        unknown columns and a file with no records are warnings (`warnings`, `on_warning`).
        `policy.run(source)` calls it with the policy's record schema."""
        signature = (tuple(fields), key)
        if self._checked == signature:
            return
        self._prepare()
        label = self.label
        self._key = key
        self._numeric = frozenset(spec.column for spec in fields if spec.kind in NUMERIC_KINDS)
        header: Optional[List[str]] = None
        if self.format in ("xlsx", "parquet"):
            table = self._open_table()
            header = table.header
            if header is None:
                raise InputError(f"{label} is empty: no header and no records")
            has_rows = table.has_rows()
        elif self._empty:
            raise InputError(f"{label} is empty: no header and no records" if self.format == "csv"
                             else f"{label} is empty: no records")
        elif self.format == "csv":
            from .readers.delimited import CsvRows
            from .readers.text import line_end, split_lines
            assert self.delimiter is not None
            rows = CsvRows(split_lines(io.StringIO(self._text_head).read, line_end(self._text_head)), self.delimiter,
                           label, self._display, key)
            header = rows.header
            if header is None:
                raise InputError(f"{label} is empty: no header and no records")
            self.delimiter = rows.delimiter
            has_rows = rows.has_rows() or not self._complete
        elif self.format == "json":
            has_rows = not (self._complete and re.fullmatch(r"[\s\ufeff]*\[\s*\]\s*", self._text_head))
        else:
            has_rows = True
        if header is not None:
            self.columns = tuple(header)
            required = [key] + [spec.column for spec in fields
                                if not spec.optional and spec.default is None and spec.column != key]
            missing = [column for column in required if column not in header]
            if missing:
                raise InputError(self._missing(missing, header))
            known = {spec.column for spec in fields} | {key}
            unknown = [column for column in header if column and column not in known]
            if unknown:
                self._warn(f"{label}: column{'s' if len(unknown) > 1 else ''} not used by the policy (ignored): "
                           f"{', '.join(unknown)}")
        if not has_rows:
            self._warn(f"{label} has a header but no records" if header is not None else f"{label} has no records")
        self._checked = signature

    def _missing(self, missing: List[str], header: List[str]) -> str:
        names = ", ".join(f"'{column}'" for column in missing)
        plural = "s" if len(missing) > 1 else ""
        message = f"{self.label}: the header has no column{plural} {names}, which the policy's record needs"
        hints = []
        folded = {re.sub(r"[\s_-]", "", column.lower()): column for column in header}
        for column in missing:
            near = folded.get(re.sub(r"[\s_-]", "", column.lower()))
            if near is not None:
                hints.append(f"the header has '{near}' (names must match exactly)")
        if self.format == "csv" and len(header) == 1:
            found = [name for sign, name in ((";", "semicolons"), ("\t", "tabs"), (",", "commas"), ("|", "pipes"))
                     if sign in header[0]]
            what = f" and holds {found[0]}" if found else ""
            hints.append(f"the header is one column{what}: pass --delimiter to give the separator")
        return message + (f" ({'; '.join(hints)})" if hints else "")

    # -- the records --

    def rows(self) -> Iterator[Tuple[int, Any]]:
        """(row number, raw record) pairs from the beginning, as read_records gives them
        (a stream that cannot seek is read once, unless made `rereadable` first)."""
        self._prepare()
        rows = self._rows()
        if self.decimal_comma:
            rows = _decimal_commas(rows, self._numeric, self._key)
        return rows

    def _rows(self) -> Iterator[Tuple[int, Any]]:
        from .readers.delimited import CsvRows
        from .readers.jsonfile import JsonArray, jsonl_rows
        from .readers.text import line_end, split_lines
        if self.format in ("xlsx", "parquet"):
            yield from self._open_table().rows(self._key)
            return
        if self._empty:
            return
        newline = line_end(self._text_head) if self.format == "csv" else "\n"
        text = self._text(newline)
        lines: Iterator[str] = text if self._binary else split_lines(text.read, newline)
        if self.format == "csv":
            assert self.delimiter is not None
            yield from CsvRows(lines, self.delimiter, self.label, self._display, self._key)
        elif self.format == "jsonl":
            yield from jsonl_rows(lines)
        else:
            yield from JsonArray(text.read, self.label, self._display)

    def _text(self, newline: str = "\n") -> IO[str]:
        """The file as text, from its beginning (decoded with lines ending at `newline`)."""
        from .readers.text import text_stream
        stream = self.stream
        if not self._binary:
            if self.start is not None:
                stream.seek(self.start)
            return stream
        assert self.encoding is not None
        if self.start is not None:
            stream.seek(self.start)
            return text_stream(stream, self.encoding, newline=newline)
        prefix, self._prefix = self._prefix, b""
        if prefix is None:
            raise InputError(f"{self.label} can be read only once (make it rereadable() first)")
        return text_stream(stream, self.encoding, prefix, newline)

    def close(self) -> None:
        if self._table is not None:
            self._table.close()
        self.stream.close()

    def __enter__(self) -> "RecordSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
