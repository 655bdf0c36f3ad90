"""Golden files: text compared with a file kept under tests/golden, or rewritten with
UPDATE_GOLDEN=1 when a change to it is intended."""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str, what: str) -> None:
    """Fail with a diff if `actual` differs from the file at `path` (`what` names it)."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with UPDATE_GOLDEN=1")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "actual"))
        pytest.fail(f"{what} differs from {path.name} (regenerate with UPDATE_GOLDEN=1 if intended):\n{diff}")
