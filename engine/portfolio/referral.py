"""Word of mouth: `referred VALUE via FIELD [levels N] [decay P%] [cap AMOUNT] [anyway FLAG VALUE]`.

Each customer is credited with what the customers it brought in bring (level k weighted
decay^(k-1)); the network is walked level by level and never loops. The walk that works
out a credit in the run is the one that lists its contributions when it is explained.
"""
from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, Union

import attrs

from ..checked import CheckedPolicy, ReferralSpec, RoundingRule
from ..money import CONTEXT, grouped, percent
from .kind import Gather, Kind
from .schema import Amount, Each
from .kind import Share as ShareBase
from .storage import Column

@attrs.frozen(slots=True)
class Referred:
    """A referred customer's entry in the network. Any other customer's entry is just its id
    (None for a row in error): most customers referred no one and were referred by no one."""

    id: str
    referrer: str
    came_anyway: bool
    brings: Any  # the value it brings its referrer (None: empty, the record's error)
    brings_anyway: Any  # ... if it came anyway

    def brought(self, spec: ReferralSpec) -> Any:
        return self.brings_anyway if self.came_anyway and spec.anyway is not None else self.brings


Entry = Union[Referred, str, None]


def _own(entry: Entry) -> Optional[str]:
    return entry.id if isinstance(entry, Referred) else entry


@attrs.frozen
class Contribution:
    """What one referred customer brought its referrer, at which level and weight."""

    level: int
    id: str
    value: Decimal
    weight: Decimal
    anyway: bool  # would have come anyway: brings the `anyway` value


@attrs.frozen
class ReferralShare(ShareBase):
    """A customer's referral credit, with every contribution behind it."""

    allocation: str
    amount: Decimal
    contributions: Tuple[Contribution, ...]
    capped: bool
    notes: Tuple[str, ...]  # self-referrals, cycles, unknown referrers
    context: str

    def explain(self, decision: Any) -> str:
        """Which referred customers brought how much, level by level."""
        parts = [f"{c.id} {grouped(c.value)}" + (" (came anyway)" if c.anyway else "")
                 + (f" x {percent(c.weight)}" if c.weight != 1 else "") + f" [level {c.level}]"
                 for c in self.contributions]
        text = " + ".join(parts) if parts else (
            "no referred customers" if not self.amount else "as credited in the stored portfolio context")
        if self.capped:
            text += f", capped at {grouped(self.amount)}"
        for note in self.notes:
            text += f"; note: {note}"
        return f"{text} = {grouped(self.amount)} [portfolio: {self.context}]"


@attrs.frozen
class ReferralLeader:
    """A customer whose referrals earn it credit: how many it brought in directly, and the credit."""

    id: str
    referred: int
    credit: Decimal
    allocation: str  # the referral credit it earned


class _Gather(Gather):
    """Per row its entry in the referral network."""

    def __init__(self, plan: Any, spec: ReferralSpec) -> None:
        super().__init__()
        slot = plan.figure_slot
        self.spec = spec
        self.key, self.via = slot[plan.policy.key], slot[spec.via]
        self.driver = plan.driver_slot[spec.name]  # the value a referred customer brings
        self.flag = slot[spec.anyway_flag] if spec.anyway_flag else None
        self.anyway = plan.driver_slot[spec.name + " anyway"] if spec.anyway is not None else None
        self.entries: List[Entry] = []

    def reads(self) -> Set[int]:
        return {slot for slot in (self.key, self.via, self.driver, self.flag, self.anyway) if slot is not None}

    def entry(self, slots: tuple) -> Referred:
        flag = bool(slots[self.flag]) if self.flag is not None else False
        return Referred(slots[self.key], slots[self.via], flag, slots[self.driver],
                        slots[self.anyway] if self.anyway is not None else None)

    def take(self, chunk: List[Optional[tuple]], start: int) -> None:
        spec, key, via, entry = self.spec, self.key, self.via, self.entry
        entries = [None if s is None else s[key] if s[via] is None else entry(s) for s in chunk]
        for offset, found in enumerate(entries):
            if isinstance(found, Referred) and found.brought(spec) is None:
                self.errors[start + offset] = (f"the value this record brings its referrer for "
                                               f"'{spec.name}' is empty; give the fields it uses a default")
        self.entries += entries

    def exclude(self, positions: Iterable[int]) -> None:
        entries = self.entries
        for position in positions:
            found = entries[position]
            entries[position] = _own(found)  # brings nothing


