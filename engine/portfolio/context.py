"""A stored portfolio context: the totals of a run, kept so that one new record can be
decided later without reading the whole portfolio again. Each kind of portfolio figure
stores its own part (pools and driver totals per group, referral credits per customer).

A stored context says what made it and guards what it holds (decimals as strings):

    {"engine": "0.1.0",                               the engine version that stored it
     "policy": {"name": ..., "version": ...,          the policy that made it, and the
                "digest": "sha256:..."},              SHA-256 of its exact text
     "label": ..., "records": ...,                    which run, how many records it read
     "allocations": {...}, "referrals": {...},        each kind's part (its `dump`)
     "digest": "sha256:..."}                          SHA-256 of the canonical JSON of all the rest

Reading one (`PortfolioContext.read`, `loads`, `from_dict`) checks, in this order: that it
is JSON of a bounded size and depth holding an object; the engine version; its content
digest; every value against the declared schema below (each kind declares its part's in
its `load`): the type of every field, decimals finite and in range, counts whole and not
negative, pools and totals not negative, no more allocated than a pool, no missing and no
unknown keys; and, given a policy (and again whenever a record is decided against it),
that the policy's text is the one that stored it. Anything wrong is one ContextError
naming the file and the problem, never a KeyError, TypeError, InvalidOperation or
RecursionError.

The policy digest is of the exact text (checked.CheckedPolicy.digest): any change, even
of whitespace or a comment, makes it another policy, whose contexts must be stored anew.
The content digest protects against edits by mistake, not against forgery: anyone can
work it out again.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

import attrs

from ..checked import CheckedPolicy
from .kind import Kind, Share
from .schema import Count, Digest, Each, Fields, Invalid, Maybe, Schema, Text, Where, shown
from .kinds import KINDS, kind_of

if TYPE_CHECKING:
    from ..compiler import Plan
    from ..policy import Policy

MAX_BYTES = 100_000_000  # a million referral credits take about 30 MB
MAX_DEPTH = 16  # a stored context nests 5 levels: the whole, allocations, one of them, its groups, a group
SAVE = "store it again with `profit run POLICY DATA --save-context FILE`"


class ContextError(ValueError):
    """A stored portfolio context that cannot be used: not valid, changed after it was
    stored, or stored by another policy or engine version. The message starts with the
    file (or the `source` given), then says what is wrong."""


@attrs.frozen
class Section(Schema):
    """A kind's part of the context: {figure name: what the kind stored}, each read by the kind's `load`."""

    kind: Kind

    def read(self, value: Any, where: Where) -> Dict[str, Any]:
        found = Each(_Whole()).read(value, where)
        parts = {}
        for name, data in found.items():
            try:
                parts[name] = self.kind.load(name, data)
            except Invalid as error:
                raise error.within(*where, name) from None
        return parts


class _Whole(Schema):
    def read(self, value: Any, where: Where) -> Any:
        return value


STAMP = ("engine", "policy", "digest")  # the keys of a stored context's stamp


def schema(stamped: bool) -> Fields:
    """The whole context's schema; `stamped`: with the engine, the policy and the digest."""
    body: Dict[str, Schema] = {"label": Text(), "records": Count(),
                               **{kind.section: Section(kind) for kind in KINDS}}
    if not stamped:
        return Fields(body)
    policy = Fields({"name": Text(), "version": Maybe(Text()), "digest": Digest()})
    return Fields({"engine": Text(100), "policy": policy, **body, "digest": Digest()})


