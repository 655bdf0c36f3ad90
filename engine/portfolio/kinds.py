"""The kinds of portfolio figure the engine knows. A new kind is a module beside these
(its spec made by the checker, its stage-pass behaviour behind kind.Kind) and one entry here."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from .allocation import AllocationKind
from .kind import Kind
from .referral import ReferralKind

KINDS: Tuple[Kind, ...] = (AllocationKind(), ReferralKind())
_BY_SPEC: Dict[type, Kind] = {kind.spec: kind for kind in KINDS}


def kind_of(spec: Any) -> Kind:
    """The kind of a checked portfolio figure."""
    return _BY_SPEC[type(spec)]
