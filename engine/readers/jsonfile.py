"""JSON arrays, streamed a record at a time, and JSON Lines.

An array is read in chunks: each element is decoded on its own (`raw_decode` at its
first character), so memory holds one chunk and one record, not the file. A record that
cannot be decoded (a syntax error, a number of thousands of digits, nesting a thousand
levels deep) is that record's RecordError: the reader finds where the element ends with
a scan that counts brackets and strings without recursion, and goes on with the next.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

from ..records import InputError, RecordError
from .text import has_undecoded, undecoded

CHUNK = 1 << 16
MAX_RECORD = 1 << 24  # characters: a record larger than this is an error, not a reason to hold the file


def _number(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, exactly; one whose exponent is past what a
    Decimal holds (1e99999999999999999999) is a ValueError, so it becomes its record's error."""
    try:
        return Decimal(text)
    except ArithmeticError:
        raise ValueError(f"exponent too large: {text[:40]}") from None


_DECODER = json.JSONDecoder(parse_float=_number)
_STRUCTURE = re.compile(r'[\[\]{}",]')
_STRING_END = re.compile(r'["\\]')
_SPACE = " \t\r\n\ufeff"


def _problem(error: BaseException) -> str:
    """What is wrong with a JSON value, in words."""
    if isinstance(error, json.JSONDecodeError):
        return f"is not valid JSON: {error.msg}"
    if isinstance(error, RecursionError):
        return "is nested too deeply to read"
    text = str(error)
    if "digits" in text:
        return "has a number with thousands of digits"
    if text.startswith("exponent too large: "):
        return f"has a number with an exponent too large to hold ({text[20:]})"
    return f"cannot be read: {text[:80]}"