def content_digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (keys sorted, no spaces, ASCII) of everything but "digest"."""
    rest = {key: value for key, value in data.items() if key != "digest"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ---- reading JSON safely ------------------------------------------------------------------

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*\\?(?:"|\Z)', re.S)  # a string, or one left open to the end
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")
_RUN = b"[" * (MAX_DEPTH + 1)


def _too_deep(text: str) -> bool:
    """Whether the text's arrays and objects may nest deeper than MAX_DEPTH (brackets in strings
    do not count). With { } read as [ ] (the JSON reader stops at a bracket that does not pair,
    so it never nests deeper than that), each round takes out every innermost [], one level of
    nesting; more than MAX_DEPTH rounds is too deep, and so is a rest that does not pair up if
    it opens so many that the reader could nest deeper. Linear in practice: a round that takes
    out few pairs of a long text finds a long run of [ first."""
    brackets = _STRING.sub("", text).encode("utf-8", "surrogatepass").translate(_SAME_BRACKETS, _NOT_BRACKETS)
    rounds = 0
    while brackets:
        if _RUN in brackets:
            return True
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):
            break
        brackets, rounds = reduced, rounds + 1
        if rounds > MAX_DEPTH:
            return True
    return rounds + brackets.count(b"[") > MAX_DEPTH


def _object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise Invalid(f"the key {shown(twice)} appears twice in one object")
    return found


def _constant(name: str) -> Any:
    raise Invalid(f"{name} is not a number a stored context can hold")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 20:
        raise Invalid(f"a number of {len(text.lstrip('-')):,} digits is too large for a count")
    return int(text)


def _parse(text: str, name: str) -> Any:
    """JSON data from text, bounded in size and nesting; ContextError naming `name` otherwise."""
    if len(text) > MAX_BYTES:
        raise ContextError(f"{name}: is larger than {MAX_BYTES:,} bytes, too large for a stored context")
    if not text.strip():
        raise ContextError(f"{name}: is empty, not a stored context; {SAVE}")
    if _too_deep(text):
        raise ContextError(f"{name}: nests arrays and objects more than {MAX_DEPTH} levels deep, "
                           f"so it is not a stored context (which nests 5)")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_int=_int)
    except json.JSONDecodeError as error:
        raise ContextError(f"{name}: is not valid JSON: {error.msg} (line {error.lineno}, column "
                           f"{error.colno})") from None
    except Invalid as error:
        raise ContextError(f"{name}: {error}") from None


def _check_json(data: Any, name: str) -> None:
    """That data given as Python objects is JSON data (what `from_dict` takes), of bounded depth."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ContextError(f"{name}: nests lists and dicts more than {MAX_DEPTH} levels deep, "
                               f"so it is not a stored context (which nests 5)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ContextError(f"{name}: has the key {key!r}, which is not text")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ContextError(f"{name}: holds {value!r}, which is not a finite number")
        elif not (value is None or isinstance(value, (str, int))):  # bool is an int
            raise ContextError(f"{name}: holds a {type(value).__name__} ({value!r:.40}), which is not JSON data")


# ---- the context --------------------------------------------------------------------------


def _checked(policy: Union["Policy", CheckedPolicy]) -> CheckedPolicy:
    found = getattr(policy, "checked", policy)  # a Policy, or its CheckedPolicy
    if not isinstance(found, CheckedPolicy):
        raise TypeError(f"expected a Policy, got {type(policy).__name__}")
    return found


@attrs.frozen
class PolicyStamp:
    """The policy that stored a context: its name, its version, and the digest of its exact text."""

    name: str
    version: Optional[str]
    digest: str  # "sha256:" + 64 hexadecimal digits

    @classmethod
    def of(cls, policy: Union["Policy", CheckedPolicy]) -> "PolicyStamp":
        checked = _checked(policy)
        return cls(checked.name, checked.version, checked.digest)

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}

    def __str__(self) -> str:
        return f"policy {json.dumps(self.name, ensure_ascii=False)}" + (
            f" version {self.version}" if self.version is not None else "")


