"""Spreadsheets (.xlsx, with openpyxl) and Parquet files (with pyarrow): optional extras.

openpyxl reads a workbook in read-only mode with `data_only=True`: a formula's cell gives
the value the spreadsheet stored for it (never the formula's text), and an error such as
#DIV/0! comes as that text, so the field's check reports it. A formula with no stored
value (a file written by a program that never calculated it) would read as an empty cell
and let a default apply silently: such cells are found in the sheet's XML first, and each
is its record's error.

No number reaches money through a binary float unless the file stores one: a spreadsheet
stores every number as a binary double, which openpyxl gives as a float, taken here by
its shortest text (`Decimal(repr(x))`: 0.1 stays 0.1; what the sheet stores is the
limit). Parquet decimals arrive as Decimal, and float columns are turned into their
shortest text by Arrow before Python sees them.
"""
from __future__ import annotations

import datetime
import importlib
import re
import zipfile
from decimal import Decimal
from typing import IO, Any, Dict, Iterator, List, Optional, Set, Tuple

from ..records import InputError, RecordError

_INSTALL = "pip install 'profit-engine[{extra}]'"


def extra(module: str, name: str, what: str) -> Any:
    """Import an optional dependency, or say in one line which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"reading {what} needs the '{name}' extra: {_INSTALL.format(extra=name)}") from None


def cell_value(value: Any) -> Any:
    """A spreadsheet's or Parquet file's cell as the record checks take it: text, int, Decimal,
    bool or None (dates as YYYY-MM-DD text)."""
    if value is None or value.__class__ in (str, int, bool, Decimal):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
        return Decimal(repr(value))  # the shortest text that is this double
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (int, str, Decimal)):  # subclasses
        return value
    return value


def _header_names(cells: Any, name: str) -> List[str]:
    header = ["" if cell is None else str(cell).strip() for cell in cells]
    while header and not header[-1]:
        header.pop()
    repeated = sorted({column for column in header if column and header.count(column) > 1})
    if repeated:
        raise InputError(f"{name}: the header repeats the column {', '.join(repeated)}")
    return header


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ---- .xlsx ---------------------------------------------------------------------------------

_FORMULA = re.compile(rb"<f[\s>/]")
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')
_STORED = re.compile(rb"<v>[^<]|<is>")


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def _formulas_without_values(stream: IO[bytes], member: str) -> Set[Tuple[int, int]]:
    """(sheet row, column index) of every formula cell with no stored value in one sheet's XML."""
    found: Set[Tuple[int, int]] = set()
    try:
        archive = zipfile.ZipFile(stream)  # closing it leaves the stream open
        handle = archive.open(member)
    except (KeyError, zipfile.BadZipFile, OSError):
        return found
    with archive, handle:
        rest = b""
        while True:
            chunk = handle.read(1 << 20)
            data = rest + chunk
            cut = len(data) if not chunk else data.rfind(b"</c>") + 4
            if cut < 4:
                rest = data
                continue
            part, rest = data[:cut], data[cut:]
            for match in _FORMULA.finditer(part):
                begin = part.rfind(b"<c", 0, match.start())
                end = part.find(b"</c>", match.start())
                if begin < 0 or end < 0:
                    continue
                ref = _CELL_REF.search(part, begin, match.start())
                if ref is not None and not _STORED.search(part, match.start(), end):
                    found.add((int(ref.group(2)), _column_index(ref.group(1))))
            if not chunk:
                return found


