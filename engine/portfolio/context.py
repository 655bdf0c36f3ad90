"""A stored portfolio context: the totals of a run, kept so that one new record can be
decided later without reading the whole portfolio again. Each kind of portfolio figure
stores its own part (pools and driver totals per group, referral credits per customer)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Union

import attrs

from .kind import Share
from .kinds import KINDS, kind_of

if TYPE_CHECKING:
    from ..compiler import Plan


@attrs.frozen
class PortfolioContext:
    """The portfolio totals of a run: `parts[section][figure name]` is what that figure stored
    (section "allocations": an AllocationContext; "referrals": credits by customer id)."""

    label: str
    records: int
    parts: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    @property
    def allocations(self) -> Mapping[str, Any]:
        """{allocation name: AllocationContext}"""
        return self.parts.get("allocations", {})

    @property
    def referrals(self) -> Mapping[str, Any]:
        """{referral credit name: {customer id: credit}}"""
        return self.parts.get("referrals", {})

    def as_dict(self) -> Dict[str, Any]:
        """The JSON form (decimals as strings), the one `profit run --save-context` writes."""
        data: Dict[str, Any] = {"label": self.label, "records": self.records}
        for kind in KINDS:
            data[kind.section] = {name: kind.dump(stored) for name, stored in self.parts.get(kind.section, {}).items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PortfolioContext":
        parts = {kind.section: {name: kind.load(name, stored) for name, stored in data.get(kind.section, {}).items()}
                 for kind in KINDS}
        return cls(data["label"], int(data["records"]), parts)


def share_from_context(plan: "Plan", context: PortfolioContext, index: int, slots: tuple) -> Union[Share, str]:
    """One record's share of portfolio figure `index` from stored totals, or why it has none."""
    spec = plan.policy.allocations[index]
    kind = kind_of(spec)
    stored = context.parts.get(kind.section, {}).get(spec.name)
    return kind.from_context(plan, spec, stored, slots, context.label)