class Network:
    """One referral credit's network: who brought whom in, walked level by level."""

    def __init__(self, spec: ReferralSpec, entries: List[Entry]) -> None:
        self.spec, self.entries = spec, entries
        self.by_id: Dict[str, int] = {}
        for position, found in enumerate(entries):
            own = _own(found)
            if own is not None:
                self.by_id.setdefault(own, position)
        self.notes: Dict[int, List[str]] = {}  # self-referrals and unknown referrers
        self.children: Dict[str, List[int]] = {}
        for position, found in enumerate(entries):
            if not isinstance(found, Referred):
                continue
            own, link = found.id, found.referrer
            if link == own:
                self.notes.setdefault(position, []).append(f"{spec.via} names the customer itself: "
                                                           "no one is credited")
            elif link not in self.by_id:
                self.notes.setdefault(position, []).append(f"{spec.via} '{link}' is not a customer of this "
                                                           "portfolio: no one is credited")
            else:
                self.children.setdefault(link, []).append(position)

    def own(self, position: int) -> Optional[str]:
        return _own(self.entries[position])

    def involved(self, position: int) -> bool:
        """Whether the customer brought anyone in, or has a note."""
        return self.own(position) in self.children or position in self.notes

    def walk(self, position: int) -> Tuple[List[Contribution], List[str]]:
        """(its contributions, notes); never loops.
        Runs in the engine's decimal context, as credit() does."""
        spec, entries, children = self.spec, self.entries, self.children
        own = self.own(position)
        notes = list(self.notes.get(position, ()))
        seen = {own}
        frontier, found, weight = list(children.get(own, ())), [], Decimal(1)  # type: ignore[arg-type]
        factor = spec.decay / 100
        for level in range(1, spec.levels + 1):
            following: List[int] = []
            for child in frontier:
                referred = entries[child]
                assert isinstance(referred, Referred)  # only referred customers are anyone's children
                if referred.id in seen:
                    notes.append(f"the referrals loop back to '{referred.id}'; each customer is credited once")
                    continue
                seen.add(referred.id)
                found.append(Contribution(level, referred.id, referred.brought(spec), weight, referred.came_anyway))
                following.extend(children.get(referred.id, ()))
            frontier, weight = following, weight * factor
        return found, notes

    def credit(self, found: List[Contribution], rounding: RoundingRule) -> Tuple[Decimal, bool]:
        """The credit for the contributions found, rounded, and whether the cap cut it."""
        total = sum((c.value * c.weight for c in found), Decimal(0))
        capped = self.spec.cap is not None and total > self.spec.cap
        return (self.spec.cap if capped else total).quantize(rounding.quantum, rounding.rounding), capped  # type: ignore[union-attr]

    def share(self, position: int, rounding: RoundingRule, label: str) -> ReferralShare:
        """One customer's credit with its contributions, by the walk and arithmetic of the run."""
        with decimal.localcontext(CONTEXT):
            found, notes = self.walk(position)
            amount, capped = self.credit(found, rounding)
        return ReferralShare(self.spec.name, amount, tuple(found), capped,
                             tuple(notes), label)


class ReferralKind(Kind):
    spec = ReferralSpec
    section = "referrals"
    gatherer = _Gather

    def share_out(self, policy: CheckedPolicy, spec: ReferralSpec, gather: Gather, label: str
                  ) -> Tuple[Column, Dict[str, Decimal]]:
        """Every customer's credit for the customers it brought in; the context keeps the
        credits by customer id."""
        assert isinstance(gather, _Gather)
        network = Network(spec, gather.entries)
        column = Column(spec.name, len(gather.entries), policy.rounding)
        column.detail = network
        credits: Dict[str, Decimal] = {}
        for position in range(len(gather.entries)):
            if not network.involved(position):
                continue  # brought no one in: a credit of zero, already in the column
            found, notes = network.walk(position)
            amount, _ = network.credit(found, policy.rounding)
            column.set(position, amount)
            if spec.strict and notes:
                column.errors[position] = f"referral network problem for '{spec.name}': " + "; ".join(notes)
            if amount:
                credits[network.own(position)] = amount  # type: ignore[index]
        column.errors.update(gather.errors)
        return column, credits

    def share(self, spec: ReferralSpec, column: Column, position: int, label: str) -> ReferralShare:
        network = column.detail
        if network.involved(position):
            return network.share(position, column.rounding, label)
        return ReferralShare(spec.name, column.amount(position), (), False, (), label)

    def from_context(self, plan: Any, spec: ReferralSpec, stored: Optional[Dict[str, Decimal]], slots: tuple,
                     label: str) -> ReferralShare:
        key = slots[plan.figure_slot[plan.policy.key]]
        amount = (stored or {}).get(key, Decimal("0.00"))
        return ReferralShare(spec.name, amount, (), False, (), label)

    def leaders(self, spec: ReferralSpec, column: Column, lost: Set[int]) -> Tuple[ReferralLeader, ...]:
        """Every decided customer with a credit, and how many it brought in directly."""
        network: Network = column.detail
        found = []
        for own, children in network.children.items():
            position = network.by_id[own]
            if position in lost or position in column.errors:
                continue
            credit = column.amount(position)
            if credit:
                found.append(ReferralLeader(own, len(children), credit, spec.name))
        return tuple(found)

    def dump(self, stored: Dict[str, Decimal]) -> Any:
        """{customer id: credit}, the credit a plain decimal string ("43124.36")."""
        return {customer: format(amount, "f") for customer, amount in stored.items()}

    def load(self, name: str, data: Any) -> Dict[str, Decimal]:
        """Read by its schema: an object of customer ids (text) to credits (decimals, negative
        when the customers referred brought a loss). Raises context.Invalid otherwise."""
        return Each(Amount(negative=True)).read(data, ())