@attrs.frozen
class PortfolioContext:
    """The portfolio totals of a run: `parts[section][figure name]` is what that figure stored
    (section "allocations": an AllocationContext; "referrals": credits by customer id).
    `policy` is the policy that stored it (None for a run's own context, which is not
    stored); `source` the file it was read from, which its errors name."""

    label: str
    records: int
    parts: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    policy: Optional[PolicyStamp] = None
    source: Optional[str] = attrs.field(default=None, eq=False)

    @property
    def allocations(self) -> Mapping[str, Any]:
        """{allocation name: AllocationContext}"""
        return self.parts.get("allocations", {})

    @property
    def referrals(self) -> Mapping[str, Any]:
        """{referral credit name: {customer id: credit}}"""
        return self.parts.get("referrals", {})

    # ---- storing ----------------------------------------------------------------------

    def as_dict(self, policy: Union["Policy", CheckedPolicy, None] = None) -> Dict[str, Any]:
        """The JSON form (decimals as strings), the one `profit run --save-context` writes.

        With the policy that made the totals (or for a context read from a file), stamped: the
        engine version, the policy's name, version and text digest, and the content digest;
        without, the bare totals, which only `from_dict(data)` without a policy accepts."""
        from .. import __version__
        stamp = self.policy
        if policy is not None:
            given = PolicyStamp.of(policy)
            if stamp is not None and stamp.digest != given.digest:
                raise ContextError(self._refusal(_checked(policy)))
            stamp = given
        body: Dict[str, Any] = {"label": self.label, "records": self.records}
        for kind in KINDS:
            body[kind.section] = {name: kind.dump(stored) for name, stored in self.parts.get(kind.section, {}).items()}
        if stamp is None:
            return body
        data = {"engine": __version__, "policy": stamp.as_dict(), **body}
        data["digest"] = content_digest(data)
        return data

    def dumps(self, policy: Union["Policy", CheckedPolicy, None] = None) -> str:
        """The stored form as text: `as_dict(policy)` as indented JSON, as a file holds it."""
        return json.dumps(self.as_dict(policy), indent=2, ensure_ascii=False) + "\n"

    # ---- reading ----------------------------------------------------------------------

    @classmethod
    def read(cls, path: Union[str, "os.PathLike[str]"],
             policy: Union["Policy", CheckedPolicy, None] = None) -> "PortfolioContext":
        """A context from the file `profit run --save-context` (or `dumps`) wrote, checked; with
        `policy`, also that this policy stored it. Raises ContextError naming the file."""
        name = os.fspath(path)
        try:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_BYTES + 1)
        except OSError as error:
            raise ContextError(f"{name}: cannot be read: {error.strerror or error}") from None
        if len(raw) > MAX_BYTES:
            raise ContextError(f"{name}: is larger than {MAX_BYTES:,} bytes, too large for a stored context")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ContextError(f"{name}: is not UTF-8 text (byte {error.start + 1:,} is "
                               f"0x{raw[error.start]:02x}), so not a stored context") from None
        return cls.loads(text, policy, source=name)

    @classmethod
    def loads(cls, text: str, policy: Union["Policy", CheckedPolicy, None] = None, *,
              source: Optional[str] = None) -> "PortfolioContext":
        """A context from its stored text (`dumps`), checked as `read` checks a file."""
        name = source or "the stored context"
        return cls._load(_parse(text, name), policy, name, source, need_stamp=True)

    @classmethod
    def from_dict(cls, data: Any, policy: Union["Policy", CheckedPolicy, None] = None, *,
                  source: Optional[str] = None) -> "PortfolioContext":
        """A context from its JSON form (`as_dict`), checked. Data without the stamp (a run's
        own context, `as_dict()` without a policy) is taken only when no policy is given."""
        name = source or "the stored context"
        _check_json(data, name)
        return cls._load(data, policy, name, source, need_stamp=policy is not None)

    @classmethod
    def _load(cls, data: Any, policy: Union["Policy", CheckedPolicy, None], name: str,
              source: Optional[str], need_stamp: bool) -> "PortfolioContext":
        """From JSON data: the engine version, the content digest, the schema, then the policy.
        Bare totals (no stamp) are read by the schema only, and only without `need_stamp`."""
        from .. import __version__
        if not isinstance(data, dict):
            raise ContextError(f"{name}: holds {shown(data)}, not an object: not a stored context; {SAVE}")
        if not any(key in data for key in STAMP):
            if need_stamp:
                raise ContextError(f"{name}: does not say which policy stored it (it has no \"policy\" and no "
                                   f"\"digest\"), so it cannot be checked; {SAVE}")
            try:
                return cls._read(data, False, source)
            except Invalid as error:
                raise ContextError(f"{name}: {error}") from None
        engine = data.get("engine")
        if isinstance(engine, str) and engine != __version__:
            raise ContextError(f"{name}: was stored by profit engine {shown(engine)}, and this is engine "
                               f"{__version__}; {SAVE}")
        digest = data.get("digest")
        altered = "was changed after it was stored (its content digest does not match)" if (
            isinstance(digest, str) and digest != _digest_of(data)) else None
        try:
            context = cls._read(data, True, source)
        except Invalid as error:
            raise ContextError(f"{name}: {altered}, and {error}" if altered else f"{name}: {error}") from None
        if altered:
            raise ContextError(f"{name}: {altered}: a stored context cannot be edited; {SAVE}")
        if policy is not None:
            context.check(policy)
        return context

    @classmethod
    def _read(cls, data: Dict[str, Any], stamped: bool, source: Optional[str]) -> "PortfolioContext":
        """The context the data holds, read by the schema (Invalid if it does not fit)."""
        found = schema(stamped).read(data, ())
        stamp = PolicyStamp(**found["policy"]) if stamped else None
        return cls(found["label"], found["records"], {kind.section: found[kind.section] for kind in KINDS},
                   stamp, source)

    # ---- using ------------------------------------------------------------------------

    def check(self, policy: Union["Policy", CheckedPolicy]) -> None:
        """Raise ContextError unless `policy` stored this context (a run's own context, which
        names no policy, passes)."""
        checked = _checked(policy)
        if self.policy is not None and self.policy.digest != checked.digest:
            raise ContextError(self._refusal(checked))

    def _refusal(self, checked: CheckedPolicy) -> str:
        assert self.policy is not None
        name = self.source or f"the stored context {self.label}"
        made, this = self.policy, PolicyStamp.of(checked)
        if str(made) == str(this):
            which = (f"another text of the {made} ({made.digest[:19]}...; this text is {this.digest[:19]}..., "
                     f"from {checked.filename}): the digest is of the exact text, so any change counts, "
                     "even of whitespace")
        else:
            which = f"the {made} ({made.digest[:19]}...), not by this {this} from {checked.filename}"
        return (f"{name}: was stored by {which}; decide with the policy that stored it, or store a context "
                f"with this one (`profit run POLICY DATA --save-context FILE`)")


def _digest_of(data: Dict[str, Any]) -> Optional[str]:
    """The content digest of data as read (None when it cannot be worked out: not JSON)."""
    try:
        return content_digest(data)
    except (TypeError, ValueError):
        return None


def share_from_context(plan: "Plan", context: PortfolioContext, index: int, slots: tuple) -> Union[Share, str]:
    """One record's share of portfolio figure `index` from stored totals, or why it has none.
    Raises ContextError if another policy stored the context."""
    stamp = context.policy
    if stamp is not None and stamp.digest != plan.policy.digest:
        raise ContextError(context._refusal(plan.policy))
    spec = plan.policy.allocations[index]
    kind = kind_of(spec)
    stored = context.parts.get(kind.section, {}).get(spec.name)
    return kind.from_context(plan, spec, stored, slots, context.label)
