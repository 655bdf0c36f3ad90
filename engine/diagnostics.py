"""Diagnostics as data: a code, a message, where, and what to do about it.

One renderer draws the caret view for people; `as_dict` is the stable JSON form.
"""
from __future__ import annotations

import difflib
from typing import Iterable, Optional, Sequence

import attrs

from .ast import Span

ERROR = "error"
WARNING = "warning"


@attrs.frozen
class Diagnostic:
    """One finding about a policy, pointing at the text it concerns."""

    code: str
    message: str
    span: Span
    help: Optional[str] = None
    severity: str = ERROR
    filename: str = "<policy>"

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def render(self, source: str) -> str:
        """`file:line:col: error: message`, the line, a caret under the span, the help."""
        head = f"{self.filename}:{self.span.line}:{self.span.column}: {self.severity}[{self.code}]: {self.message}"
        lines = source.split("\n")  # as the parser counts lines; splitlines() also breaks at \f
        out = [head]
        if 1 <= self.span.line <= len(lines):
            text = lines[self.span.line - 1].expandtabs(1)
            gutter = f"{self.span.line:>4} | "
            out.append(gutter + text)
            start = max(self.span.column - 1, 0)
            if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
                width = self.span.end_column - self.span.column
            else:
                width = max(len(text.rstrip()) - start, 1)
            out.append(" " * (len(gutter) - 2) + "| " + " " * start + "^" * width)
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


def render_all(diagnostics: Sequence[Diagnostic], source: str, limit: int = 50) -> str:
    """All diagnostics in source order, then a count; past `limit`, "… and N more"."""
    ordered = sorted(diagnostics, key=lambda d: (d.span.line, d.span.column))
    shown = [d.render(source) for d in ordered[:limit]]
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
