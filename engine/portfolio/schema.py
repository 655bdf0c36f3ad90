"""The declared schema a stored portfolio context is read by: each value's type and bounds,
and where in the data a value is wrong. Each kind of portfolio figure reads its own part
with these (kind.Kind.load), so a context is checked all the way down before it is used."""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Tuple, Union

import attrs

Where = Tuple[Union[str, int], ...]  # keys and list positions from the top of the data


class Invalid(Exception):
    """What is wrong with a value of the data, and where it is (keys and list positions)."""

    def __init__(self, problem: str, where: Where = ()) -> None:
        super().__init__(problem)
        self.problem, self.where = problem, where

    def within(self, *outer: Union[str, int]) -> "Invalid":
        return Invalid(self.problem, tuple(outer) + self.where)

    def __str__(self) -> str:
        return f"{spot(self.where)}: {self.problem}" if self.where else self.problem


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spot(where: Where) -> str:
    """Where a value is, as a reader finds it: allocations.marketing.groups[0].total."""
    text = ""
    for step in where:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _NAME.fullmatch(step):
            text += ("." if text else "") + step
        else:
            text += f"[{shown(step)}]"
    return text


def shown(value: Any) -> str:
    """A value of the data as an error shows it: JSON, at most about 40 characters."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str) and len(value) > 40:
        return json.dumps(value[:40]) + "..."
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return type(value).__name__


class Schema(ABC):
    """How one value of a stored context is checked and read."""

    @abstractmethod
    def read(self, value: Any, where: Where) -> Any:
        """The value as the engine holds it; Invalid if it does not fit."""


@attrs.frozen
class Text(Schema):
    longest: int = 10_000

    def read(self, value: Any, where: Where) -> str:
        if value.__class__ is not str:
            raise Invalid(f"expected text, got {shown(value)}", where)
        if len(value) > self.longest:
            raise Invalid(f"is {len(value):,} characters long, more than the {self.longest:,} allowed", where)
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid(f"{shown(value)} is not valid Unicode text (a lone surrogate)", where) from None
        return value


@attrs.frozen
class Count(Schema):
    """A whole number, 0 or more (a JSON number without a point)."""

    def read(self, value: Any, where: Where) -> int:
        if value.__class__ is not int:
            raise Invalid(f"expected a whole number, 0 or more, got {shown(value)}", where)
        if not 0 <= value < 2 ** 63:
            raise Invalid(f"{shown(value)} is not a whole number from 0 to 2^63", where)
        return value


_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?([eE][-+]?[0-9]+)?")
LARGEST = 40  # a stored amount is below 10^40, with at most 40 decimal places


@attrs.frozen
class Amount(Schema):
    """A finite decimal written as a string ("12.50"), in range; not negative unless allowed."""

    negative: bool = False

    def read(self, value: Any, where: Where) -> Decimal:
        if value.__class__ is not str:
            raise Invalid(f"expected a decimal written as a string (\"12.50\"), got {shown(value)}", where)
        match = _DECIMAL.fullmatch(value) if len(value) <= 100 else None
        if match is None:
            raise Invalid(f"{shown(value)} is not a decimal number", where)
        number = Decimal(value)  # the pattern lets through only finite decimals that Decimal reads
        whole, places, exponent = match.groups()
        if exponent is None:  # as `dump` writes them: the digits tell the range
            large, fine = len(whole.lstrip("0")) > LARGEST, places is not None and len(places) > LARGEST
        else:
            found = number.as_tuple().exponent
            assert isinstance(found, int)
            large, fine = bool(number) and number.adjusted() >= LARGEST, found < -LARGEST
        if large:
            raise Invalid(f"{shown(value)} is out of range: a stored amount is below 10^{LARGEST}", where)
        if fine:
            raise Invalid(f"{shown(value)} has more than {LARGEST} decimal places", where)
        if value[0] == "-" and number and not self.negative:
            raise Invalid(f"{shown(value)} is negative, which it cannot be", where)
        return number


@attrs.frozen
class Maybe(Schema):
    """The value, or null."""

    inner: Schema

    def read(self, value: Any, where: Where) -> Any:
        return None if value is None else self.inner.read(value, where)


@attrs.frozen
class Fields(Schema):
    """A JSON object with exactly these keys."""

    fields: Mapping[str, Schema]

    def read(self, value: Any, where: Where) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"expected an object with {', '.join(self.fields)}, got {shown(value)}", where)
        unknown = [key for key in value if key not in self.fields]
        if unknown:
            raise Invalid(f"unknown key {shown(unknown[0])} (expected only {', '.join(self.fields)})", where)
        missing = [key for key in self.fields if key not in value]
        if missing:
            raise Invalid(f"{shown(missing[0])} is missing", where)
        return {key: schema.read(value[key], where + (key,)) for key, schema in self.fields.items()}


@attrs.frozen
class Items(Schema):
    """A JSON list, every item alike."""

    item: Schema

    def read(self, value: Any, where: Where) -> List[Any]:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, got {shown(value)}", where)
        return [self.item.read(item, where + (index,)) for index, item in enumerate(value)]


@attrs.frozen
class Each(Schema):
    """A JSON object used as a table: any keys (text), every value alike."""

    value: Schema
    key: Text = Text()

    def read(self, value: Any, where: Where) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid(f"expected an object, got {shown(value)}", where)
        key, read = self.key.read, self.value.read
        return {key(name, where): read(item, where + (name,)) for name, item in value.items()}


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@attrs.frozen
class Digest(Schema):
    def read(self, value: Any, where: Where) -> str:
        if not isinstance(value, str) or not _DIGEST.fullmatch(value):
            raise Invalid(f"expected \"sha256:\" and 64 hexadecimal digits, got {shown(value)}", where)
        return value