class JsonArray:
    """The records of a JSON array, from `read(size)` (a text stream's read)."""

    def __init__(self, read: Callable[[int], str], name: str, encoding: str = "UTF-8") -> None:
        self._read, self.name, self.encoding = read, name, encoding
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._counted = 0  # newlines are counted in buf[:_counted]
        self._line = 1  # the line number at buf[_counted]

    # -- the buffer --

    def _line_at(self, position: int) -> int:
        if position < self._counted:
            return self._line - self.buf.count("\n", position, self._counted)
        self._line += self.buf.count("\n", self._counted, position)
        self._counted = position
        return self._line

    def _more(self, keep: int) -> int:
        """Read another chunk, dropping the text before `keep`; returns how far positions moved
        (0 at the end of the file, with `eof` set)."""
        if self.eof:
            return 0
        data = self._read(max(CHUNK, len(self.buf) - keep))
        if not data:
            self.eof = True
            return 0
        if keep > self._counted:
            self._line_at(keep)
        self._counted -= keep
        self.buf = self.buf[keep:] + data
        self.pos -= keep
        return keep

    def _skip_space(self) -> bool:
        """Move past white space; False at the end of the file."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in _SPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return True
            if self.eof:
                return False
            self._more(pos)
            if self.eof and self.pos >= len(self.buf):
                return False

    # -- the records --

    def start(self) -> str:
        """The first character of the file ('' for an empty one), without reading past it."""
        return self.buf[self.pos] if self._skip_space() else ""

    def __iter__(self) -> Iterator[Tuple[int, Any]]:
        first = self.start()
        if first != "[":
            what = "it is empty" if not first else f"it starts with '{first}'"
            hint = " (one object per line is JSON Lines: use --input-format jsonl)" if first == "{" else ""
            raise InputError(f"{self.name}: a JSON input must be an array of records, but {what}{hint}")
        self.pos += 1
        index = 0
        expect_value, any_value, cut_off = True, False, False
        while True:
            if not self._skip_space():
                if not cut_off:
                    index += 1
                    yield index, RecordError(f"the file ends before the JSON array is closed with ']' (line "
                                             f"{self._line_at(len(self.buf))}): it may be cut off after record "
                                             f"{index - 1}", row=index)
                return
            char = self.buf[self.pos]
            if char == "]":
                if expect_value and any_value:
                    index += 1
                    yield index, RecordError(f"record {index} (line {self._line_at(self.pos)}) is empty: a comma "
                                             f"with no record after it", row=index)
                self.pos += 1
                break
            if char == "," and expect_value:
                index += 1
                between = "two commas with no record between them" if any_value else "a comma with no record before it"
                yield index, RecordError(f"record {index} (line {self._line_at(self.pos)}) is empty: {between}",
                                         row=index)
                self.pos += 1
                any_value = True
                continue
            if char == ",":
                self.pos += 1
                expect_value = True
                continue
            index += 1
            line = self._line_at(self.pos)
            result = self._element(index, line)
            if not expect_value and not isinstance(result, RecordError):
                result = RecordError(f"record {index} (line {line}) is not separated from the one before by a comma",
                                     row=index)
            yield index, result
            expect_value, any_value = False, True
            cut_off = isinstance(result, RecordError) and self.eof and self.pos >= len(self.buf)
        if self._skip_space():
            index += 1
            yield index, RecordError(f"text after the end of the JSON array (line {self._line_at(self.pos)}) "
                                     f"cannot be read; records must all be in the one array", row=index)

    def _element(self, index: int, line: int) -> Any:
        """The value at `pos`, or a RecordError; `pos` is left after it."""
        failure: BaseException
        while True:
            start = self.pos
            try:
                value, end = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as error:
                near_end = error.pos >= len(self.buf) - 32 or error.msg.startswith("Unterminated string")
                if not self.eof and near_end and len(self.buf) - start < MAX_RECORD:
                    self._more(start)  # the record goes on in the next chunk
                    continue
                failure = error
            except (ValueError, RecursionError) as error:
                failure = error
            else:
                if end >= len(self.buf) and not self.eof:
                    self._more(start)  # a number may go on in the next chunk
                    continue
                self.pos = end
                if has_undecoded(self.buf, start, end):
                    record_id = value.get("id") if isinstance(value, dict) else None
                    return RecordError(f"record {index} (line {line}) is not {self.encoding}: the byte "
                                       f"{undecoded(self.buf, start, end)} cannot be read (pass --encoding NAME "
                                       f"if the file is in another encoding)", row=index,
                                       id=record_id if isinstance(record_id, str) and not has_undecoded(record_id)
                                       else None)
                return value
            break
        if len(self.buf) - start >= MAX_RECORD:
            problem = f"is larger than {MAX_RECORD:,} characters"
        else:
            problem = _problem(failure)
            if isinstance(failure, json.JSONDecodeError) and failure.pos > start:
                problem += f" at line {self._line_at(failure.pos)}"
        depth = self._skip_element(start)
        if isinstance(failure, RecursionError) or depth > 100:
            problem = f"is nested {depth:,} levels deep (a record is an object of plain values)"
        elif self.eof and self.pos >= len(self.buf):
            problem = "is cut off by the end of the file: the JSON is truncated, or a bracket or quote is not closed"
        return RecordError(f"record {index} (line {line}) {problem}", row=index)

    def _skip_element(self, start: int) -> int:
        """Move `pos` to the ',' or ']' that ends the element at `start` (or to the end of the
        file), counting brackets and strings; returns how deep the element was nested."""
        self.pos = start
        depth = deepest = 0
        in_string = False
        while True:
            buf = self.buf
            match = (_STRING_END if in_string else _STRUCTURE).search(buf, self.pos)
            if match is None:
                self.pos = len(buf)
                self._more(len(buf))
                if self.eof and self.pos >= len(self.buf):
                    return deepest
                continue
            char, at = match.group(), match.start()
            if in_string:
                if char == "\\":
                    if at + 1 >= len(buf) and not self.eof:
                        self.pos = at
                        self._more(at)
                        continue
                    self.pos = at + 2
                else:
                    in_string, self.pos = False, at + 1
            elif char == '"':
                in_string, self.pos = True, at + 1
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
                self.pos = at + 1
            elif char in "]}":
                if depth == 0 and char == "]" and at > start:
                    self.pos = at  # the array's end
                    return deepest
                depth = max(depth - 1, 0)  # a stray '}' at the top is part of this broken element
                self.pos = at + 1
            elif depth == 0 and at > start:  # ','
                self.pos = at
                return deepest
            else:
                self.pos = at + 1


def jsonl_rows(lines: Iterable[str]) -> Iterator[Tuple[int, Any]]:
    """(line number, record or RecordError) for each line of JSON Lines; blank lines are skipped."""
    for index, line in enumerate(lines, start=1):
        if index == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        if has_undecoded(line):
            yield index, RecordError(f"line {index} has a byte that cannot be read: {undecoded(line)} (pass "
                                     f"--encoding NAME if the file is in another encoding)", row=index)
            continue
        try:
            yield index, _DECODER.decode(line)
        except json.JSONDecodeError as error:
            yield index, RecordError(f"line is not valid JSON: {error.msg}", row=index)
        except (ValueError, RecursionError) as error:  # a 5,000-digit number, [[[[...]]]]
            yield index, RecordError(f"line {_problem(error)}", row=index)


def chunks_of(stream: Any) -> Callable[[int], str]:
    """`read(size)` for a text stream, or for an iterable of strings (lines)."""
    read: Optional[Callable[[int], str]] = getattr(stream, "read", None)
    if read is not None:
        return read
    parts = iter(stream)
    return lambda size: next(parts, "")