class Sheet:
    """One sheet of an .xlsx workbook: its header (the first row with anything in it) and rows,
    numbered as the sheet numbers them."""

    def __init__(self, stream: IO[bytes], name: str, sheet: Optional[str] = None) -> None:
        openpyxl = extra("openpyxl", "excel", ".xlsx workbooks")
        self.name = name
        self.warnings: List[str] = []
        try:
            self._book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a damaged file
            raise InputError(f"{name} cannot be read as an .xlsx workbook: {error}") from None
        names = list(self._book.sheetnames)
        if not names:
            raise InputError(f"{name}: the workbook has no sheets")
        if sheet is None:
            sheet = names[0]
            if len(names) > 1:
                self.warnings.append(f"{name}: reading the first sheet, '{sheet}', of {len(names)} "
                                     f"({', '.join(names)}); pass --sheet NAME for another")
        elif sheet not in names:
            raise InputError(f"{name} has no sheet '{sheet}'; its sheets are {', '.join(names)}")
        self._sheet = self._book[sheet]
        self._sheet.reset_dimensions()  # read what is there, not the size the file claims
        member = getattr(self._sheet, "_worksheet_path", None)
        self._unstored = _formulas_without_values(stream, member) if isinstance(member, str) else set()
        self.header: Optional[List[str]] = None
        self.header_row = 0
        for number, cells in enumerate(self._sheet.iter_rows(values_only=True), start=1):
            if any(cell is not None and str(cell).strip() for cell in cells):
                self.header, self.header_row = _header_names(cells, name), number
                break

    def has_rows(self) -> bool:
        return next(iter(self), None) is not None

    def __iter__(self) -> Iterator[Tuple[int, Any]]:
        return self.rows()

    def rows(self, key: Optional[str] = None) -> Iterator[Tuple[int, Any]]:
        """(sheet row, record or RecordError); `key` names the column whose value is an error's id."""
        header = self.header
        if header is None:
            return
        width, unstored = len(header), self._unstored
        key_index = header.index(key) if key is not None and key in header else None
        rows = enumerate(self._sheet.iter_rows(values_only=True), start=1)
        for number, cells in rows:
            if number == self.header_row:
                break
        else:
            return
        for number, cells in rows:
            if not any(cell is not None and (cell.__class__ is not str or cell.strip()) for cell in cells):
                continue  # an empty row
            extra_cells = [index for index in range(width, len(cells)) if cells[index] is not None
                           and str(cells[index]).strip()]
            values = [cell_value(cell) for cell in cells[:width]]
            values += [None] * (width - len(values))
            record: Dict[str, Any] = dict(zip(header, values))
            if extra_cells:
                yield number, RecordError(f"row has a value in column {_column_letter(extra_cells[0])}, which the "
                                          f"header does not name", row=number)
                continue
            missing = [index for index in range(width) if values[index] is None and (number, index) in unstored]
            if missing:
                index = missing[0]
                record_id = None if key_index is None or values[key_index] is None else str(values[key_index])
                yield number, RecordError(
                    f"cell {_column_letter(index)}{number} ('{header[index]}') is a formula with no stored value "
                    f"(the file was written by a program that did not calculate it): open and save it in a "
                    f"spreadsheet program first", row=number, id=record_id, field=header[index] or None)
                continue
            yield number, record

    def close(self) -> None:
        self._book.close()


# ---- Parquet --------------------------------------------------------------------------------


class ParquetRows:
    """The columns and rows of a Parquet file, a batch at a time; rows numbered from 1."""

    def rows(self, key: Optional[str] = None) -> Iterator[Tuple[int, Any]]:
        return iter(self)

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._pa = extra("pyarrow", "parquet", "Parquet files")
        parquet = extra("pyarrow.parquet", "parquet", "Parquet files")
        self._compute = extra("pyarrow.compute", "parquet", "Parquet files")
        self.name = name
        self.warnings: List[str] = []
        try:
            self._file = parquet.ParquetFile(stream)
            names = list(self._file.schema_arrow.names)
            self.count = int(self._file.metadata.num_rows)
        except Exception as error:  # pyarrow's ArrowInvalid and OSError for a damaged file
            raise InputError(f"{name} cannot be read as a Parquet file: {error}") from None
        self.header: Optional[List[str]] = _header_names(names, name) if names else None

    def has_rows(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[Tuple[int, Any]]:
        pa, compute = self._pa, self._compute
        index = 0
        for batch in self._file.iter_batches(batch_size=4096):
            columns = []
            for field, column in zip(batch.schema, batch.columns):
                if pa.types.is_floating(field.type):  # the shortest text of each float, as a Decimal
                    texts = compute.cast(column, pa.string()).to_pylist()
                    columns.append([None if text is None else Decimal(text) for text in texts])
                else:
                    columns.append(column.to_pylist())
            names = batch.schema.names
            for row in zip(*columns):
                index += 1
                yield index, {key: cell_value(value) for key, value in zip(names, row)}

    def close(self) -> None:
        self._file.close()
