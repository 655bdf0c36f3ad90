"""Diagnostics as data: a code, a message, where, and what to do about it.

One renderer draws the caret view for people; `as_dict` is the stable JSON form.

Whatever a policy holds, a diagnostic stays readable and safe to print: a message or
help quotes at most a short snippet of the policy (a long word is cut in the middle,
with …), the caret view shows about `SHOWN_LINE` characters of the line around the
caret, and control characters (NUL, escape, bidirectional overrides...) are shown
escaped (`\\x00`), never raw.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable, List, Optional, Sequence, Tuple

import attrs

from .ast import Span

ERROR = "error"
WARNING = "warning"

SHOWN_LINE = 120  # characters of a source line shown around the caret
_LEFT_OF_CARET = 40  # of which, at most this many before it when the line is cut
_LONGEST_WORD = 60  # a quoted name or value longer than this is cut in the middle
_LONGEST_MESSAGE = 400

# Control and format characters, line and paragraph separators, lone surrogates: what
# a terminal would act on or cannot print. Tab is shown as a space in the caret view.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]")
_LONG_WORD = re.compile(r"\S{%d,}" % (_LONGEST_WORD + 1))


def escaped(char: str) -> str:
    """One character as shown: itself, or its escape (`\\x00`, `\\u202e`) if unsafe to print."""
    if not _UNSAFE.match(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """The text with every unsafe character escaped."""
    return _UNSAFE.sub(lambda found: escaped(found.group()), text)


def snippet(text: str, limit: int = _LONGEST_WORD) -> str:
    """The text, or if it is longer than `limit`, its start and end around an ellipsis."""
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[: limit - tail - 1] + "…" + text[-tail:]


def _bounded(text: str) -> str:
    """A message or help as stored: escaped, each long word and the whole cut to size."""
    if len(text) <= _LONGEST_WORD and not _UNSAFE.search(text):
        return text
    text = printable(text)
    if len(text) > _LONGEST_WORD:
        text = _LONG_WORD.sub(lambda found: snippet(found.group()), text)
    return snippet(text, _LONGEST_MESSAGE)


def _bounded_help(text: Optional[str]) -> Optional[str]:
    return None if text is None else _bounded(text)


@attrs.frozen
class Diagnostic:
    """One finding about a policy, pointing at the text it concerns."""

    code: str
    message: str = attrs.field(converter=_bounded)
    span: Span
    help: Optional[str] = attrs.field(default=None, converter=_bounded_help)
    severity: str = ERROR
    filename: str = "<policy>"

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def render(self, source: str) -> str:
        """`file:line:col: error: message`, the line, a caret under the span, the help."""
        return self._render(_SourceLines(source))

    def _render(self, lines: "_SourceLines") -> str:
        head = (f"{printable(self.filename)}:{self.span.line}:{self.span.column}: "
                f"{self.severity}[{self.code}]: {self.message}")
        out = [head]
        text = lines.line(self.span.line)
        if text is not None:
            start = max(self.span.column - 1, 0)
            if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
                width = self.span.end_column - self.span.column
            else:
                width = max(len(text.expandtabs(1).rstrip()) - start, 1)
            shown, offset, carets = _caret_view(text, start, width)
            gutter = f"{self.span.line:>4} | "
            out.append(gutter + shown)
            out.append(" " * (len(gutter) - 2) + "| " + " " * offset + "^" * carets)
        if self.help:
            out.append(f"     = help: {self.help}")
        return "\n".join(out)

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "help": self.help,
            "file": self.filename,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
        }


class _SourceLines:
    """The lines of a source, as the parser counts them (at "\\n" only; splitlines() also
    breaks at \\f), found once for all the diagnostics rendered from it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._starts: Optional[List[int]] = None

    def line(self, number: int) -> Optional[str]:
        """The text of line `number` (from 1) without its line end, or None past the end."""
        if self._starts is None:
            self._starts = [0] + [found.end() for found in re.finditer("\n", self.source)]
        if not 1 <= number <= len(self._starts):
            return None
        start = self._starts[number - 1]
        end = self._starts[number] - 1 if number < len(self._starts) else len(self.source)
        text = self.source[start:end]
        return text[:-1] if text.endswith("\r") else text  # a CRLF line end is not part of the line


def _shown(char: str) -> str:
    return " " if char == "\t" else escaped(char)


def _caret_view(text: str, start: int, width: int) -> Tuple[str, int, int]:
    """(the line as shown, the caret's offset in it, the number of carets): the whole line
    if it is short and plain; else about SHOWN_LINE characters around the caret, with …
    where the line is cut, and unsafe characters escaped."""
    if len(text) <= SHOWN_LINE and not _UNSAFE.search(text):
        return text.expandtabs(1), start, width
    size = len(text)
    caret = min(start, size)
    left = right = caret  # the part shown: text[left:right]
    used = 0
    while left > 0 and used + len(_shown(text[left - 1])) <= _LEFT_OF_CARET:
        left -= 1
        used += len(_shown(text[left]))
    while right < size and used + len(_shown(text[right])) <= SHOWN_LINE:
        used += len(_shown(text[right]))
        right += 1
    while left > 0 and used + len(_shown(text[left - 1])) <= SHOWN_LINE:  # the line ended: show more before
        left -= 1
        used += len(_shown(text[left]))
    lead = "…" if left > 0 else ""
    shown = lead + "".join(_shown(c) for c in text[left:right]) + ("…" if right < size else "")
    offset = len(lead) + sum(len(_shown(c)) for c in text[left:caret]) + min(start - caret, 1)
    carets = sum(len(_shown(c)) for c in text[caret:min(start + width, right)])
    return shown, offset, max(carets, 1)


def render_all(diagnostics: Sequence[Diagnostic], source: str, limit: int = 50) -> str:
    """All diagnostics in source order, then a count; past `limit`, "… and N more"."""
    ordered = sorted(diagnostics, key=lambda d: (d.span.line, d.span.column))
    lines = _SourceLines(source)
    shown = [d._render(lines) for d in ordered[:limit]]
    if len(ordered) > limit:
        shown.append(f"... and {len(ordered) - limit} more")
    errors = sum(d.is_error for d in ordered)
    warnings = len(ordered) - errors
    shown.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n\n".join(shown)


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.75) -> Optional[str]:
    """The closest known name, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


class PolicyError(Exception):
    """A policy that cannot be used; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str = "") -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: (d.span.line, d.span.column)))
        self.source = source
        super().__init__(render_all(self.diagnostics, source))

    @property
    def errors(self) -> tuple:
        return tuple(d for d in self.diagnostics if d.is_error)
