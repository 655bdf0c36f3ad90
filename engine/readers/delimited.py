"""CSV (comma, semicolon or tab separated) read line by line, so no row can take the rest of the file.

The csv module (strict) is fed physical lines one at a time and counted. A record that
runs over more than MAX_RECORD_LINES lines, or to the end of the file, or whose quoted
cell closes where no separator follows, is an unclosed quote: it becomes the error of the
row where the quote opened, and reading goes on at the line after that one. (A quote that
a later stray quote happens to close just before a separator cannot be told from a cell
with line breaks in it.) A line with a byte that could not be decoded is that row's
error; the other rows are read.
"""
from __future__ import annotations

import csv
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..records import InputError, RecordError
from .text import has_undecoded, undecoded

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MAX_RECORD_LINES = 100  # a quoted cell over more lines than this is taken for an unclosed quote
_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\r?\n?$")  # Excel's hint: the first line says the separator


def delimiter_name(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


def sniff_delimiter(text: str) -> str:
    """The separator of the first lines of a CSV file, among comma, semicolon and tab: the one
    that splits the header into most columns with the most rows of the same width."""
    lines = text.splitlines(keepends=True)[:50]
    if lines and _SEP_LINE.match(lines[0]):
        return _SEP_LINE.match(lines[0]).group(1)  # type: ignore[union-attr]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # a line cut off where the sample ends
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths: List[int] = []
        try:
            for cells in csv.reader(lines, delimiter=delimiter):
                if cells:
                    widths.append(len(cells))
        except csv.Error:
            pass
        if not widths or widths[0] < 2:
            continue
        score = (sum(width == widths[0] for width in widths[1:]), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


class _Runaway(Exception):
    """A record has taken more lines than any real one."""


class _Lines:
    """The physical lines of the file for csv.reader, counted, and the ones the current record
    took (`taken`), so that reading can go back to the line after an unclosed quote's."""

    __slots__ = ("source", "pending", "number", "taken")

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.pending: List[str] = []
        self.number = 0
        self.taken: List[str] = []

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.pending.pop() if self.pending else next(self.source)
        self.number += 1
        taken = self.taken
        taken.append(line)
        if len(taken) > MAX_RECORD_LINES:
            raise _Runaway()
        return line

    def again(self, lines: Sequence[str], number: int) -> None:
        """Read `lines` again, the first of them being line `number` + 1."""
        self.pending = self.pending + list(reversed(lines))
        self.number = number


class CsvRows:
    """The header (read when made) and then the rows of a CSV file, as (row, dict or RecordError)."""

    def __init__(self, lines: Iterator[str], delimiter: str, name: str, encoding: str = "UTF-8",
                 key: Optional[str] = None) -> None:
        self.name, self.encoding = name, encoding
        self._lines = _Lines(iter(lines))
        first = next(self._lines, None)
        if first is not None and _SEP_LINE.match(first):
            delimiter = _SEP_LINE.match(first).group(1)  # type: ignore[union-attr]
        elif first is not None:
            self._lines.again([first], 0)
        self.delimiter = delimiter
        self._dialect: Dict[str, Any] = {"delimiter": delimiter, "strict": True}
        self.header: Optional[List[str]] = None
        self.header_line = 0
        self._read_header()
        header: List[str] = self.header or []
        self.key_index = header.index(key) if key is not None and key in header else None

    def _read_header(self) -> None:
        lines = self._lines
        reader = csv.reader(lines, **self._dialect)
        cells: List[str] = []
        while True:
            lines.taken = []
            start = lines.number + 1
            try:
                cells = next(reader)
            except StopIteration:
                return  # no header: an empty file
            except (csv.Error, _Runaway) as error:
                raise InputError(f"{self.name}: the header (line {start}) cannot be read as CSV: "
                                 f"{_reason(error)}") from None
            if cells and any(cell.strip() for cell in cells):
                break
        for line in lines.taken:
            bad = undecoded(line)
            if bad is not None:
                raise InputError(f"{self.name}: the header (line {start}) is not {self.encoding}: the byte {bad}; "
                                 f"pass --encoding NAME (such as --encoding cp1252)")
        header = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
        repeated = sorted({name for name in header if name and header.count(name) > 1})
        if repeated:
            raise InputError(f"{self.name}: the CSV header repeats the column {', '.join(repeated)}")
        self.header, self.header_line = header, start

    def has_rows(self) -> bool:
        """Whether a line with something on it follows the header (reads ahead one line at most
        past blank ones; the rows are then read from a new CsvRows)."""
        for line in self._lines:
            if line.strip():
                return True
        return False

    def __iter__(self) -> Iterator[Tuple[int, Any]]:
        header = self.header
        if header is None:
            return
        width = len(header)
        lines, dialect, key_index = self._lines, self._dialect, self.key_index
        taken: List[str]
        reader = csv.reader(lines, **dialect)
        index = 0
        while True:
            start = lines.number + 1
            lines.taken = taken = []
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, _Runaway) as error:
                index += 1
                yield index, self._unreadable(index, start, taken, error)
                if len(taken) > 1:
                    lines.again(taken[1:], start)
                reader = csv.reader(lines, **dialect)
                continue
            if not cells or not cells[0].strip() and not "".join(cells).strip():
                continue  # a blank line, or one of separators only: no record
            index += 1
            record_id = cells[key_index].strip() if key_index is not None and key_index < len(cells) else None
            if len(taken) == 1:
                damaged = has_undecoded(taken[0])
            else:
                damaged = any(has_undecoded(line) for line in taken)
            if damaged:
                number, bad = next((start + offset, undecoded(line)) for offset, line in enumerate(taken)
                                   if has_undecoded(line))
                if record_id is not None and has_undecoded(record_id):
                    record_id = None
                yield index, RecordError(f"line {number} is not {self.encoding}: the byte {bad} cannot be read "
                                         f"(pass --encoding NAME if the file is in another encoding)",
                                         row=index, id=record_id or None)
            elif len(cells) == width:
                yield index, dict(zip(header, cells))
            else:
                yield index, RecordError(f"row has {len(cells)} cells, but the header has {width} columns",
                                         row=index)

    def _unreadable(self, index: int, start: int, taken: List[str], error: Exception) -> RecordError:
        if isinstance(error, _Runaway):
            message = (f"a quote opened on line {start} is not closed within {MAX_RECORD_LINES} lines; "
                       f"the rows after line {start} are read on their own")
        elif len(taken) > 1 and "end of data" in str(error):
            message = (f"a quote opened on line {start} is never closed (the cell would run to the end of the "
                       f"file); the rows after line {start} are read on their own")
        elif len(taken) > 1:
            message = (f"a quote opened on line {start} is not closed where expected ({_reason(error)} on line "
                       f"{start + len(taken) - 1}); the rows after line {start} are read on their own")
        else:
            message = f"line {start} cannot be read as CSV: {_reason(error)}"
        record_id = None
        if self.key_index is not None and taken and len(taken[0]) < 10_000:
            try:  # the id, if the line where the record starts has it before the trouble
                cells = next(csv.reader([taken[0].rstrip("\r\n").replace("\r", " ")], delimiter=self.delimiter))
                if self.key_index < len(cells) and len(cells[self.key_index]) < 100:
                    record_id = cells[self.key_index].strip() or None
            except (csv.Error, StopIteration):
                pass
        if record_id is not None and has_undecoded(record_id):
            record_id = None
        return RecordError(message, row=index, id=record_id)


def _reason(error: Exception) -> str:
    if isinstance(error, _Runaway):
        return f"a quoted cell runs over more than {MAX_RECORD_LINES} lines"
    text = str(error)
    if "field larger than field limit" in text:
        return f"a cell is longer than {csv.field_size_limit():,} characters (an unclosed quote?)"
    if "end of data" in text:
        return "a quote is never closed"
    if "new-line character seen in unquoted field" in text:
        return "a carriage return (CR) inside a cell that is not quoted"
    return text
